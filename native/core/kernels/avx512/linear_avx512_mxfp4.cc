// mxfp4 weights (E2M1 nibbles in the int4 order, E8M0 block scales) × int8-quantised activations,
// AVX-512 VNNI: the int4 tile with a vpermb table lookup per nibble half (quant_tile_avx512.h).
#include "kernels/avx512/linear_avx512.h"
#include "kernels/avx512/quant_tile_avx512.h"

namespace moecap {
namespace avx512 {

void linear_mxfp4(const LinearJob& job) { Driver<QuantTile<QuantFormat::Mx4>::Tile, 4>::run(job); }

}  // namespace avx512
}  // namespace moecap
