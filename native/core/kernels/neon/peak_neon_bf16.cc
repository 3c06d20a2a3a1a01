// The bf16 ceiling: bfdot chains (FEAT_BF16; this TU alone is built with +bf16, see peak_neon.cc).
#include "kernels/neon/linear_neon.h"

namespace moecap {
namespace neon {

float peak_dot_bf16(long iters) {
  // bf16 1.0 and ~1e-3 in every lane, built as 32-bit words (GCC 12 otherwise emits an fp16
  // fmov immediate this TU's +bf16 target does not allow).
  uint32x4_t ua = vdupq_n_u32(0x3F803F80u), ub = vdupq_n_u32(0x3A833A83u);
  __asm__ volatile("" : "+w"(ua), "+w"(ub));
  const bfloat16x8_t a = vreinterpretq_bf16_u32(ua), b = vreinterpretq_bf16_u32(ub);
  float32x4_t acc[kPeakChains];
  for (int i = 0; i < kPeakChains; ++i) acc[i] = vdupq_n_f32(float(i));
  for (long it = 0; it < iters; ++it)
#pragma GCC unroll 24
    for (int i = 0; i < kPeakChains; ++i) acc[i] = vbfdotq_f32(acc[i], a, b);
  float32x4_t s = acc[0];
  for (int i = 1; i < kPeakChains; ++i) s = vaddq_f32(s, acc[i]);
  return vaddvq_f32(s);
}

}  // namespace neon
}  // namespace moecap
