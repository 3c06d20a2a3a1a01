// The int8 ceiling: sdot chains (FEAT_DotProd; this TU alone is built with +dotprod, see
// peak_neon.cc).
#include "kernels/neon/linear_neon.h"

namespace moecap {
namespace neon {

int32_t peak_dot_int8(long iters) {
  int8x16_t a = vdupq_n_s8(3), b = vdupq_n_s8(-1);
  __asm__ volatile("" : "+w"(a), "+w"(b));
  int32x4_t acc[kPeakChains];
  for (int i = 0; i < kPeakChains; ++i) acc[i] = vdupq_n_s32(i);
  for (long it = 0; it < iters; ++it)
#pragma GCC unroll 24
    for (int i = 0; i < kPeakChains; ++i) {
      acc[i] = vdotq_s32(acc[i], a, b);
      // An integer chain of constant steps could be folded into one multiply; this keeps each sdot.
      __asm__ volatile("" : "+w"(acc[i]));
    }
  int32x4_t s = acc[0];
  for (int i = 1; i < kPeakChains; ++i) s = vaddq_s32(s, acc[i]);
  return vaddvq_s32(s);
}

}  // namespace neon
}  // namespace moecap
