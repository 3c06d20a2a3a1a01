// Where a run of one layer matrix's rows lies in a checkpoint tensor, and those runs opened for
// reading. CheckpointWeights serves rows from them; expert_staging reads an expert's runs in bulk.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "checkpoint/block_scales.h"
#include "checkpoint/tensor_reader.h"

namespace moecap {

// `rows` matrix rows of `cols` elements each. The tensor is viewed as rows of `tensor_cols`
// elements (0: `cols`); `offset` is the byte offset of its row `tensor_row` in `file`.
//   rows layout (default):  matrix row i = tensor row tensor_row + i·row_step (row_step 2:
//                           gpt-oss's interleaved gate/up rows);
//   transposed:             matrix row i = column col_start + i·col_step of the `cols` tensor
//                           rows from tensor_row (an [in, out] expert tensor: gpt-oss's and Llama
//                           4's x @ W); an element format only.
struct CheckpointSlice {
  std::string file, tensor;
  uint64_t offset = 0, tensor_row = 0;
  TensorDType dtype = TensorDType::F32;
  uint64_t rows = 0, cols = 0;
  uint64_t row_step = 1;
  bool transposed = false;
  uint64_t col_start = 0, col_step = 1, tensor_cols = 0;
  // Block-scaled formats (F8_E4M3): the scale tensor, applied to each row as it is read.
  bool scaled = false;
  BlockScaleSpec scales;
  // gpt-oss's split MXFP4 (dtype MXFP4): `offset` points into the `*_blocks` tensor (16 bytes of
  // nibbles per 32 elements), `mx_scales_offset` at the same tensor row of the `*_scales` tensor
  // in `mx_scales_file` (one E8M0 byte per 32 elements).
  bool mx_split = false;
  std::string mx_scales_file;
  uint64_t mx_scales_offset = 0;

  uint64_t row_elements() const { return tensor_cols ? tensor_cols : cols; }
  // Bytes of one tensor row at `offset` (the blocks' bytes for split MXFP4), and of its scales.
  uint64_t row_bytes() const { return mx_split ? row_elements() / 2 : tensor_bytes(dtype, row_elements()); }
  uint64_t scale_row_bytes() const { return mx_split ? row_elements() / 32 : 0; }
};

// A slice opened: its first row's index in the matrix, the descriptors of its files, its scales.
struct CheckpointRun {
  CheckpointSlice slice;
  uint64_t first_row = 0;
  int fd = -1, mx_scales_fd = -1;
  std::shared_ptr<const BlockScales> scales;  // when slice.scaled
};

// One matrix: its runs in row order. Expert e's rows are [e·rows_per_expert, (e+1)·rows_per_expert).
struct CheckpointMatrix {
  std::vector<CheckpointRun> runs;
  uint64_t rows = 0, rows_per_expert = 0;
};

}  // namespace moecap
