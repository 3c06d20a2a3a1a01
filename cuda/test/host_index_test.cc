// CPU unit test of the host/device index arithmetic (cuda/moe_index.h) and the GPU weight packing
// (cuda/weight_pack.cc) against the CPU core. Built and run by test/cuda/cuda_host.test.ts with g++;
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
#include "moe_index.h"
#include "weight_pack.h"
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
  test_block_decode();
  std::printf("all %d checks passed\n", g_checks);
  return 0;
}
