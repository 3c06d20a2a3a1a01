// int8 and int4 weights × int8-quantised activation rows on any arm64 (no dotprod): each k-quad's
// products by widening multiplies (smull/smull2, s8 × s8 → s16, at most 127·127 in magnitude),
// accumulated pairwise into s32 (sadalp), the two halves folded by addp at the end of the block.
// Exact integers; see quant_tile_neon.h for the rest.
#include "kernels/neon/quant_tile_neon.h"

namespace moecap {
namespace neon {
namespace {

// lo: lanes 0,1 of the register as (k0+k1, k2+k3) pairs; hi: lanes 2,3; finish: addp → lanes 0..3.
struct WideningDot {
  static inline void quad(int32x4_t& lo, int32x4_t& hi, int8x16_t w, int8x16_t x) {
    lo = vpadalq_s16(lo, vmull_s8(vget_low_s8(w), vget_low_s8(x)));
    hi = vpadalq_s16(hi, vmull_high_s8(w, x));
  }
  static inline int32x4_t finish(int32x4_t lo, int32x4_t hi) { return vpaddq_s32(lo, hi); }
};

}  // namespace

void linear_int8(const LinearJob& job) {
  for_row_tiles<2, tile_quant<false, WideningDot, 2>, tile_quant<false, WideningDot, 1>>(job);
}
void linear_int4(const LinearJob& job) {
  for_row_tiles<2, tile_quant<true, WideningDot, 2>, tile_quant<true, WideningDot, 1>>(job);
}

}  // namespace neon
}  // namespace moecap
