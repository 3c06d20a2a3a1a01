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

}  // namespace

CheckpointWeights::CheckpointWeights(const std::map<Matrix, std::vector<CheckpointSlice>>& matrices, int experts,
                                     const std::string& key)
    : fingerprint_(xxhash64(key.data(), key.size(), 0xC4EC)) {
  try {
    for (const auto& kv : matrices) {
      Source& s = matrices_[kv.first];
      for (const CheckpointSlice& sl : kv.second) {
        if (sl.cols == 0 || sl.rows == 0) throw_range("checkpoint slice of tensor " + sl.tensor + " is empty");
        const uint64_t block = tensor_block_elements(sl.dtype);
        if (sl.cols % block != 0)
          throw_range("tensor " + sl.tensor + " is " + tensor_dtype_name(sl.dtype) + " with rows of " +
                      std::to_string(sl.cols) + " elements (not whole " + std::to_string(block) + "-element blocks)");
        auto it = fds_.find(sl.file);
        if (it == fds_.end()) {
          const int fd = open_read(sl.file);
          if (fd < 0) throw_io("cannot open checkpoint file " + sl.file + ": " + std::strerror(errno));
          it = fds_.emplace(sl.file, fd).first;
        }
        std::shared_ptr<const BlockScales> scales;
        if (sl.scaled) scales = std::make_shared<const BlockScales>(sl.scales, sl.tensor);
        s.runs.push_back({sl, s.rows, it->second, scales});
        s.rows += sl.rows;
      }
      s.rows_per_expert = is_expert_matrix(kv.first) && experts > 0 ? s.rows / uint64_t(experts) : s.rows;
    }
  } catch (...) {
    for (auto& kv : fds_) close_file(kv.second);
    throw;
  }
}

CheckpointWeights::~CheckpointWeights() {
  for (auto& kv : fds_) close_file(kv.second);
}

void CheckpointWeights::row(Matrix m, int expert, int r, int cols, float* out) const {
  auto it = matrices_.find(m);
  if (it == matrices_.end()) throw_runtime("checkpoint weights: matrix " + std::to_string(int(m)) + " was not given");
  const Source& s = it->second;
  const uint64_t g = uint64_t(expert) * s.rows_per_expert + uint64_t(r);
  if (g >= s.rows) throw_runtime("checkpoint weights: row " + std::to_string(g) + " past the matrix's rows");
  // The run holding row g: the last one starting at or before it.
  auto run =
      std::upper_bound(s.runs.begin(), s.runs.end(), g, [](uint64_t v, const Run& x) { return v < x.first_row; }) - 1;
  const CheckpointSlice& sl = run->slice;
  if (uint64_t(cols) != sl.cols)
    throw_runtime("checkpoint weights: tensor " + sl.tensor + " has rows of " + std::to_string(sl.cols) +
                  " elements, the layer reads " + std::to_string(cols));
  const uint64_t in_slice = g - run->first_row;
  read_tensor_elements_fd(run->fd, sl.file, sl.offset + in_slice * tensor_bytes(sl.dtype, sl.cols), sl.dtype, sl.cols,
                          out, sl.tensor, (sl.tensor_row + in_slice) * sl.cols);
  if (run->scales) run->scales->apply(sl.tensor_row + in_slice, 1, out, sl.tensor, sl.file);
}

}  // namespace moecap
