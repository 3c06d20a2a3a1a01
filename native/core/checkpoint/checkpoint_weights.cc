#include "checkpoint/checkpoint_weights.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "error.h"
#include "offload/xxhash64.h"
#include "runtime/file_io.h"

namespace moecap {

namespace {

bool is_expert_matrix(Matrix m) { return m == Matrix::Gate || m == Matrix::Up || m == Matrix::Down; }

// The layouts other than plain rows (transposed, strided, split MXFP4) are read only through
// staging, which expert matrices use; a run is checked to lie inside its tensor view.
void check_slice(const CheckpointSlice& sl, bool expert) {
  const uint64_t block = tensor_block_elements(sl.dtype);
  if (sl.cols % block != 0)
    throw_range("tensor " + sl.tensor + " is " + tensor_dtype_name(sl.dtype) + " with rows of " +
                std::to_string(sl.cols) + " elements (not whole " + std::to_string(block) + "-element blocks)");
  const bool plain = !sl.transposed && !sl.mx_split && sl.row_step == 1 && sl.tensor_cols == 0;
  if (!expert && !plain)
    throw_range("checkpoint slice of tensor " + sl.tensor + ": only expert matrices take a layout");
  if (sl.row_step == 0 || sl.col_step == 0) throw_range("checkpoint slice of tensor " + sl.tensor + ": a step of 0");
  if (sl.mx_split && (sl.dtype != TensorDType::MXFP4 || sl.row_elements() % 32 != 0 || sl.transposed))
    throw_range("checkpoint slice of tensor " + sl.tensor + ": split MXFP4 needs dtype MXFP4 and rows of 32k elements");
  if (sl.transposed) {
    if (block != 1 || sl.scaled)
      throw_range("checkpoint slice of tensor " + sl.tensor + ": a transposed tensor must be F32, F16 or BF16, not " +
                  tensor_dtype_name(sl.dtype));
    if (sl.col_start + (sl.rows - 1) * sl.col_step >= sl.row_elements())
      throw_range("checkpoint slice of tensor " + sl.tensor + ": columns past its rows of " +
                  std::to_string(sl.row_elements()) + " elements");
  } else if (sl.tensor_cols != 0 && sl.tensor_cols != sl.cols) {
    throw_range("checkpoint slice of tensor " + sl.tensor + ": rows of " + std::to_string(sl.cols) +
                " elements in a tensor of rows of " + std::to_string(sl.tensor_cols));
  }
}

}  // namespace

int CheckpointWeights::open_file(const std::string& file) {
  auto it = fds_.find(file);
  if (it == fds_.end()) {
    const int fd = open_read(file);
    if (fd < 0) throw_io("cannot open checkpoint file " + file + ": " + std::strerror(errno));
    it = fds_.emplace(file, fd).first;
  }
  return it->second;
}

CheckpointWeights::CheckpointWeights(const std::map<Matrix, std::vector<CheckpointSlice>>& matrices, int experts,
                                     const std::string& key)
    : fingerprint_(xxhash64(key.data(), key.size(), 0xC4EC)) {
  try {
    for (const auto& kv : matrices) {
      CheckpointMatrix& s = matrices_[kv.first];
      for (const CheckpointSlice& sl : kv.second) {
        if (sl.cols == 0 || sl.rows == 0) throw_range("checkpoint slice of tensor " + sl.tensor + " is empty");
        check_slice(sl, is_expert_matrix(kv.first));
        CheckpointRun run;
        run.slice = sl;
        run.first_row = s.rows;
        run.fd = open_file(sl.file);
        if (sl.mx_split) run.mx_scales_fd = open_file(sl.mx_scales_file);
        if (sl.scaled) run.scales = std::make_shared<const BlockScales>(sl.scales, sl.tensor);
        s.runs.push_back(std::move(run));
        s.rows += sl.rows;
      }
      s.rows_per_expert = is_expert_matrix(kv.first) && experts > 0 ? s.rows / uint64_t(experts) : s.rows;
    }
    stager_.reset(new ExpertStager(matrices_));
  } catch (...) {
    for (auto& kv : fds_) close_file(kv.second);
    throw;
  }
}

CheckpointWeights::~CheckpointWeights() {
  stager_.reset();
  for (auto& kv : fds_) close_file(kv.second);
}

void CheckpointWeights::row(Matrix m, int expert, int r, int cols, float* out) const {
  auto it = matrices_.find(m);
  if (it == matrices_.end()) throw_runtime("checkpoint weights: matrix " + std::to_string(int(m)) + " was not given");
  const CheckpointMatrix& s = it->second;
  const uint64_t g = uint64_t(expert) * s.rows_per_expert + uint64_t(r);
  if (g >= s.rows) throw_runtime("checkpoint weights: row " + std::to_string(g) + " past the matrix's rows");
  // The run holding row g: the last one starting at or before it.
  auto run = std::upper_bound(s.runs.begin(), s.runs.end(), g,
                              [](uint64_t v, const CheckpointRun& x) { return v < x.first_row; }) -
             1;
  const CheckpointSlice& sl = run->slice;
  if (uint64_t(cols) != sl.cols)
    throw_runtime("checkpoint weights: tensor " + sl.tensor + " has rows of " + std::to_string(sl.cols) +
                  " elements, the layer reads " + std::to_string(cols));
  if (is_expert_matrix(m)) {
    stager_->get(expert)->row(m, uint64_t(r), out);
    return;
  }
  const uint64_t in_slice = g - run->first_row;
  read_tensor_elements_fd(run->fd, sl.file, sl.offset + in_slice * tensor_bytes(sl.dtype, sl.cols), sl.dtype, sl.cols,
                          out, sl.tensor, (sl.tensor_row + in_slice) * sl.cols);
  if (run->scales) run->scales->apply(sl.tensor_row + in_slice, 1, out, sl.tensor, sl.file);
}

}  // namespace moecap
