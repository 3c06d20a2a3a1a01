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

}  // namespace moecap
