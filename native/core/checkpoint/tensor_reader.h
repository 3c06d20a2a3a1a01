// Reads one contiguous run of a checkpoint tensor's elements (safetensors or GGUF) from its file
// with a positioned read of just that byte range, and converts it to fp32. The TypeScript layer
// parses and validates the headers; this unit only moves and converts bytes.
#pragma once
#include <cstdint>
#include <string>

namespace moecap {

// On-disk element formats the reader converts. Q8_0 is ggml's block format: per 32 elements an
// fp16 scale d and 32 int8 q, value = q·d (34 bytes a block); Q4_0, Q4_K, Q6_K and F8_E4M3 are
// decoded by quant_formats.h (F8_E4M3 here is the bare element; its block scales are applied by
// the caller, read_scaled_rows).
enum class TensorDType { F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K, F8_E4M3 };

// The dtype's name ("F32", "Q4_K", …) → dtype; false for any other name.
bool parse_tensor_dtype(const std::string& name, TensorDType* out);
// The dtype's name.
const char* tensor_dtype_name(TensorDType dt);
// The names parse_tensor_dtype knows, comma separated (for messages).
const char* tensor_dtype_names();

// Elements of one block of the format (1 for the element formats) and that block's bytes.
uint64_t tensor_block_elements(TensorDType dt);
uint64_t tensor_block_bytes(TensorDType dt);

// Bytes that `elements` elements occupy (a multiple of tensor_block_elements for block formats).
uint64_t tensor_bytes(TensorDType dt, uint64_t elements);

// Converts `elements` elements of `src` (tensor_bytes(dt, elements) bytes) to fp32 in `out`.
void convert_to_f32(TensorDType dt, const uint8_t* src, uint64_t elements, float* out);

// preads tensor_bytes(dt, elements) bytes of `path` at `offset`, converts them into `out`.
// A short read (file truncated) or a NaN/Inf value is ERR_CORRUPT_FILE naming `path` and `tensor`;
// a file that cannot be opened or read is ERR_IO.
void read_tensor_elements(const std::string& path, uint64_t offset, TensorDType dt, uint64_t elements, float* out,
                          const std::string& tensor);

// Checkpoint reads of this process since it started (every pread that returned bytes): what an
// expert-parallel rank read, to check it read only its experts' bytes.
struct TensorReadCounters {
  uint64_t preads = 0, bytes = 0;
};
TensorReadCounters tensor_read_counters();

// The same on a descriptor already open on `path` (thread-safe: pread only). `first_element`:
// the index in the tensor of the first element read, for the NaN/Inf message.
void read_tensor_elements_fd(int fd, const std::string& path, uint64_t offset, TensorDType dt, uint64_t elements,
                             float* out, const std::string& tensor, uint64_t first_element = 0);

}  // namespace moecap
