// Reads one contiguous run of a checkpoint tensor's elements (safetensors or GGUF) from its file
// with a positioned read of just that byte range, and converts it to fp32. The TypeScript layer
// parses and validates the headers; this unit only moves and converts bytes.
#pragma once
#include <cstdint>
#include <string>

namespace moecap {

// On-disk element formats the reader converts. Q8_0 is ggml's block format: per 32 elements an
// fp16 scale d and 32 int8 q, value = q·d (34 bytes a block). MXFP4 is ggml's block_mxfp4: per
// 32 elements an E8M0 byte e then 16 bytes of E2M1 nibbles, element j < 16 in the low nibble of
// byte j and element j + 16 in its high nibble (17 bytes a block). Q4_0, Q4_K, Q6_K and F8_E4M3
// are decoded by quant_formats.h (F8_E4M3 here is the bare element; its block scales are applied
// by the caller, read_scaled_rows).
enum class TensorDType { F32, F16, BF16, Q8_0, MXFP4, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K, F8_E4M3 };

// The dtype's name ("F32", "Q4_K", "MXFP4", …) → dtype; false for any other name.
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
// preads `n` raw bytes of `path` at `offset` into dst (a short read is ERR_CORRUPT_FILE naming
// `path` and `tensor`): for packing a checkpoint's codes bitwise (WeightSource::stored_codes).
void read_tensor_bytes_fd(int fd, const std::string& path, uint64_t offset, uint64_t n, uint8_t* dst,
                          const std::string& tensor);
// Reads up to n bytes of `path` at `offset` into dst through `fd` (counted as above); returns the
// bytes read, fewer only where the file ends. An I/O error is ERR_IO naming `path`.
uint64_t read_checkpoint_bytes(int fd, const std::string& path, uint64_t offset, uint64_t n, uint8_t* dst);

// convert_to_f32, then a NaN/Inf value is ERR_CORRUPT_FILE naming `path`, `tensor` and the element
// (`first_element` + i: an index in the tensor when `in_tensor`, else in the range read).
void convert_tensor_elements(TensorDType dt, const uint8_t* src, uint64_t elements, float* out, const std::string& path,
                             const std::string& tensor, uint64_t first_element, bool in_tensor);

// A NaN/Inf among v[0..n) is ERR_CORRUPT_FILE naming `path`, `tensor` and the element (`first` + i,
// in the tensor when `in_tensor`, else in the range read).
void check_finite(const float* v, uint64_t n, uint64_t first, const std::string& path, const std::string& tensor,
                  bool in_tensor);

// `n` elements of an element format (F32, F16, BF16, F8_E4M3: not a block format) `stride` bytes
// apart (a column of a row-major tensor) to fp32.
void convert_strided(TensorDType dt, const uint8_t* src, uint64_t stride, uint64_t n, float* out);

// gpt-oss's split MXFP4 (below) from memory: `nblocks` 16-byte blocks and their E8M0 scale bytes.
void decode_mxfp4_split(const uint8_t* blocks, const uint8_t* scales, uint64_t nblocks, float* out);

// One MXFP4 value: E2M1 nibble (sign bit 3) times the E8M0 scale 2^(e − 127), computed as the
// doubled E2M1 magnitude (an integer in {0, 1, 2, 3, 4, 6, 8, 12}) times 2^(e − 128): exact in
// fp32 (at most 2 significant bits), NaN for e = 255 (E8M0's NaN).
float mxfp4_value(uint8_t nibble, uint8_t e);

// gpt-oss's safetensors MXFP4 (`*_blocks` U8 [..., G, 16] + `*_scales` U8 [..., G]): per 32
// elements 16 bytes, element 2j in the low nibble of byte j and 2j + 1 in the high one, and one
// E8M0 scale byte. Reads `elements` (a multiple of 32) starting at the blocks' and scales' byte
// offsets. Errors as read_tensor_elements.
void read_mxfp4_split(const std::string& blocks_path, uint64_t blocks_offset, const std::string& scales_path,
                      uint64_t scales_offset, uint64_t elements, float* out, const std::string& tensor);

}  // namespace moecap
