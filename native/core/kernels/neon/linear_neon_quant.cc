// int8, int4 and mxfp4 weights × int8-quantised activation rows on any arm64 (no dotprod): the
// widening block dot (smull + sadalp, WideningDot in quant_tile_neon.h), tiles of 2 rows × one panel.
#include "kernels/neon/quant_tile_neon.h"

namespace moecap {
namespace neon {

void linear_int8(const LinearJob& job) {
  for_row_tiles<2, tile_quant<QuantFormat::Int8, WideningDot, 2>, tile_quant<QuantFormat::Int8, WideningDot, 1>>(job);
}
void linear_int4(const LinearJob& job) {
  for_row_tiles<2, tile_quant<QuantFormat::Int4, WideningDot, 2>, tile_quant<QuantFormat::Int4, WideningDot, 1>>(job);
}
void linear_mxfp4(const LinearJob& job) {
  for_row_tiles<2, tile_quant<QuantFormat::Mx4, WideningDot, 2>, tile_quant<QuantFormat::Mx4, WideningDot, 1>>(job);
}

}  // namespace neon
}  // namespace moecap
