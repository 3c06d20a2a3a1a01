#include "checkpoint/tensor_reader.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <vector>

#include "checkpoint/quant_formats.h"
#include "error.h"
#include "runtime/file_io.h"
#include "weights/numeric.h"

namespace moecap {

namespace {

constexpr uint64_t kQ8Block = 32;
constexpr uint64_t kQ8BlockBytes = 34;
constexpr uint64_t kMxBlockBytes = 17;  // ggml block_mxfp4
// Converted in pieces so a large range needs only a bounded staging buffer.
constexpr uint64_t kChunkBytes = uint64_t(4) << 20;

std::atomic<uint64_t> g_preads{0}, g_bytes{0};

uint16_t load_u16(const uint8_t* p) { return uint16_t(p[0] | (uint16_t(p[1]) << 8)); }

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close_file(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// Reads n bytes at `offset`; returns the bytes read, fewer than n only when the file ends first.
uint64_t pread_upto(int fd, uint8_t* dst, uint64_t n, uint64_t offset, const std::string& path) {
  uint64_t got = 0;
  while (got < n) {
    const int64_t r = read_at(fd, dst + got, size_t(n - got), offset + got);
    if (r < 0) {
      if (errno == EINTR) continue;
      throw_io("cannot read checkpoint file " + path + ": " + std::strerror(errno));
    }
    if (r == 0) break;
    g_preads.fetch_add(1, std::memory_order_relaxed);
    g_bytes.fetch_add(uint64_t(r), std::memory_order_relaxed);
    got += uint64_t(r);
  }
  return got;
}

bool pread_all(int fd, uint8_t* dst, uint64_t n, uint64_t offset, const std::string& path) {
  return pread_upto(fd, dst, n, offset, path) == n;
}

}  // namespace

TensorReadCounters tensor_read_counters() {
  return {g_preads.load(std::memory_order_relaxed), g_bytes.load(std::memory_order_relaxed)};
}

uint64_t read_checkpoint_bytes(int fd, const std::string& path, uint64_t offset, uint64_t n, uint8_t* dst) {
  return pread_upto(fd, dst, n, offset, path);
}

bool parse_tensor_dtype(const std::string& name, TensorDType* out) {
  if (name == "F32") *out = TensorDType::F32;
  else if (name == "F16") *out = TensorDType::F16;
  else if (name == "BF16") *out = TensorDType::BF16;
  else if (name == "Q8_0") *out = TensorDType::Q8_0;
  else if (name == "MXFP4") *out = TensorDType::MXFP4;
  else if (name == "Q4_0") *out = TensorDType::Q4_0;
  else if (name == "Q4_1") *out = TensorDType::Q4_1;
  else if (name == "Q5_0") *out = TensorDType::Q5_0;
  else if (name == "Q5_1") *out = TensorDType::Q5_1;
  else if (name == "Q4_K") *out = TensorDType::Q4_K;
  else if (name == "Q5_K") *out = TensorDType::Q5_K;
  else if (name == "Q6_K") *out = TensorDType::Q6_K;
  else if (name == "F8_E4M3") *out = TensorDType::F8_E4M3;
  else return false;
  return true;
}

const char* tensor_dtype_name(TensorDType dt) {
  switch (dt) {
    case TensorDType::F32: return "F32";
    case TensorDType::F16: return "F16";
    case TensorDType::BF16: return "BF16";
    case TensorDType::Q8_0: return "Q8_0";
    case TensorDType::MXFP4: return "MXFP4";
    case TensorDType::Q4_0: return "Q4_0";
    case TensorDType::Q4_1: return "Q4_1";
    case TensorDType::Q5_0: return "Q5_0";
    case TensorDType::Q5_1: return "Q5_1";
    case TensorDType::Q4_K: return "Q4_K";
    case TensorDType::Q5_K: return "Q5_K";
    case TensorDType::Q6_K: return "Q6_K";
    case TensorDType::F8_E4M3: return "F8_E4M3";
  }
  return "?";
}

const char* tensor_dtype_names() {
  return "F32, F16, BF16, Q8_0, MXFP4, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K, F8_E4M3";
}

uint64_t tensor_block_elements(TensorDType dt) {
  switch (dt) {
    case TensorDType::Q8_0:
    case TensorDType::MXFP4: return kQ8Block;
    case TensorDType::Q4_0: return kQ4_0Elements;
    case TensorDType::Q4_1: return kQ4_1Elements;
    case TensorDType::Q5_0: return kQ5_0Elements;
    case TensorDType::Q5_1: return kQ5_1Elements;
    case TensorDType::Q4_K: return kQ4_KElements;
    case TensorDType::Q5_K: return kQ5_KElements;
    case TensorDType::Q6_K: return kQ6_KElements;
    default: return 1;
  }
}

uint64_t tensor_block_bytes(TensorDType dt) {
  switch (dt) {
    case TensorDType::F32: return 4;
    case TensorDType::F16:
    case TensorDType::BF16: return 2;
    case TensorDType::Q8_0: return kQ8BlockBytes;
    case TensorDType::Q4_0: return kQ4_0Bytes;
    case TensorDType::Q4_1: return kQ4_1Bytes;
    case TensorDType::Q5_0: return kQ5_0Bytes;
    case TensorDType::Q5_1: return kQ5_1Bytes;
    case TensorDType::Q4_K: return kQ4_KBytes;
    case TensorDType::Q5_K: return kQ5_KBytes;
    case TensorDType::Q6_K: return kQ6_KBytes;
    case TensorDType::F8_E4M3: return 1;
    case TensorDType::MXFP4: return kMxBlockBytes;
  }
  return 0;
}

uint64_t tensor_bytes(TensorDType dt, uint64_t elements) {
  return elements / tensor_block_elements(dt) * tensor_block_bytes(dt);
}

// Whole blocks of a ggml quant format, one decoder call each.
static void decode_blocks(const uint8_t* src, uint64_t elements, float* out, uint64_t block_elements,
                          uint64_t block_bytes, void (*decode)(const uint8_t*, float*)) {
  for (uint64_t b = 0; b < elements / block_elements; ++b) decode(src + b * block_bytes, out + b * block_elements);
}

void convert_to_f32(TensorDType dt, const uint8_t* src, uint64_t elements, float* out) {
  switch (dt) {
    case TensorDType::F32:
      for (uint64_t i = 0; i < elements; ++i) {
        uint32_t u = uint32_t(src[4 * i]) | (uint32_t(src[4 * i + 1]) << 8) | (uint32_t(src[4 * i + 2]) << 16) |
                     (uint32_t(src[4 * i + 3]) << 24);
        out[i] = bits_f32(u);
      }
      break;
    case TensorDType::F16:
      for (uint64_t i = 0; i < elements; ++i) out[i] = f16_to_f32(load_u16(src + 2 * i));
      break;
    case TensorDType::BF16:
      for (uint64_t i = 0; i < elements; ++i) out[i] = bf16_to_f32(load_u16(src + 2 * i));
      break;
    case TensorDType::Q8_0:
      for (uint64_t b = 0; b < elements / kQ8Block; ++b) {
        const uint8_t* blk = src + b * kQ8BlockBytes;
        const float d = f16_to_f32(load_u16(blk));
        for (uint64_t j = 0; j < kQ8Block; ++j) out[b * kQ8Block + j] = float(int8_t(blk[2 + j])) * d;
      }
      break;
    case TensorDType::Q4_0: decode_blocks(src, elements, out, kQ4_0Elements, kQ4_0Bytes, decode_q4_0_block); break;
    case TensorDType::Q4_1: decode_blocks(src, elements, out, kQ4_1Elements, kQ4_1Bytes, decode_q4_1_block); break;
    case TensorDType::Q5_0: decode_blocks(src, elements, out, kQ5_0Elements, kQ5_0Bytes, decode_q5_0_block); break;
    case TensorDType::Q5_1: decode_blocks(src, elements, out, kQ5_1Elements, kQ5_1Bytes, decode_q5_1_block); break;
    case TensorDType::Q4_K: decode_blocks(src, elements, out, kQ4_KElements, kQ4_KBytes, decode_q4_k_block); break;
    case TensorDType::Q5_K: decode_blocks(src, elements, out, kQ5_KElements, kQ5_KBytes, decode_q5_k_block); break;
    case TensorDType::Q6_K: decode_blocks(src, elements, out, kQ6_KElements, kQ6_KBytes, decode_q6_k_block); break;
    case TensorDType::F8_E4M3:
      for (uint64_t i = 0; i < elements; ++i) out[i] = fp8_e4m3_to_f32(src[i]);
      break;
    case TensorDType::MXFP4:
      for (uint64_t b = 0; b < elements / kQ8Block; ++b) {
        const uint8_t* blk = src + b * kMxBlockBytes;
        float* y = out + b * kQ8Block;
        for (int j = 0; j < 16; ++j) {
          y[j] = mxfp4_value(blk[1 + j] & 0x0F, blk[0]);
          y[j + 16] = mxfp4_value(blk[1 + j] >> 4, blk[0]);
        }
      }
      break;
  }
}

float mxfp4_value(uint8_t nibble, uint8_t e) {
  static const float kDoubled[8] = {0, 1, 2, 3, 4, 6, 8, 12};
  if (e == 255) return std::nanf("");
  const float m = std::ldexp(kDoubled[nibble & 7], int(e) - 128);
  return (nibble & 8) ? -m : m;
}

void check_finite(const float* v, uint64_t n, uint64_t first, const std::string& path, const std::string& tensor,
                  bool in_tensor) {
  // A branch-free pass over the exponent bits first (it vectorises; every row converted goes
  // through here), then the slow search only when some value is NaN or Inf.
  uint32_t special = 0;
  for (uint64_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, v + i, 4);
    special |= uint32_t((u & 0x7F800000u) == 0x7F800000u);
  }
  if (!special) return;
  for (uint64_t i = 0; i < n; ++i)
    if (!std::isfinite(v[i]))
      throw_corrupt("tensor " + tensor + " in " + path + " holds " + (std::isnan(v[i]) ? "NaN" : "Inf") +
                    " at element " + std::to_string(first + i) + (in_tensor ? "" : " of the range read") +
                    " (weights must be finite)");
}

void convert_tensor_elements(TensorDType dt, const uint8_t* src, uint64_t elements, float* out, const std::string& path,
                             const std::string& tensor, uint64_t first_element, bool in_tensor) {
  convert_to_f32(dt, src, elements, out);
  check_finite(out, elements, first_element, path, tensor, in_tensor);
}

void convert_strided(TensorDType dt, const uint8_t* src, uint64_t stride, uint64_t n, float* out) {
  for (uint64_t i = 0; i < n; ++i, src += stride) switch (dt) {
      case TensorDType::F32:
        out[i] =
            bits_f32(uint32_t(src[0]) | (uint32_t(src[1]) << 8) | (uint32_t(src[2]) << 16) | (uint32_t(src[3]) << 24));
        break;
      case TensorDType::F16: out[i] = f16_to_f32(load_u16(src)); break;
      case TensorDType::BF16: out[i] = bf16_to_f32(load_u16(src)); break;
      case TensorDType::F8_E4M3: out[i] = fp8_e4m3_to_f32(src[0]); break;
      default: throw_runtime(std::string("convert_strided: ") + tensor_dtype_name(dt) + " is a block format");
    }
}

void decode_mxfp4_split(const uint8_t* blocks, const uint8_t* scales, uint64_t nblocks, float* out) {
  for (uint64_t b = 0; b < nblocks; ++b)
    for (int j = 0; j < 16; ++j) {
      const uint8_t byte = blocks[size_t(b * 16 + uint64_t(j))];
      out[b * kQ8Block + uint64_t(2 * j)] = mxfp4_value(byte & 0x0F, scales[size_t(b)]);
      out[b * kQ8Block + uint64_t(2 * j + 1)] = mxfp4_value(byte >> 4, scales[size_t(b)]);
    }
}

void read_mxfp4_split(const std::string& blocks_path, uint64_t blocks_offset, const std::string& scales_path,
                      uint64_t scales_offset, uint64_t elements, float* out, const std::string& tensor) {
  if (elements % kQ8Block != 0) throw_range("MXFP4 reads must cover whole 32-element blocks (tensor " + tensor + ")");
  Fd fb(open_read(blocks_path));
  if (fb.get() < 0) throw_io("cannot open checkpoint file " + blocks_path + ": " + std::strerror(errno));
  Fd fs(open_read(scales_path));
  if (fs.get() < 0) throw_io("cannot open checkpoint file " + scales_path + ": " + std::strerror(errno));
  const uint64_t chunk_blocks = kChunkBytes / 16;
  const uint64_t nblocks = elements / kQ8Block;
  std::vector<uint8_t> blocks(size_t(std::min(chunk_blocks, nblocks) * 16)),
      scales(size_t(std::min(chunk_blocks, nblocks)));
  for (uint64_t done = 0; done < nblocks;) {
    const uint64_t n = std::min(chunk_blocks, nblocks - done);
    if (!pread_all(fb.get(), blocks.data(), n * 16, blocks_offset + done * 16, blocks_path))
      throw_corrupt("checkpoint file " + blocks_path + " ends inside tensor " + tensor + "_blocks (truncated)");
    if (!pread_all(fs.get(), scales.data(), n, scales_offset + done, scales_path))
      throw_corrupt("checkpoint file " + scales_path + " ends inside tensor " + tensor + "_scales (truncated)");
    float* y = out + done * kQ8Block;
    decode_mxfp4_split(blocks.data(), scales.data(), n, y);
    check_finite(y, n * kQ8Block, done * kQ8Block, blocks_path, tensor, false);
    done += n;
  }
}

void read_tensor_elements(const std::string& path, uint64_t offset, TensorDType dt, uint64_t elements, float* out,
                          const std::string& tensor) {
  Fd fd(open_read(path));
  if (fd.get() < 0) throw_io("cannot open checkpoint file " + path + ": " + std::strerror(errno));
  read_tensor_elements_fd(fd.get(), path, offset, dt, elements, out, tensor);
}

void read_tensor_bytes_fd(int fd, const std::string& path, uint64_t offset, uint64_t n, uint8_t* dst,
                          const std::string& tensor) {
  if (!pread_all(fd, dst, n, offset, path))
    throw_corrupt("checkpoint file " + path + " ends inside tensor " + tensor + " (truncated)");
}

void read_tensor_elements_fd(int fd, const std::string& path, uint64_t offset, TensorDType dt, uint64_t elements,
                             float* out, const std::string& tensor, uint64_t first_element) {
  const uint64_t block = tensor_block_elements(dt);
  if (elements % block != 0)
    throw_range(std::string(tensor_dtype_name(dt)) + " reads must cover whole " + std::to_string(block) +
                "-element blocks (tensor " + tensor + ")");
  // Whole blocks per chunk.
  const uint64_t chunk_elements = kChunkBytes / tensor_block_bytes(dt) * block;
  std::vector<uint8_t> staging(size_t(std::min(tensor_bytes(dt, chunk_elements), tensor_bytes(dt, elements))));
  for (uint64_t done = 0; done < elements;) {
    const uint64_t n = std::min(chunk_elements, elements - done);
    const uint64_t bytes = tensor_bytes(dt, n);
    if (!pread_all(fd, staging.data(), bytes, offset + tensor_bytes(dt, done), path))
      throw_corrupt("checkpoint file " + path + " ends inside tensor " + tensor + " (truncated)");
    convert_tensor_elements(dt, staging.data(), n, out + done, path, tensor, first_element + done, first_element != 0);
    done += n;
  }
}

}  // namespace moecap
