// Activation rows for the int8/int4 kernels, AVX-512: per 32-block s = max|x|/127,
// q = round-half-even(x·127/max|x|) ∈ [-127, 127], Σq — the same arithmetic as the portable
// make_activation_row (weights/activation_rows.cc), one block per pair of zmm.
#include <immintrin.h>

#include "kernels/avx512/linear_avx512.h"

namespace moecap {
namespace avx512 {

static inline float hmax(__m512 v) {
  alignas(64) float o[16];
  _mm512_store_ps(o, v);
  float m = o[0];
  for (int i = 1; i < 16; ++i) m = o[i] > m ? o[i] : m;
  return m;
}
static inline int32_t hsum(__m512i v) {
  alignas(64) int32_t o[16];
  _mm512_store_si512(o, v);
  int32_t s = 0;
  for (int i = 0; i < 16; ++i) s += o[i];
  return s;
}

void quant_row(const float* x, int K, void* out) {
  const int nb = (K + 31) / 32;
  uint8_t* p = static_cast<uint8_t*>(out);
  float* scale = reinterpret_cast<float*>(p);
  int32_t* sum = reinterpret_cast<int32_t*>(p + 4 * size_t(nb));
  int8_t* q = reinterpret_cast<int8_t*>(p + 8 * size_t(nb));
  const __m512 magic = _mm512_set1_ps(12582912.0f), lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
  for (int b = 0; b < nb; ++b) {
    const int k0 = b * 32, n = K - k0 < 32 ? K - k0 : 32;
    const __mmask16 m0 = n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1);
    const __mmask16 m1 = n >= 32 ? __mmask16(0xFFFF) : n > 16 ? __mmask16((1u << (n - 16)) - 1) : __mmask16(0);
    const __m512 v0 = _mm512_maskz_loadu_ps(m0, x + k0), v1 = _mm512_maskz_loadu_ps(m1, x + k0 + 16);
    const float amax = hmax(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
    const float s = amax / 127.0f;
    const __m512 inv = _mm512_set1_ps(s > 0 ? 127.0f / amax : 0.0f);
    __m512 r0 = _mm512_sub_ps(_mm512_add_ps(_mm512_mul_ps(v0, inv), magic), magic);
    __m512 r1 = _mm512_sub_ps(_mm512_add_ps(_mm512_mul_ps(v1, inv), magic), magic);
    r0 = _mm512_min_ps(_mm512_max_ps(r0, lo), hi);
    r1 = _mm512_min_ps(_mm512_max_ps(r1, lo), hi);
    const __m512i i0 = _mm512_cvttps_epi32(r0), i1 = _mm512_cvttps_epi32(r1);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + k0), _mm512_cvtepi32_epi8(i0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + k0 + 16), _mm512_cvtepi32_epi8(i1));
    scale[b] = s;
    sum[b] = hsum(_mm512_add_epi32(i0, i1));
  }
}

}  // namespace avx512
}  // namespace moecap
