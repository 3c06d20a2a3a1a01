// Vector math for the AVX-512 epilogues. exp: range reduction by ln2 and a degree-6 Taylor
// polynomial (|r| <= ln2/2), ~1 ulp of fp32 over the clamped range; silu(g) = g / (1 + e^-g).
#pragma once
#include <immintrin.h>

namespace moecap {
namespace avx512 {

static inline __m512 exp_ps(__m512 x) {
  x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.37f)), _mm512_set1_ps(-87.33f));
  __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-06f), r);
  __m512 p = _mm512_set1_ps(1.0f / 720);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

static inline __m512 silu_ps(__m512 g) {
  __m512 e = exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), g));
  return _mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

// Epilogue::GatedVariant after scaling and bias: limit 0 = silu(g)·u, else gpt-oss's clamped
// (min(u, ±limit) + 1)·g·σ(α·g) with g ≤ limit. min/max take the limit as their first operand,
// so a NaN accumulator stays NaN (as torch.clamp).
static inline __m512 gated_variant_ps(__m512 g, __m512 u, float limit, float alpha) {
  if (limit == 0) return _mm512_mul_ps(silu_ps(g), u);
  const __m512 lim = _mm512_set1_ps(limit);
  g = _mm512_min_ps(lim, g);
  u = _mm512_max_ps(_mm512_sub_ps(_mm512_setzero_ps(), lim), _mm512_min_ps(lim, u));
  const __m512 e = exp_ps(_mm512_mul_ps(_mm512_set1_ps(-alpha), g));
  const __m512 glu = _mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
  return _mm512_mul_ps(_mm512_add_ps(u, _mm512_set1_ps(1.0f)), glu);
}

}  // namespace avx512
}  // namespace moecap
