// Byte layout of an int8/int4 weight panel (32 output lanes; see weights/packed_matrix.h): block b
// of 32 inputs holds its values, then the 32 fp16 scales of those values, so a panel is one
// sequential stream (scales stored apart would be a second, slower stream per panel; see
// bench/kernel-notes.md). Plain constants only, so
// the ISA translation units may include it (see linear_job.h).
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace moecap {

// Values of one block: int8 uint8[8][32][4]; int4 [8][64] (two lanes per byte).
static constexpr size_t quant_block_values(bool q4) { return q4 ? 512 : 1024; }
// Values + 32 fp16 scales; a multiple of 64, so every block and its scales are cache-line aligned.
static constexpr size_t quant_block_stride(bool q4) { return quant_block_values(q4) + 64; }

static inline const uint8_t* quant_block(const uint8_t* panel, bool q4, int b) {
  return panel + size_t(b) * quant_block_stride(q4);
}
static inline const uint16_t* quant_block_scales(const uint8_t* panel, bool q4, int b) {
  return reinterpret_cast<const uint16_t*>(quant_block(panel, q4, b) + quant_block_values(q4));
}
// The same places, writable, for the packer.
static inline uint8_t* quant_block(uint8_t* panel, bool q4, int b) {
  return const_cast<uint8_t*>(quant_block(static_cast<const uint8_t*>(panel), q4, b));
}
static inline uint16_t* quant_block_scales(uint8_t* panel, bool q4, int b) {
  return const_cast<uint16_t*>(quant_block_scales(static_cast<const uint8_t*>(panel), q4, b));
}

// The integer block-32 weight formats the quantised kernels share: int8 (u8 = q + 128), int4
// (nibble = q + 8), mxfp4 (nibble = E2M1 code; kernels look up 2·value + 12, an unsigned byte).
enum class QuantFormat { Int8, Int4, Mx4 };

// mxfp4: the int4 nibble order (E2M1 codes instead of q+8) with one E8M0 byte per lane and block.
// Blocks go in pairs, [values 2i][values 2i+1][32 E8M0 of 2i][32 E8M0 of 2i+1] = 1088 bytes (17
// cache lines), so the panel holds 4.25 bits a weight like the release and still streams as one
// sequence; an odd last block leaves its partner's bytes zero.
static constexpr size_t kMx4PairStride = 2 * 512 + 64;
static inline const uint8_t* mx4_block(const uint8_t* panel, int b) {
  return panel + size_t(b >> 1) * kMx4PairStride + size_t(b & 1) * 512;
}
static inline const uint8_t* mx4_block_scales(const uint8_t* panel, int b) {
  return panel + size_t(b >> 1) * kMx4PairStride + 1024 + size_t(b & 1) * 32;
}

// fp8: per block of 128 inputs, uint8 E4M3 [128][32] (input k of lane l at 32·k + l), then the
// block's 32 fp32 scales (4224 bytes, 66 cache lines); inputs past K are zero bytes.
static constexpr int kFp8Block = 128;
static constexpr size_t kFp8BlockStride = size_t(kFp8Block) * 32 + 32 * 4;
static inline const uint8_t* fp8_block(const uint8_t* panel, int b) { return panel + size_t(b) * kFp8BlockStride; }
static inline const float* fp8_block_scales(const uint8_t* panel, int b) {
  return reinterpret_cast<const float*>(fp8_block(panel, b) + size_t(kFp8Block) * 32);
}

}  // namespace moecap
