#include "checkpoint/checkpoint_weights.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "error.h"
#include "offload/xxhash64.h"
#include "runtime/file_io.h"
#include "weights/numeric.h"

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

const CheckpointRun& CheckpointWeights::find_run(Matrix m, int expert, int r, int cols, uint64_t* in_slice) const {
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
  *in_slice = g - run->first_row;
  return *run;
}

void CheckpointWeights::row(Matrix m, int expert, int r, int cols, float* out) const {
  uint64_t in_slice;
  const CheckpointRun& run = find_run(m, expert, r, cols, &in_slice);
  if (is_expert_matrix(m)) {
    stager_->get(expert)->row(m, uint64_t(r), out);
    return;
  }
  const CheckpointSlice& sl = run.slice;
  read_tensor_elements_fd(run.fd, sl.file, sl.offset + in_slice * tensor_bytes(sl.dtype, sl.cols), sl.dtype, sl.cols,
                          out, sl.tensor, (sl.tensor_row + in_slice) * sl.cols);
  if (run.scales) run.scales->apply(sl.tensor_row + in_slice, 1, out, sl.tensor, sl.file);
}

bool CheckpointWeights::stored_codes(Matrix m, int expert, int r, int cols, DType dtype, uint8_t* codes,
                                     void* scales) const {
  uint64_t in_slice;
  const CheckpointRun& run = find_run(m, expert, r, cols, &in_slice);
  const CheckpointSlice& sl = run.slice;
  // Codes are kept only from plain row-major rows (GGUF MXFP4, safetensors F8_E4M3); the other
  // layouts (transposed, strided, split MXFP4) are packed from their exact fp32 values.
  if (sl.transposed || sl.mx_split || sl.row_step != 1 || (sl.tensor_cols != 0 && sl.tensor_cols != sl.cols))
    return false;
  const uint64_t trow = sl.tensor_row + in_slice, offset = sl.offset + in_slice * tensor_bytes(sl.dtype, sl.cols);
  auto bad = [&](const std::string& what) {
    throw_corrupt("tensor " + sl.tensor + " in " + sl.file + ", row " + std::to_string(trow) + ": " + what);
  };
  // The row's stored bytes: an expert's from its staged expert (read with the expert's other rows
  // in a few large reads), the router's and shared expert's read here.
  std::shared_ptr<const StagedExpert> staged;
  std::vector<uint8_t> raw;
  auto stored_row = [&]() -> const uint8_t* {
    if (is_expert_matrix(m)) {
      staged = stager_->get(expert);
      if (const uint8_t* b = staged->row_bytes(m, uint64_t(r))) return b;
    }
    raw.resize(size_t(tensor_bytes(sl.dtype, sl.cols)));
    read_tensor_bytes_fd(run.fd, sl.file, offset, raw.size(), raw.data(), sl.tensor);
    return raw.data();
  };
  if (dtype == DType::BF16 && sl.dtype == TensorDType::BF16 && !run.scales) {
    // BF16 → bf16 is the identity on finite values: the bits are kept without the fp32 round trip.
    const uint8_t* b = stored_row();
    std::memcpy(codes, b, size_t(sl.cols) * 2);
    uint32_t special = 0;  // branch-free over the exponent bits (it vectorises)
    for (uint64_t c = 0; c < sl.cols; ++c)
      special |= uint32_t(((uint32_t(b[2 * c]) | uint32_t(b[2 * c + 1]) << 8) & 0x7F80u) == 0x7F80u);
    return special == 0;  // a NaN/Inf: row() reports it, naming the element
  }
  if (dtype == DType::MXFP4 && sl.dtype == TensorDType::MXFP4) {
    // ggml block_mxfp4: E8M0 byte, then element j < 16 in the low nibble of byte j, j + 16 in its high one.
    const uint64_t nb = sl.cols / 32;
    const uint8_t* raw_blocks = stored_row();
    uint8_t* e8 = static_cast<uint8_t*>(scales);
    for (uint64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = raw_blocks + b * 17;
      if (blk[0] == 0xFF) bad("block " + std::to_string(b) + " has the E8M0 scale 0xFF (NaN)");
      e8[b] = blk[0];
      for (int j = 0; j < 16; ++j) {
        codes[b * 32 + j] = blk[1 + j] & 0x0F;
        codes[b * 32 + 16 + j] = blk[1 + j] >> 4;
      }
    }
    return true;
  }
  if (dtype == DType::FP8 && sl.dtype == TensorDType::F8_E4M3 && run.scales && run.scales->block_cols() == 128) {
    std::memcpy(codes, stored_row(), size_t(sl.cols));
    for (uint64_t c = 0; c < sl.cols; ++c)
      if (e4m3_is_nan(codes[c])) bad("element " + std::to_string(c) + " is an E4M3 NaN code");
    float* s = static_cast<float*>(scales);
    for (uint64_t b = 0; b < (sl.cols + 127) / 128; ++b) s[b] = run.scales->at(trow, b);
    return true;
  }
  return false;
}

}  // namespace moecap
