#include "weights/packed_matrix.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "error.h"
#include "runtime/thread_pool.h"
#include "weights/numeric.h"

namespace moecap {

static int round_up(int v, int m) { return (v + m - 1) / m * m; }

size_t panel_bytes_for(DType dtype, int K) {
  const size_t nb = size_t((K + kQuantBlock - 1) / kQuantBlock);
  switch (dtype) {
    case DType::F32: return size_t(K) * kPanelWidth * 4;
    case DType::BF16: return size_t(round_up(K, 2)) * kPanelWidth * 2;
    case DType::I8: return nb * (kQuantBlock * kPanelWidth + kPanelWidth * 2);
    case DType::I4: return nb * (kQuantBlock * kPanelWidth / 2 + kPanelWidth * 2);
  }
  return 0;
}

// Round to nearest even without a libm call (|v| < 2^22, which clamped levels always are).
static inline float round_even(float v) { return (v + 12582912.0f) - 12582912.0f; }

// int8: symmetric block quantisation of one lane, q = round(v / s) ∈ [-127, 127],
// s = max|v| / 127 stored fp16; q uses the fp16-rounded scale so dequantisation is exact to it.
static void quantise_lane_int8(const float* v, int K, int8_t* q, uint16_t* scales) {
  const int nb = (K + kQuantBlock - 1) / kQuantBlock;
  for (int b = 0; b < nb; ++b) {
    int k0 = b * kQuantBlock, k1 = std::min(K, k0 + kQuantBlock);
    float amax = 0;
    for (int k = k0; k < k1; ++k) amax = std::max(amax, std::fabs(v[k]));
    uint16_t h = f32_to_f16(amax / 127.0f);
    float s = f16_to_f32(h);
    scales[b] = h;
    float inv = s > 0 ? 1.0f / s : 0.0f;
    for (int k = k0; k < k0 + kQuantBlock; ++k) {
      int x = 0;
      if (k < k1 && s > 0) x = std::max(-127, std::min(127, int(round_even(v[k] * inv))));
      q[k] = int8_t(x);
    }
  }
}

// int4: w = q · s with q ∈ [-8, 7] and a signed fp16 scale. With only 16 levels the plain
// max|v|/7 scale wastes level -8 and over-weights the one largest value, so each block tries
// s = m / -d (m = the block's largest-magnitude value, d ∈ {7.5, 7.75, …, 9.5}: d = 8 maps m
// to -8, larger d clips it) and keeps the scale with the least squared error. On Gaussian
// blocks this cuts the rms weight error by 16% against max|v|/7 (measured offline, numpy,
// 20k blocks: 0.463 vs 0.550 per block·√32), which is what brings the layer under 1.5e-1.
static void quantise_lane_int4(const float* v, int K, int8_t* q, uint16_t* scales) {
  const int nb = (K + kQuantBlock - 1) / kQuantBlock;
  alignas(64) float blk[kQuantBlock];
  for (int b = 0; b < nb; ++b) {
    const int k0 = b * kQuantBlock, n = std::min(K - k0, kQuantBlock);
    // The block zero padded to 32 (a zero meets level 0 and adds no error), so the candidate
    // loop has a fixed trip count and 8 partial error sums the compiler vectorises.
    for (int i = 0; i < kQuantBlock; ++i) blk[i] = i < n ? v[k0 + i] : 0.0f;
    float m = 0;
    for (int i = 0; i < n; ++i)
      if (std::fabs(blk[i]) > std::fabs(m)) m = blk[i];
    uint16_t best_h = 0;
    float best_err = INFINITY;
    if (m != 0) {
      for (int c = 0; c <= 8; ++c) {
        const float d = 7.5f + 0.25f * float(c);
        const uint16_t h = f32_to_f16(m / -d);
        const float s = f16_to_f32(h);
        if (s == 0) continue;
        const float inv = 1.0f / s;
        float part[8] = {0};
        for (int i = 0; i < kQuantBlock; i += 8)
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
    const float s = f16_to_f32(best_h);
    const float inv = s != 0 ? 1.0f / s : 0.0f;
    for (int i = 0; i < kQuantBlock; ++i) {
      float x = round_even(blk[i] * inv);
      x = x < -8.0f ? -8.0f : x > 7.0f ? 7.0f : x;
      q[k0 + i] = int8_t(i < n ? int(x) : 0);
    }
  }
}

static void pack_panel(PackedMatrix& m, int p, const LaneSource& src) {
  const int K = m.K;
  const int nb = m.blocks();
  const int Kq = nb * kQuantBlock;
  uint8_t* dst = m.data.data() + size_t(p) * m.panel_bytes;
  std::memset(dst, 0, m.panel_bytes);
  std::vector<float> lane(static_cast<size_t>(std::max(K, 1)));
  std::vector<int8_t> q(static_cast<size_t>(Kq));
  std::vector<uint16_t> sc(static_cast<size_t>(nb));
  for (int l = 0; l < kPanelWidth; ++l) {
    if (!src(p, l, lane.data())) continue;  // zero lane: memset above
    for (int k = 0; k < K; ++k)
      if (!std::isfinite(lane[k])) throw_range("weight is not finite (panel " + std::to_string(p) + ", lane " +
                                               std::to_string(l) + ", input " + std::to_string(k) + ")");
    switch (m.dtype) {
      case DType::F32: {
        float* d = reinterpret_cast<float*>(dst);
        for (int k = 0; k < K; ++k) d[size_t(k) * kPanelWidth + l] = lane[k];
        break;
      }
      case DType::BF16: {
        uint16_t* d = reinterpret_cast<uint16_t*>(dst);
        for (int k = 0; k < K; ++k) d[size_t(k / 2) * 64 + l * 2 + (k & 1)] = f32_to_bf16(lane[k]);
        break;
      }
      case DType::I8: {
        quantise_lane_int8(lane.data(), K, q.data(), sc.data());
        uint16_t* scales = reinterpret_cast<uint16_t*>(dst + size_t(nb) * 1024);
        for (int b = 0; b < nb; ++b) {
          uint8_t* blk = dst + size_t(b) * 1024;
          for (int kk = 0; kk < kQuantBlock; ++kk)
            blk[(kk / 4) * 128 + l * 4 + (kk % 4)] = uint8_t(q[b * kQuantBlock + kk] + 128);
          scales[b * kPanelWidth + l] = sc[b];
        }
        break;
      }
      case DType::I4: {
        quantise_lane_int4(lane.data(), K, q.data(), sc.data());
        uint16_t* scales = reinterpret_cast<uint16_t*>(dst + size_t(nb) * 512);
        for (int b = 0; b < nb; ++b) {
          uint8_t* blk = dst + size_t(b) * 512;
          for (int kk = 0; kk < kQuantBlock; ++kk) {
            uint8_t nib = uint8_t(q[b * kQuantBlock + kk] + 8);
            uint8_t& byte = blk[(kk / 4) * 64 + (l & 15) * 4 + (kk % 4)];
            byte = l < 16 ? uint8_t((byte & 0xF0) | nib) : uint8_t((byte & 0x0F) | (nib << 4));
          }
          scales[b * kPanelWidth + l] = sc[b];
        }
        break;
      }
    }
  }
}

void pack_matrix(PackedMatrix& m, DType dtype, int K, int panels, const LaneSource& src, ThreadPool* pool) {
  m.dtype = dtype;
  m.K = K;
  m.panels = panels;
  m.panel_bytes = panel_bytes_for(dtype, K);
  m.data.resize(m.bytes());
  if (pool) pool->parallel_for(panels, [&](int p, int) { pack_panel(m, p, src); });
  else
    for (int p = 0; p < panels; ++p) pack_panel(m, p, src);
}

void unpack_lane(const PackedMatrix& m, int p, int l, float* out) {
  const uint8_t* src = m.panel(p);
  const int K = m.K, nb = m.blocks();
  switch (m.dtype) {
    case DType::F32:
      for (int k = 0; k < K; ++k) out[k] = reinterpret_cast<const float*>(src)[size_t(k) * kPanelWidth + l];
      break;
    case DType::BF16:
      for (int k = 0; k < K; ++k)
        out[k] = bf16_to_f32(reinterpret_cast<const uint16_t*>(src)[size_t(k / 2) * 64 + l * 2 + (k & 1)]);
      break;
    case DType::I8: {
      const uint16_t* scales = reinterpret_cast<const uint16_t*>(src + size_t(nb) * 1024);
      for (int k = 0; k < K; ++k) {
        int b = k / kQuantBlock, kk = k % kQuantBlock;
        int q = int(src[size_t(b) * 1024 + (kk / 4) * 128 + l * 4 + (kk % 4)]) - 128;
        out[k] = float(q) * f16_to_f32(scales[b * kPanelWidth + l]);
      }
      break;
    }
    case DType::I4: {
      const uint16_t* scales = reinterpret_cast<const uint16_t*>(src + size_t(nb) * 512);
      for (int k = 0; k < K; ++k) {
        int b = k / kQuantBlock, kk = k % kQuantBlock;
        uint8_t byte = src[size_t(b) * 512 + (kk / 4) * 64 + (l & 15) * 4 + (kk % 4)];
        int q = int(l < 16 ? (byte & 0x0F) : (byte >> 4)) - 8;
        out[k] = float(q) * f16_to_f32(scales[b * kPanelWidth + l]);
      }
      break;
    }
  }
}

}  // namespace moecap
