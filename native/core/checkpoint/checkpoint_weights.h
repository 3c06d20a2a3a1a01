// A layer's master weights read straight from the checkpoint's files on demand. Expert rows come
// from a staged expert (expert_staging: the expert's rows read in a few large reads, the next
// expert read in the background while this one packs; stored codes come from there too); the
// router's and the shared expert's rows are read one positioned read a row. Packing then
// streams: write_expert_file packs one expert at a time from here, so converting a checkpoint
// larger than memory holds a few experts, not the layer.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "checkpoint/checkpoint_slice.h"
#include "checkpoint/expert_staging.h"
#include "weights/weight_source.h"

namespace moecap {

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
  void will_read_expert(int expert) const override { stager_->prefetch(expert); }
  void done_reading_experts() const override { stager_->clear(); }
  uint64_t fingerprint() const override { return fingerprint_; }
  // GGUF MXFP4 rows as mxfp4, F8_E4M3 rows whose block scales are 128 columns wide as fp8, and
  // unscaled BF16 rows as bf16 (a row holding a NaN/Inf is left to row(), which names it). A NaN
  // code (E4M3 0x7F/0xFF) or NaN scale (E8M0 0xFF) is ERR_CORRUPT_FILE naming file, tensor, row.
  bool stored_codes(Matrix m, int expert, int row, int cols, DType dtype, uint8_t* codes, void* scales) const override;

 private:
  int open_file(const std::string& file);
  std::map<Matrix, CheckpointMatrix> matrices_;
  const CheckpointRun& find_run(Matrix m, int expert, int row, int cols, uint64_t* in_slice) const;
  std::map<std::string, int> fds_;
  uint64_t fingerprint_;
  std::unique_ptr<ExpertStager> stager_;  // declared last: its reader goes before the descriptors
};

}  // namespace moecap
