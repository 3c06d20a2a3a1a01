#include "weight_pack.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "weights/numeric.h"

namespace moecap_cuda {

// Round to nearest even as the CPU core does (|v| < 2^22).
static inline float round_even(float v) { return (v + 12582912.0f) - 12582912.0f; }

void pack_row(int dt, const float* v, int K, uint8_t* values, uint16_t* scales) {
  const int Kp = padded_k(K);
  std::memset(values, 0, row_value_bytes(dt, K));
  switch (dt) {
    case kF32: std::memcpy(values, v, sizeof(float) * size_t(K)); return;
    case kBF16: {
      uint16_t* d = reinterpret_cast<uint16_t*>(values);
      for (int k = 0; k < K; ++k) d[k] = moecap::f32_to_bf16(v[k]);
      return;
    }
    default: break;
  }
  if (dt == kI8) {
    // The CPU core's quantise_lane_int8: s = fp16(max|v|/127), q = round-half-even(v / s).
    for (int b = 0; b < Kp / kQBlock; ++b) {
      const int k0 = b * kQBlock, k1 = std::min(K, k0 + kQBlock);
      float amax = 0;
      for (int k = k0; k < k1; ++k) amax = std::max(amax, std::fabs(v[k]));
      const uint16_t h = moecap::f32_to_f16(amax / 127.0f);
      const float s = moecap::f16_to_f32(h);
      scales[b] = h;
      const float inv = s > 0 ? 1.0f / s : 0.0f;
      for (int k = k0; k < k1; ++k) {
        int x = 0;
        if (s > 0) x = std::max(-127, std::min(127, int(round_even(v[k] * inv))));
        values[k] = uint8_t(int8_t(x));
      }
    }
    return;
  }
  // int4: the CPU core's quantise_lane_int4, operation for operation (so the chosen scale and
  // every level are bitwise the same): q ∈ [-8, 7], signed fp16 scale s = m / -d for the d in
  // {7.5, 7.75, …, 9.5} with the least squared error over the block (m = largest-magnitude value).
  alignas(64) float blk[kQBlock];
  for (int b = 0; b < Kp / kQBlock; ++b) {
    const int k0 = b * kQBlock, n = std::max(0, std::min(K - k0, kQBlock));
    for (int i = 0; i < kQBlock; ++i) blk[i] = i < n ? v[k0 + i] : 0.0f;
    float m = 0;
    for (int i = 0; i < n; ++i)
      if (std::fabs(blk[i]) > std::fabs(m)) m = blk[i];
    uint16_t best_h = 0;
    float best_err = INFINITY;
    if (m != 0) {
      for (int c = 0; c <= 8; ++c) {
        const float d = 7.5f + 0.25f * float(c);
        const uint16_t h = moecap::f32_to_f16(m / -d);
        const float s = moecap::f16_to_f32(h);
        if (s == 0) continue;
        const float inv = 1.0f / s;
        float part[8] = {0};
        for (int i = 0; i < kQBlock; i += 8)
          for (int j = 0; j < 8; ++j) {
            float x = round_even(blk[i + j] * inv);
            x = x < -8.0f ? -8.0f : x > 7.0f ? 7.0f : x;
            const float e = blk[i + j] - x * s;
            part[j] += e * e;
          }
        const float err = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
        if (err < best_err) best_err = err, best_h = h;
      }
    }
    scales[b] = best_h;
    const float s = moecap::f16_to_f32(best_h);
    const float inv = s != 0 ? 1.0f / s : 0.0f;
    for (int i = 0; i < kQBlock; ++i) {
      float x = round_even(blk[i] * inv);
      x = x < -8.0f ? -8.0f : x > 7.0f ? 7.0f : x;
      const int q = i < n ? int(x) : 0;
      bool high = false;
      const size_t off = value_offset(kI4, 0, k0 + i, K, &high);
      const uint8_t nib = uint8_t(q + 8);
      values[off] = high ? uint8_t((values[off] & 0x0F) | (nib << 4)) : uint8_t((values[off] & 0xF0) | nib);
    }
  }
}

void pack_matrix(int dt, const moecap::WeightSource& src, moecap::Matrix m, int expert, int row0, int rows, int K,
                 uint8_t* dst, int threads) {
  std::memset(dst, 0, matrix_bytes(dt, rows, K));
  const size_t rvb = row_value_bytes(dt, K);
  uint16_t* scales = reinterpret_cast<uint16_t*>(dst + scales_offset(dt, rows, K));
  const int nb = padded_k(K) / kQBlock;
  // Zero int4 rows must hold nibble 8 (q = 0) everywhere, including the K padding.
  auto work = [&](int r0, int r1) {
    std::vector<float> v(size_t(padded_k(K)), 0.0f);
    for (int r = r0; r < r1; ++r) {
      src.row(m, expert, row0 + r, K, v.data());
      pack_row(dt, v.data(), K, dst + size_t(r) * rvb, is_quantised(dt) ? scales + size_t(r) * nb : nullptr);
    }
  };
  threads = std::max(1, std::min(threads, rows / 16 + 1));
  if (threads == 1) return work(0, rows);
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i)
    pool.emplace_back(work, int(int64_t(rows) * i / threads), int(int64_t(rows) * (i + 1) / threads));
  for (auto& t : pool) t.join();
}

// Rows [0, F) of gate then rows [0, F) of up, as one 2F-row matrix.
namespace {
struct StackedGateUp : moecap::WeightSource {
  const moecap::WeightSource* src;
  moecap::Matrix gate, up;
  int F;
  void row(moecap::Matrix, int e, int r, int cols, float* out) const override {
    src->row(r < F ? gate : up, e, r < F ? r : r - F, cols, out);
  }
  uint64_t fingerprint() const override { return src->fingerprint(); }
};
}  // namespace

void pack_expert(int dt, const moecap::WeightSource& src, moecap::Matrix gate, moecap::Matrix up, moecap::Matrix down,
                 int expert, int H, int F, uint8_t* dst, int threads) {
  const ExpertLayout l = expert_layout(dt, H, F);
  StackedGateUp s;
  s.src = &src;
  s.gate = gate;
  s.up = up;
  s.F = F;
  pack_matrix(dt, s, gate, expert, 0, 2 * F, H, dst + l.w13, threads);
  pack_matrix(dt, src, down, expert, 0, H, F, dst + l.w2, threads);
}

float unpack_value(int dt, const uint8_t* mat, int rows, int K, int row, int k) {
  bool high = false;
  const size_t off = value_offset(dt, row, k, K, &high);
  float scale = 1;
  if (is_quantised(dt))
    scale = moecap::f16_to_f32(reinterpret_cast<const uint16_t*>(mat + scales_offset(dt, rows, K))[scale_index(row, k, K)]);
  switch (dt) {
    case kF32: { float f; std::memcpy(&f, mat + off, 4); return f; }
    case kBF16: { uint16_t h; std::memcpy(&h, mat + off, 2); return moecap::bf16_to_f32(h); }
    case kI8: return float(int8_t(mat[off])) * scale;
    default: return float(int((high ? mat[off] >> 4 : mat[off] & 15)) - 8) * scale;
  }
}

}  // namespace moecap_cuda
