// Per-block scales of a block-quantised checkpoint tensor (DeepSeek-V3's FP8 releases: an F8_E4M3
// weight [R, C] with a companion `<name>_scale_inv` [ceil(R/br), ceil(C/bc)], value = fp8 ·
// scale_inv of its br×bc block, one fp32 multiply as the release's weight_dequant does it). The
// scale tensor is small (one value per block), so it is read whole, once, when a layer opens.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "checkpoint/tensor_reader.h"

namespace moecap {

struct BlockScaleSpec {
  std::string file, tensor;  // the scale tensor
  uint64_t offset = 0;
  TensorDType dtype = TensorDType::F32;
  uint64_t rows = 0, cols = 0;                // its shape
  uint64_t block_rows = 0, block_cols = 0;    // the weight elements each scale covers
  uint64_t weight_rows = 0, weight_cols = 0;  // the shape of the weight it scales
};

class BlockScales {
 public:
  // Reads the scale tensor (a NaN/Inf scale or a short file is ERR_CORRUPT_FILE naming it); the
  // weight it scales, `weight`, must have exactly the scale tensor's block grid, else
  // ERR_CORRUPT_FILE naming both.
  BlockScales(const BlockScaleSpec& spec, const std::string& weight);

  // Multiplies `rows` decoded rows of the weight, from tensor row `first_row`, by their blocks'
  // scales; a product that overflows is ERR_CORRUPT_FILE naming the weight and `file`.
  void apply(uint64_t first_row, uint64_t rows, float* values, const std::string& weight,
             const std::string& file) const;
  // The scale of weight row `row`, column block `col_block` (of block_cols() columns), as read.
  float at(uint64_t row, uint64_t col_block) const {
    return scales_[size_t(row / spec_.block_rows * spec_.cols + col_block)];
  }
  uint64_t block_cols() const { return spec_.block_cols; }

 private:
  BlockScaleSpec spec_;
  std::vector<float> scales_;
};

}  // namespace moecap
