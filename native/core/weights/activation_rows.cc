#include "weights/activation_rows.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "weights/numeric.h"

namespace moecap {

size_t activation_row_bytes(DType dtype, int K) {
  const size_t nb = size_t((K + 31) / 32);
  size_t b = 0;
  switch (dtype) {
    case DType::F32:
    case DType::FP8: return 0;
    case DType::BF16: b = size_t((K + 1) / 2) * 4; break;
    case DType::I8:
    case DType::I4:
    case DType::MXFP4: b = nb * 8 + nb * 32; break;
  }
  return (b + 63) & ~size_t(63);
}

void make_activation_row(DType dtype, const float* x, int K, void* out) {
  if (dtype == DType::BF16) {
    uint16_t* d = static_cast<uint16_t*>(out);
    for (int k = 0; k < K; ++k) d[k] = f32_to_bf16(x[k]);
    if (K & 1) d[K] = 0;
    return;
  }
  if (!quantised_activations(dtype)) return;
  const int nb = (K + 31) / 32;
  uint8_t* p = static_cast<uint8_t*>(out);
  float* scale = reinterpret_cast<float*>(p);
  int32_t* sum = reinterpret_cast<int32_t*>(p + 4 * size_t(nb));
  int8_t* q = reinterpret_cast<int8_t*>(p + 8 * size_t(nb));
  // Fixed-size blocks of 32 (the tail zero padded) in straight-line loops the compiler
  // vectorises; rounding by the 1.5·2^23 trick is round-half-even like nearbyint (|v| <= 127).
  alignas(64) float v[32];
  for (int b = 0; b < nb; ++b) {
    const int k0 = b * 32, n = std::min(32, K - k0);
    if (n < 32) std::memset(v, 0, sizeof v);
    std::memcpy(v, x + k0, sizeof(float) * size_t(n));
    // max |v| on the bit patterns (sign cleared, non-negative floats order as integers).
    uint32_t m[8] = {0};
    for (int i = 0; i < 32; i += 8)
      for (int j = 0; j < 8; ++j) {
        uint32_t u;
        std::memcpy(&u, &v[i + j], 4);
        u &= 0x7FFFFFFFu;
        m[j] = u > m[j] ? u : m[j];
      }
    uint32_t mm = 0;
    for (int j = 0; j < 8; ++j) mm = m[j] > mm ? m[j] : mm;
    float amax;
    std::memcpy(&amax, &mm, 4);
    const float s = amax / 127.0f;
    const float inv = s > 0 ? 127.0f / amax : 0.0f;
    int32_t total = 0;
    for (int i = 0; i < 32; ++i) {
      float r = (v[i] * inv + 12582912.0f) - 12582912.0f;
      r = r < -127.0f ? -127.0f : r > 127.0f ? 127.0f : r;
      const int qi = int(r);
      q[k0 + i] = int8_t(qi);
      total += qi;
    }
    scale[b] = s;
    sum[b] = total;
  }
}

}  // namespace moecap
