// The bf16 ceiling: bfdot chains (FEAT_BF16; this TU alone is built with +bf16, see peak_neon.cc).
#include "kernels/neon/linear_neon.h"

namespace moecap {
namespace neon {

float peak_dot_bf16(long iters) {
  bfloat16x8_t a = vreinterpretq_bf16_u16(vdupq_n_u16(0x3F80)), b = vreinterpretq_bf16_u16(vdupq_n_u16(0x3A83));  // 1.0, ~1e-3
  __asm__ volatile("" : "+w"(a), "+w"(b));
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
