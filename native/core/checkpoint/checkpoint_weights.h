// A layer's master weights read straight from the checkpoint's files, row by row on demand (a
// positioned read of one row's bytes, converted to fp32 by tensor_reader). Packing then streams:
// write_expert_file packs one expert at a time from here, so converting a checkpoint larger than
// memory holds one packed expert, not the layer.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "checkpoint/block_scales.h"
#include "checkpoint/tensor_reader.h"
#include "weights/weight_source.h"

namespace moecap {

// A run of whole rows of one tensor: `rows` rows of `cols` elements from byte `offset` of `file`,
// the first being row `tensor_row` of the tensor (for error messages).
struct CheckpointSlice {
  std::string file, tensor;
  uint64_t offset = 0, tensor_row = 0;
  TensorDType dtype = TensorDType::F32;
  uint64_t rows = 0, cols = 0;
  // Block-scaled formats (F8_E4M3): the scale tensor, applied to each row as it is read.
  bool scaled = false;
  BlockScaleSpec scales;
};

class CheckpointWeights : public WeightSource {
 public:
  // Each matrix is the concatenation of its slices' rows (the explicit-weight layout: expert e's
  // rows follow expert e-1's). `key` identifies the source (files with their size and mtime, the
  // slices); its hash is the fingerprint an expert file written from here carries.
  CheckpointWeights(const std::map<Matrix, std::vector<CheckpointSlice>>& matrices, int experts,
                    const std::string& key);
  ~CheckpointWeights() override;
  CheckpointWeights(const CheckpointWeights&) = delete;
  CheckpointWeights& operator=(const CheckpointWeights&) = delete;

  // Thread-safe (pread on shared descriptors, a per-thread staging buffer). A short read or a
  // NaN/Inf is ERR_CORRUPT_FILE naming the file and the tensor.
  void row(Matrix m, int expert, int row, int cols, float* out) const override;
  uint64_t fingerprint() const override { return fingerprint_; }
  // GGUF MXFP4 rows as mxfp4, and F8_E4M3 rows whose block scales are 128 columns wide as fp8. A
  // NaN code (E4M3 0x7F/0xFF) or NaN scale (E8M0 0xFF) is ERR_CORRUPT_FILE naming file, tensor, row.
  bool stored_codes(Matrix m, int expert, int row, int cols, DType dtype, uint8_t* codes, void* scales) const override;

 private:
  struct Run {
    CheckpointSlice slice;
    uint64_t first_row;  // index of its first row in the matrix
    int fd;
    std::shared_ptr<const BlockScales> scales;  // when slice.scaled
  };
  struct Source {
    std::vector<Run> runs;
    uint64_t rows = 0, rows_per_expert = 0;
  };
  const Run& find_run(Matrix m, int expert, int row, int cols, uint64_t* in_slice) const;
  std::map<Matrix, Source> matrices_;
  std::map<std::string, int> fds_;
  uint64_t fingerprint_;
};

}  // namespace moecap
