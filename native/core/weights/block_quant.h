// Symmetric block-32 quantisation of one row of weights along its input dimension, fp16 scales
// (formats in packed_matrix.h). Shared by the CPU packer and the CUDA packer, so both backends
// hold bitwise the same levels and scales.
#pragma once
#include <cstdint>

namespace moecap {

constexpr int kQuantBlockSize = 32;

// v: K values; q: ceil(K/32)·32 levels (zero past K); scales: ceil(K/32) fp16 bit patterns.
void quantise_block_int8(const float* v, int K, int8_t* q, uint16_t* scales);  // q ∈ [-127, 127]
void quantise_block_int4(const float* v, int K, int8_t* q, uint16_t* scales);  // q ∈ [-8, 7]

// MXFP4 (OCP MX): per block of 32, scale 2^(floor(log2 max|v|) − 2) as an E8M0 byte (clamped to
// [0, 254]; an all-zero block gets 0), values the nearest E2M1 (ties to even, saturating at ±6).
// codes: ceil(K/32)·32 nibble codes, one a byte (zero past K); scales: ceil(K/32) bytes.
void quantise_mxfp4(const float* v, int K, uint8_t* codes, uint8_t* scales);
// FP8: per block of 128, scale = max|v|/448 (fp32), values the nearest E4M3 of v/scale (ties to
// even). codes: ceil(K/128)·128 bytes (zero past K); scales: ceil(K/128) floats.
constexpr int kFp8BlockSize = 128;
void quantise_fp8(const float* v, int K, uint8_t* codes, float* scales);
uint8_t e2m1_nearest(double q);  // q in units of the block scale
uint8_t e4m3_nearest(double q);

// True when the n values (one block) are each an integer in [-127, 127] times one power of two
// 2^s that fp16 holds (2^-24 … 2^15): int8 then keeps them exactly with scale 2^s (*scale, fp16
// bits). MXFP4 blocks (E2M1 × E8M0: doubled E2M1 magnitudes are integers ≤ 12) are such blocks
// whenever their E8M0 scale is in fp16's range. All-zero blocks return false.
bool exact_int8_block(const float* v, int n, uint16_t* scale);

// The block maxima max|w| whose fp16 scale is finite and keeps at least 8 significant bits (so
// rounding the scale adds at most half a quantisation step): int8 scales are max|w|/127, int4
// scales max|w|/d for d ∈ [7.5, 9.5] (the error search). Outside it the levels are garbage
// (scale 0 or inf) or lose precision (deep fp16 subnormals); an all-zero block is exact.
constexpr float kMinQuantScale = 1.0f / 131072.0f;  // 2^-17
constexpr float kMaxQuantScale = 65504.0f;          // largest finite fp16
struct QuantAmaxRange {
  float lo, hi;
};
QuantAmaxRange quant_amax_range(bool int4);
// The first block of v (K values) whose max|w| is non-zero and outside quant_amax_range, or -1;
// *amax receives that block's max|w|.
int first_unrepresentable_block(const float* v, int K, bool int4, float* amax);

}  // namespace moecap
