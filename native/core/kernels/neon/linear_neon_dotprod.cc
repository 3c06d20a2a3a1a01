// int8, int4 and mxfp4 weights × int8-quantised activation rows with sdot (FEAT_DotProd; this TU alone
// is built with +dotprod): one sdot per 4 lanes per k-quad, s8 × s8 summed into s32. Exact
// integers; see quant_tile_neon.h for the rest.
#include "kernels/neon/quant_tile_neon.h"

namespace moecap {
namespace neon {

void linear_int8_dotprod(const LinearJob& job) {
  for_row_tiles<2, tile_quant<QuantFormat::Int8, SdotDot, 2>, tile_quant<QuantFormat::Int8, SdotDot, 1>>(job);
}
void linear_int4_dotprod(const LinearJob& job) {
  for_row_tiles<2, tile_quant<QuantFormat::Int4, SdotDot, 2>, tile_quant<QuantFormat::Int4, SdotDot, 1>>(job);
}
void linear_mxfp4_dotprod(const LinearJob& job) {
  for_row_tiles<2, tile_quant<QuantFormat::Mx4, SdotDot, 2>, tile_quant<QuantFormat::Mx4, SdotDot, 1>>(job);
}

}  // namespace neon
}  // namespace moecap
