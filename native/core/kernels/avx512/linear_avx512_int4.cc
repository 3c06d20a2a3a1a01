// int4 weights (two per byte, block 32, fp16 scales) × int8-quantised activations, AVX-512
// VNNI: one 64-byte load per k-quad gives both 16-lane halves (low nibbles = lanes 0-15, high
// nibbles = lanes 16-31), unpacked once per panel and reused by every row of the tile.
#include "kernels/avx512/linear_avx512.h"
#include "kernels/avx512/quant_tile_avx512.h"

namespace moecap {
namespace avx512 {

void linear_int4(const LinearJob& job) { Driver<QuantTile<QuantFormat::Int4>::Tile, 4>::run(job); }

}  // namespace avx512
}  // namespace moecap
