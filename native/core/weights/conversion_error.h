// The error of converting master weights to an engine dtype, measured with the engine's own
// conversions (bf16 rounding, the block quantisers of block_quant.h): what `moecap inspect
// --error` prints for a checkpoint's values decoded exactly from its source format.
#pragma once
#include <cstdint>

#include "weights/dtype.h"

namespace moecap {

struct ConversionError {
  double max_abs = 0;     // max |converted − original|
  double sum_sq_err = 0;  // Σ (converted − original)², in fp64
  double sum_sq_ref = 0;  // Σ original², in fp64 (relative RMS = sqrt(sum_sq_err / sum_sq_ref))
  uint64_t values = 0;
};

// `rows` rows of `K` values each (blocks run along a row, as the packer quantises an output lane).
// Adds into `acc`, so a matrix can be measured in pieces.
void measure_conversion_error(const float* v, uint64_t rows, int K, DType dtype, ConversionError* acc);

}  // namespace moecap
