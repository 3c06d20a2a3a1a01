#include "weight_pack.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

#include "weights/numeric.h"

namespace moecap_cuda {

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
  // Symmetric block quantisation, the CPU core's quantise_lane: s = fp16(max|v|/qmax) and
  // q = rint(v / s) with the fp16-rounded scale.
  const int qmax = dt == kI8 ? 127 : 7;
  for (int b = 0; b < Kp / kQBlock; ++b) {
    const int k0 = b * kQBlock, k1 = std::min(K, k0 + kQBlock);
    float amax = 0;
    for (int k = k0; k < k1; ++k) amax = std::max(amax, std::fabs(v[k]));
    const uint16_t h = moecap::f32_to_f16(amax / float(qmax));
    const float s = moecap::f16_to_f32(h);
    scales[b] = h;
    const float inv = s > 0 ? 1.0f / s : 0.0f;
    for (int k = k0; k < k1; ++k) {
      int x = 0;
      if (s > 0) x = std::max(-qmax, std::min(qmax, int(std::nearbyint(v[k] * inv))));
      if (dt == kI8) {
        values[k] = uint8_t(int8_t(x));
      } else {
        bool high = false;
        const size_t off = value_offset(kI4, 0, k, K, &high);
        const uint8_t nib = uint8_t(x + 8);
        values[off] = high ? uint8_t((values[off] & 0x0F) | (nib << 4)) : uint8_t((values[off] & 0xF0) | nib);
      }
    }
    if (dt == kI4)  // padding k in [k1, k0+32) must read as q = 0, i.e. nibble 8
      for (int k = k1; k < k0 + kQBlock; ++k) {
        bool high = false;
        const size_t off = value_offset(kI4, 0, k, K, &high);
        values[off] = high ? uint8_t((values[off] & 0x0F) | 0x80) : uint8_t((values[off] & 0xF0) | 0x08);
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
