// CPU unit test of the host/device index arithmetic (cuda/moe_index.h) and the GPU weight packing
// (native/core/backend/gpu_weight_pack.cc) against the CPU core, from fp32 masters and from a
// release's stored fp8/mxfp4 codes. Built and run by test/cuda/cuda_host.test.ts with g++;
// prints one line per check and exits non-zero on the first failure.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "block_decode.h"
#include "expect.h"
#include "dispatch/routing_plan.h"
#include "layer_config.h"
#include "backend/gpu_weight_pack.h"
#include "moe_index.h"
#include "stored_code_weights.h"
#include "weights/numeric.h"
#include "weights/packed_matrix.h"
#include "weights/weight_source.h"

using namespace moecap_cuda;

static void test_padding_and_segments(std::mt19937& rng) {
  EXPECT(round_up(0, 64) == 0 && round_up(1, 64) == 64 && round_up(64, 64) == 64 && round_up(65, 64) == 128,
         "round_up");
  EXPECT(padded_k(1) == 64 && padded_k(200) == 256 && padded_k(14336) == 14336, "padded_k");
  for (int trial = 0; trial < 300; ++trial) {
    const int n = 1 + int(rng() % 70), block = trial % 3 == 0 ? 1 : int(1 + rng() % 80);
    std::vector<int> counts(static_cast<size_t>(n)), off(size_t(n) + 1);
    for (auto& c : counts) c = rng() % 4 == 0 ? 0 : int(rng() % 200);
    padded_offsets(counts.data(), n, block, off.data());
    int acc = 0, nonempty = 0;
    long long assign = 0;
    for (int i = 0; i < n; ++i) {
      EXPECT(off[i] == acc, "offset %d", i);
      EXPECT(off[i] % block == 0, "segment %d starts on a block boundary", i);
      acc += (counts[i] + block - 1) / block * block;
      nonempty += counts[i] > 0;
      assign += counts[i];
    }
    EXPECT(off[n] == acc, "total");
    EXPECT(off[n] <= padded_rows_bound(assign, nonempty, block), "bound %d > %lld", off[n],
           (long long)padded_rows_bound(assign, nonempty, block));
    // Every row maps back to the (non-empty) segment that holds it; past the end → -1.
    for (int row = 0; row < off[n]; ++row) {
      const int s = segment_of(off.data(), n, row);
      EXPECT(s >= 0 && off[s] <= row && row < off[s + 1], "row %d → segment %d", row, s);
    }
    EXPECT(segment_of(off.data(), n, off[n]) == -1 && segment_of(off.data(), n, -1) == -1, "out of range");
  }
  std::printf("ok   padded offsets, bounds and row → segment lookup (300 random cases)\n");
}

static void test_capacity(std::mt19937& rng) {
  for (int trial = 0; trial < 500; ++trial) {
    moecap::LayerConfig c;
    c.experts = 1 + int(rng() % 256);
    c.top_k = 1 + int(rng() % c.experts);
    c.capacity_factor = trial % 5 == 0 ? 0 : double(rng() % 400) / 100.0;
    const int T = 1 + int(rng() % 5000);
    EXPECT(capacity_for(c.capacity_factor, T, c.top_k, c.experts) == moecap::expert_capacity(c, T),
           "cf=%g T=%d k=%d E=%d: %lld vs %lld", c.capacity_factor, T, c.top_k, c.experts,
           (long long)capacity_for(c.capacity_factor, T, c.top_k, c.experts), (long long)moecap::expert_capacity(c, T));
  }
  EXPECT(kept_rows(10, 4) == 4 && kept_rows(3, 4) == 3 && kept_rows(3, 2147483647) == 3, "kept_rows");
  std::printf("ok   capacity_for == moecap::expert_capacity (500 random cases)\n");
}

// The GPU plan's rule: an assignment's row = padded_offsets[e] + its rank within expert e;
// check that on the CPU against moecap::build_routing_plan's dense slots.
static void test_plan_rows(std::mt19937& rng) {
  for (int trial = 0; trial < 50; ++trial) {
    const int E = 2 + int(rng() % 40), k = 1 + int(rng() % std::min(E, 8)), T = 1 + int(rng() % 300);
    const int block = trial % 2 ? 64 : 1;
    std::vector<int32_t> ids(size_t(T) * k);
    for (int t = 0; t < T; ++t)
      for (int j = 0; j < k; ++j) {
        int e;
        bool dup;
        do {
          e = int(rng() % E);
          dup = false;
          for (int i = 0; i < j; ++i) dup |= ids[size_t(t) * k + i] == e;
        } while (dup);
        ids[size_t(t) * k + j] = e;
      }
    const int64_t cap = capacity_for(trial % 3 ? 1.0 : 0.0, T, k, E);
    moecap::RoutingPlan plan;
    moecap::build_routing_plan(ids.data(), T, k, E, cap, plan);
    std::vector<int> off(size_t(E) + 1);
    padded_offsets(plan.counts.data(), E, block, off.data());
    std::vector<int> rank(static_cast<size_t>(E), 0);
    std::vector<int> seen(static_cast<size_t>(off[E]), 0);
    for (int a = 0; a < T * k; ++a) {
      const int e = ids[a];
      const int r = rank[e]++;
      const bool kept = r < cap;
      EXPECT(kept == (plan.token_slot[a] >= 0), "drop rule of assignment %d", a);
      if (!kept) continue;
      EXPECT(plan.token_slot[a] - plan.offsets[e] == r, "rank of assignment %d", a);
      const int row = off[e] + r;
      EXPECT(row < off[e + 1] && !seen[row]++, "row %d unique and inside its segment", row);
      EXPECT(segment_of(off.data(), E, row) == e, "segment_of(%d)", row);
    }
  }
  std::printf("ok   padded rows = offset + stable rank, matching moecap::build_routing_plan (50 cases)\n");
}

struct RandomWeights : moecap::WeightSource {
  uint64_t fingerprint() const override { return 1; }  // never written to an offload file
  uint32_t seed;
  void row(moecap::Matrix m, int e, int r, int cols, float* out) const override {
    std::mt19937 g(seed ^ (uint32_t(m) * 7919u) ^ (uint32_t(e) * 104729u) ^ uint32_t(r) * 2654435761u);
    std::normal_distribution<float> d(0.0f, 1.0f);
    for (int c = 0; c < cols; ++c) out[c] = d(g);
    if (r % 5 == 0) out[0] = 0;  // zeros
    if (r % 7 == 0)              // an all-zero block (scale 0)
      for (int c = 0; c < std::min(cols, 32); ++c) out[c] = 0;
  }
};

// GPU layout values dequantise to exactly the CPU core's packed values (same quantisation).
static void test_weight_layout() {
  RandomWeights src;
  src.seed = 12345;
  const char* names[] = {"f32", "bf16", "int8", "int4", "mxfp4", "fp8"};
  for (int dt = 0; dt < kGpuDTypes; ++dt)
    for (int K : {1, 31, 33, 200, 256, 300}) {
      const int rows = 37;
      std::vector<uint8_t> gpu(matrix_bytes(dt, rows, K));
      pack_matrix(dt, src, moecap::Matrix::Gate, 3, 0, rows, K, gpu.data(), 3);
      moecap::PackedMatrix cpu;
      moecap::pack_matrix(
          cpu, moecap::DType(dt), K, (rows + 31) / 32,
          [&](int p, int lane, float* v) {
            const int r = p * 32 + lane;
            if (r >= rows) return false;
            src.row(moecap::Matrix::Gate, 3, r, K, v);
            return true;
          },
          nullptr);
      std::vector<float> lane(static_cast<size_t>(K));
      for (int r = 0; r < rows; ++r) {
        moecap::unpack_lane(cpu, r / 32, r % 32, lane.data());
        for (int k = 0; k < K; ++k) {
          const float g = unpack_value(dt, gpu.data(), rows, K, r, k);
          EXPECT(std::memcmp(&g, &lane[k], 4) == 0, "%s K=%d row %d k %d: gpu %g cpu %g", names[dt], K, r, k, g,
                 lane[k]);
        }
        // K padding dequantises to zero (the kernels read whole padded rows).
        for (int k = K; k < padded_k(K); ++k)
          EXPECT(unpack_value(dt, gpu.data(), rows, K, r, k) == 0.0f, "%s K=%d padding k=%d", names[dt], K, k);
      }
      EXPECT(matrix_bytes(dt, rows, K) % kPartAlign == 0, "alignment");
    }
  // Byte offsets: every (row, k) has its own byte (or nibble) and rows start 16-byte aligned.
  for (int dt = 0; dt < kGpuDTypes; ++dt) {
    const int K = 200, rows = 3;
    std::vector<int> hits(scales_offset(dt, rows, K) * 2, 0);
    for (int r = 0; r < rows; ++r) {
      EXPECT(value_offset(dt, r, 0, K, nullptr) % 16 == 0, "row start alignment");
      for (int k = 0; k < padded_k(K); ++k) {
        bool hi = false;
        const size_t off = value_offset(dt, r, k, K, &hi);
        const size_t width = dt == kF32 ? 4 : dt == kBF16 ? 2 : 1;
        for (size_t b = 0; b < width; ++b) ++hits[(off + b) * 2 + (is_nibbles(dt) ? hi : 0)];
        if (!is_nibbles(dt))
          for (size_t b = 0; b < width; ++b) ++hits[(off + b) * 2 + 1];
      }
    }
    for (size_t i = 0; i < hits.size(); ++i)
      EXPECT(hits[i] == 1, "%s: byte/nibble %zu used %d times", names[dt], i / 2, hits[i]);
  }
  // Scale arrays: one scale per 32 padded inputs (per 128 for fp8) of each row, inside the matrix.
  for (int dt = kI8; dt < kGpuDTypes; ++dt)
    for (int K : {1, 64, 128, 200, 300}) {
      const int rows = 5, blk = dt == kFP8 ? kFp8QBlock : kQBlock;
      EXPECT(row_scales(dt, K) == (padded_k(K) + blk - 1) / blk, "%s K=%d: row_scales %d", names[dt], K,
             row_scales(dt, K));
      EXPECT(scale_index(dt, rows - 1, padded_k(K) - 1, K) == size_t(rows * row_scales(dt, K) - 1),
             "%s K=%d last scale", names[dt], K);
      EXPECT(
          scales_offset(dt, rows, K) + size_t(rows * row_scales(dt, K)) * scale_bytes(dt) <= matrix_bytes(dt, rows, K),
          "%s K=%d scales inside", names[dt], K);
    }
  EXPECT(act_row_bytes(kFP8, 200) == act_row_bytes(kBF16, 200) && act_row_bytes(kMX4, 200) == act_row_bytes(kI8, 200),
         "activation rows: fp8 reads bf16 rows, mxfp4 int8 rows");
  const ExpertLayout l = expert_layout(kI4, 200, 72);
  EXPECT(l.w2 == matrix_bytes(kI4, 144, 200) && l.bytes == l.w2 + matrix_bytes(kI4, 200, 72), "expert layout");
  std::printf(
      "ok   GPU weight layout: packed values == CPU core's unpack_lane bitwise (6 dtypes × 6 K), offsets cover each "
      "byte once\n");
}

// A release's stored codes (fp8 with 128×128 block scales, mxfp4 with E8M0 scales above the
// max-based choice): (a) the GPU bytes packed from them hold the release's codes and scales and
// decode bitwise to its values, which are the CPU core's (its stored-code packing); (b) packed from
// the fp32 values alone (the ABI's fp32 masters before experts_packed), fp8 decodes to other
// values and mxfp4 holds other codes and scales (the same values: E2M1 × power-of-two scales
// re-quantise exactly).
static void test_stored_codes() {
  struct Case {
    moecap::DType dtype;
    int rows, K;
  };
  const Case cases[] = {{moecap::DType::FP8, 150, 300},
                        {moecap::DType::FP8, 37, 128},
                        {moecap::DType::FP8, 260, 72},
                        {moecap::DType::MXFP4, 37, 224},
                        {moecap::DType::MXFP4, 70, 96}};
  for (const Case& cs : cases) {
    const int dt = int(cs.dtype), rows = cs.rows, K = cs.K, e = 2;
    const char* name = dt == kFP8 ? "fp8" : "mxfp4";
    const moecap::Matrix m = moecap::Matrix::Down;
    StoredCodeWeights src;
    src.dtype = cs.dtype;
    src.seed = 0xC0DE + uint64_t(rows);
    StoredCodeWeights fp32_only = src;
    fp32_only.hide_codes = true;
    std::vector<uint8_t> gpu(matrix_bytes(dt, rows, K)), old(gpu.size());
    pack_matrix(dt, src, m, e, 0, rows, K, gpu.data(), 3);
    pack_matrix(dt, fp32_only, m, e, 0, rows, K, old.data(), 3);
    // The CPU core's packing of the same rows from the stored codes.
    moecap::PackedMatrix cpu;
    moecap::pack_matrix(
        cpu, cs.dtype, K, (rows + 31) / 32,
        [&](int p, int l, float* v) {
          if (p * 32 + l >= rows) return false;
          src.row(m, e, p * 32 + l, K, v);
          return true;
        },
        nullptr, nullptr,
        [&](int p, int l, uint8_t* codes, void* scales) {
          if (p * 32 + l >= rows) return moecap::kCodesAbsent;
          return src.stored_codes(m, e, p * 32 + l, K, cs.dtype, codes, scales) ? moecap::kCodesFilled
                                                                                : moecap::kCodesUnavailable;
        });
    const uint8_t* sc = gpu.data() + scales_offset(dt, rows, K);
    const uint8_t* old_sc = old.data() + scales_offset(dt, rows, K);
    std::vector<float> lane(static_cast<size_t>(K));
    int64_t old_values_differ = 0, old_codes_differ = 0, old_scales_differ = 0, scales_not_max_based = 0;
    for (int r = 0; r < rows; ++r) {
      moecap::unpack_lane(cpu, r / 32, r % 32, lane.data());
      for (int k = 0; k < K; ++k) {
        const float want = src.value(m, e, r, k), g = unpack_value(dt, gpu.data(), rows, K, r, k);
        EXPECT(std::memcmp(&g, &want, 4) == 0, "%s %dx%d (%d, %d): gpu %g, release %g", name, rows, K, r, k, g, want);
        EXPECT(std::memcmp(&g, &lane[size_t(k)], 4) == 0, "%s %dx%d (%d, %d): gpu %g, cpu %g", name, rows, K, r, k, g,
               lane[size_t(k)]);
        bool hi = false;
        const size_t off = value_offset(dt, r, k, K, &hi);
        auto stored = [&](const uint8_t* mat) {
          return dt == kFP8 ? mat[off] : uint8_t(hi ? mat[off] >> 4 : mat[off] & 15);
        };
        EXPECT(stored(gpu.data()) == src.code(m, e, r, k), "%s (%d, %d): code", name, r, k);
        const float o = unpack_value(dt, old.data(), rows, K, r, k);
        old_values_differ += std::memcmp(&o, &want, 4) != 0;
        old_codes_differ += stored(old.data()) != src.code(m, e, r, k);
      }
      const int blk = dt == kFP8 ? kFp8QBlock : kQBlock;
      for (int b = 0; b < (K + blk - 1) / blk; ++b) {
        const size_t at = scale_index(dt, r, b * blk, K) * scale_bytes(dt);
        if (dt == kFP8) {
          float s, so;
          std::memcpy(&s, sc + at, 4);
          std::memcpy(&so, old_sc + at, 4);
          EXPECT(s == src.fp8_scale(m, e, r / 128, b), "fp8 row %d block %d: the release's 128×128 block scale", r, b);
          old_scales_differ += so != s;
        } else {
          EXPECT(sc[at] == src.e8m0(m, e, r, b), "mxfp4 row %d block %d: the release's E8M0 scale", r, b);
          old_scales_differ += old_sc[at] != sc[at];
          scales_not_max_based += b % 2;
        }
      }
    }
    if (dt == kFP8)
      EXPECT(old_values_differ > 0, "fp8 %dx%d: the fp32 re-quantisation kept every value (the test proves nothing)",
             rows, K);
    else
      EXPECT(old_values_differ == 0 && old_scales_differ >= scales_not_max_based && old_codes_differ > 0,
             "mxfp4 %dx%d: fp32 path: %lld values, %lld scales (of %lld raised), %lld codes differ", rows, K,
             (long long)old_values_differ, (long long)old_scales_differ, (long long)scales_not_max_based,
             (long long)old_codes_differ);
    std::printf(
        "ok   %s %dx%d from stored codes: release's codes, scales and values bitwise (== CPU core); fp32 path: "
        "%lld of %lld values, %lld codes, %lld scales differ\n",
        name, rows, K, (long long)old_values_differ, (long long)rows * K, (long long)old_codes_differ,
        (long long)old_scales_differ);
  }
  // A whole expert (gate and up rows stacked into w13, down into w2) and a layer's held experts.
  StoredCodeWeights src;
  const int H = 160, F = 72, E = 3;
  const size_t blob = expert_layout(kFP8, H, F).bytes;
  std::vector<uint8_t> all(size_t(E) * blob, 0xAB), one(blob);
  const uint8_t held[E] = {1, 0, 1};
  pack_routed_experts(kFP8, src, E, H, F, held, all.data(), 2);
  for (int e = 0; e < E; ++e) {
    const uint8_t* b = all.data() + size_t(e) * blob;
    if (!held[e]) {
      bool zero = true;
      for (size_t i = 0; i < blob; ++i) zero &= b[i] == 0;
      EXPECT(zero, "expert %d is not held: its blob is zero", e);
      continue;
    }
    pack_expert(kFP8, src, moecap::Matrix::Gate, moecap::Matrix::Up, moecap::Matrix::Down, e, H, F, one.data(), 2);
    EXPECT(std::memcmp(one.data(), b, blob) == 0, "expert %d: pack_routed_experts == pack_expert", e);
    const uint8_t* w13 = b + expert_layout(kFP8, H, F).w13;
    const uint8_t* w2 = b + expert_layout(kFP8, H, F).w2;
    for (int r = 0; r < 2 * F; ++r)
      for (int k = 0; k < H; ++k) {
        const float g = unpack_value(kFP8, w13, 2 * F, H, r, k);
        const float want = src.value(r < F ? moecap::Matrix::Gate : moecap::Matrix::Up, e, r % F, k);
        EXPECT(std::memcmp(&g, &want, 4) == 0, "expert %d w13 (%d, %d)", e, r, k);
      }
    for (int r = 0; r < H; ++r)
      for (int k = 0; k < F; ++k) {
        const float g = unpack_value(kFP8, w2, H, F, r, k), want = src.value(moecap::Matrix::Down, e, r, k);
        EXPECT(std::memcmp(&g, &want, 4) == 0, "expert %d w2 (%d, %d)", e, r, k);
      }
  }
  std::printf("ok   stored-code experts: w13 = gate ‖ up and w2 hold the release's fp8 values; unheld experts zero\n");
}

// The SIMT kernels' code decoders (block_decode.h, the device's byte permute emulated) against the
// CPU core's: every 4-code word of E2M1, every pair of E4M3 bytes (NaN codes excluded: refused at
// packing), every E8M0 byte.
static void test_block_decode() {
  for (uint32_t w = 0; w < 65536; ++w) {
    const uint32_t c[4] = {w & 15, (w >> 4) & 15, (w >> 8) & 15, (w >> 12) & 15};
    const uint32_t r = e2m1_twice4(c[0] | c[1] << 8 | c[2] << 16 | c[3] << 24);
    for (int i = 0; i < 4; ++i)
      EXPECT(int8_t(r >> (8 * i)) == moecap::e2m1_twice(uint8_t(c[i])), "e2m1 codes %04x byte %d", w, i);
  }
  for (uint32_t a = 0; a < 256; ++a)
    for (uint32_t b = 0; b < 256; ++b) {
      if (moecap::e4m3_is_nan(uint8_t(a)) || moecap::e4m3_is_nan(uint8_t(b))) continue;
      const uint32_t w = a | b << 8 | b << 16 | a << 24;  // pair 0,1 = (a, b), pair 2,3 = (b, a)
      const uint32_t p = e4m3_pair_f16_scaled(w, kE4m3Pair01), q = e4m3_pair_f16_scaled(w, kE4m3Pair23);
      EXPECT(uint16_t(p) == moecap::e4m3_f16_scaled(uint8_t(a)) &&
                 uint16_t(p >> 16) == moecap::e4m3_f16_scaled(uint8_t(b)),
             "e4m3 pair 0,1 of %02x %02x", a, b);
      EXPECT(uint16_t(q) == moecap::e4m3_f16_scaled(uint8_t(b)) &&
                 uint16_t(q >> 16) == moecap::e4m3_f16_scaled(uint8_t(a)),
             "e4m3 pair 2,3 of %02x %02x", b, a);
    }
  for (uint32_t e = 0; e < 255; ++e) {
    const float want = moecap::e8m0_half(uint8_t(e));
    uint32_t bits;
    std::memcpy(&bits, &want, 4);
    EXPECT(e8m0_half_bits(e) == bits, "e8m0 %u", e);
  }
  std::printf("ok   SIMT code decoders == CPU core's: E2M1 (all 4-code words), E4M3 (all pairs), E8M0 (all scales)\n");
}

int main() {
  std::mt19937 rng(20261128);
  test_padding_and_segments(rng);
  test_capacity(rng);
  test_plan_rows(rng);
  test_weight_layout();
  test_stored_codes();
  test_block_decode();
  std::printf("all %d checks passed\n", g_checks);
  return 0;
}
