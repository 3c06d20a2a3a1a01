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

}  // namespace moecap
