// Exact decoders of the quantised source formats a checkpoint may hold, one block at a time, to
// fp32: ggml's Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K blocks and the FP8 E4M3 (e4m3fn) element. Each value is the
// format's own dequantisation formula evaluated in fp32 exactly as ggml / the release does it, so
// the decoded values are the checkpoint's values, not an approximation of them.
#pragma once
#include <cstdint>

namespace moecap {

// Q4_0: 32 elements in 18 bytes, fp16 d then 16 bytes of nibbles; byte j holds element j (low
// nibble) and element j+16 (high nibble); value = (nibble − 8)·d.
constexpr uint64_t kQ4_0Elements = 32, kQ4_0Bytes = 18;
void decode_q4_0_block(const uint8_t* blk, float* out);

// Q4_1: 32 elements in 20 bytes: fp16 d, fp16 m, then Q4_0's nibbles; value = nibble·d + m.
constexpr uint64_t kQ4_1Elements = 32, kQ4_1Bytes = 20;
void decode_q4_1_block(const uint8_t* blk, float* out);

// Q5_0: 32 elements in 22 bytes: fp16 d, a little-endian u32 of fifth bits (bit j: element j), then
// Q4_0's nibbles; value = (5-bit level − 16)·d.
constexpr uint64_t kQ5_0Elements = 32, kQ5_0Bytes = 22;
void decode_q5_0_block(const uint8_t* blk, float* out);

// Q5_1: 32 elements in 24 bytes: fp16 d, fp16 m, the u32 of fifth bits, the nibbles; value = level·d + m.
constexpr uint64_t kQ5_1Elements = 32, kQ5_1Bytes = 24;
void decode_q5_1_block(const uint8_t* blk, float* out);

// Q4_K: 256 elements in 144 bytes: fp16 d, fp16 dmin, 12 bytes of eight 6-bit (scale, min) pairs,
// 128 bytes of nibbles. Sub-block s (32 elements) is value = (d·scale_s)·q − (dmin·min_s).
constexpr uint64_t kQ4_KElements = 256, kQ4_KBytes = 144;
void decode_q4_k_block(const uint8_t* blk, float* out);

// Q5_K: 256 elements in 176 bytes: Q4_K's d, dmin and 12 scale bytes, 32 bytes of fifth bits
// (bit 2g of byte l: element l of group g's low half, bit 2g+1: of its high half), 128 of nibbles.
constexpr uint64_t kQ5_KElements = 256, kQ5_KBytes = 176;
void decode_q5_k_block(const uint8_t* blk, float* out);

// Q6_K: 256 elements in 210 bytes: 128 bytes of low nibbles, 64 of high 2-bit pairs, 16 int8
// scales, fp16 d. Value = (d·scale)·(q − 32), q the 6-bit level.
constexpr uint64_t kQ6_KElements = 256, kQ6_KBytes = 210;
void decode_q6_k_block(const uint8_t* blk, float* out);

// FP8 E4M3 "fn" (no infinities): sign, 4 exponent bits (bias 7), 3 mantissa bits; S.1111.111 is
// NaN; exponent 0 is subnormal (m·2^-9). Every pattern is exact in fp32.
float fp8_e4m3_to_f32(uint8_t b);

}  // namespace moecap
