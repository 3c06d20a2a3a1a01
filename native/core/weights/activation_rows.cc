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
    case DType::F32: return 0;
    case DType::BF16: b = size_t((K + 1) / 2) * 4; break;
    case DType::I8:
    case DType::I4: b = nb * 8 + nb * 32; break;
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
  if (dtype != DType::I8 && dtype != DType::I4) return;
  const int nb = (K + 31) / 32;
  uint8_t* p = static_cast<uint8_t*>(out);
  float* scale = reinterpret_cast<float*>(p);
  int32_t* sum = reinterpret_cast<int32_t*>(p + 4 * size_t(nb));
  int8_t* q = reinterpret_cast<int8_t*>(p + 8 * size_t(nb));
  for (int b = 0; b < nb; ++b) {
    int k0 = b * 32, k1 = std::min(K, k0 + 32);
    float amax = 0;
    for (int k = k0; k < k1; ++k) amax = std::max(amax, std::fabs(x[k]));
    float s = amax / 127.0f;
    float inv = s > 0 ? 127.0f / amax : 0.0f;
    int32_t total = 0;
    for (int k = k0; k < k0 + 32; ++k) {
      int v = 0;
      if (k < k1) v = std::max(-127, std::min(127, int(std::nearbyint(x[k] * inv))));
      q[k] = int8_t(v);
      total += v;
    }
    scale[b] = s;
    sum[b] = total;
  }
}

}  // namespace moecap
