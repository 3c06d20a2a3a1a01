// int8 weights (block 32, fp16 scales) × int8-quantised activations, AVX-512 VNNI.
#include "kernels/avx512/linear_avx512.h"
#include "kernels/avx512/quant_tile_avx512.h"

namespace moecap {
namespace avx512 {

void linear_int8(const LinearJob& job) { Driver<QuantTile<QuantFormat::Int8>::Tile, 4>::run(job); }

}  // namespace avx512
}  // namespace moecap
