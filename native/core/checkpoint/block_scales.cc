#include "checkpoint/block_scales.h"

#include <cmath>

#include "error.h"

namespace moecap {

BlockScales::BlockScales(const BlockScaleSpec& spec, const std::string& weight) : spec_(spec) {
  const uint64_t weight_rows = spec.weight_rows, weight_cols = spec.weight_cols;
  if (spec.block_rows == 0 || spec.block_cols == 0) throw_range("block scales of " + weight + ": block size is 0");
  const uint64_t want_r = (weight_rows + spec.block_rows - 1) / spec.block_rows;
  const uint64_t want_c = (weight_cols + spec.block_cols - 1) / spec.block_cols;
  if (spec.rows != want_r || spec.cols != want_c)
    throw_corrupt(spec.file + ": scale tensor " + spec.tensor + " has shape [" + std::to_string(spec.rows) + ", " +
                  std::to_string(spec.cols) + "] but " + weight + " [" + std::to_string(weight_rows) + ", " +
                  std::to_string(weight_cols) + "] in " + std::to_string(spec.block_rows) + "×" +
                  std::to_string(spec.block_cols) + " blocks needs [" + std::to_string(want_r) + ", " +
                  std::to_string(want_c) + "]");
  scales_.resize(size_t(spec.rows * spec.cols));
  read_tensor_elements(spec.file, spec.offset, spec.dtype, spec.rows * spec.cols, scales_.data(), spec.tensor);
}

void BlockScales::apply(uint64_t first_row, uint64_t rows, float* values, const std::string& weight,
                        const std::string& file) const {
  if (first_row + rows > spec_.weight_rows)
    throw_range("block scales of " + weight + ": rows past the weight's " + std::to_string(spec_.weight_rows));
  for (uint64_t r = 0; r < rows; ++r) {
    const float* srow = scales_.data() + (first_row + r) / spec_.block_rows * spec_.cols;
    float* v = values + r * spec_.weight_cols;
    for (uint64_t c = 0; c < spec_.weight_cols; ++c) {
      v[c] *= srow[c / spec_.block_cols];
      if (!std::isfinite(v[c]))
        throw_corrupt("tensor " + weight + " in " + file + ": element " +
                      std::to_string((first_row + r) * spec_.weight_cols + c) + " times its block scale (" +
                      spec_.tensor + ") is not finite");
    }
  }
}

}  // namespace moecap
