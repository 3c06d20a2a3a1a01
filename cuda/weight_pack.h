// Host-side packing of fp32 master weights into the GPU layout of moe_index.h, quantising
// exactly as the CPU core does (so the CPU and GPU layers hold identical bf16/int8/int4/mxfp4/fp8
// values).
// Plain C++ (no CUDA): built into libmoecap_cuda.so, the self-test and the host unit test.
#pragma once
#include <cstdint>

#include "moe_index.h"
#include "weights/weight_source.h"

namespace moecap_cuda {

// One row of K values → row values (row_value_bytes) and, for the block formats, its
// row_scales(dtype, K) scales of scale_bytes(dtype) bytes each (fp16, E8M0 or fp32).
void pack_row(int dtype, const float* v, int K, uint8_t* values, uint8_t* scales);

// A whole matrix (`rows` rows of matrix m of expert e, K inputs) into dst (matrix_bytes bytes),
// rows [row0, row0 + rows) of the source; `threads` host threads.
void pack_matrix(int dtype, const moecap::WeightSource& src, moecap::Matrix m, int expert, int row0, int rows, int K,
                 uint8_t* dst, int threads);

// One expert blob (expert_layout): gate and up rows into w13, down rows into w2.
void pack_expert(int dtype, const moecap::WeightSource& src, moecap::Matrix gate, moecap::Matrix up,
                 moecap::Matrix down, int expert, int H, int F, uint8_t* dst, int threads);

// Dequantised value (row, k) of a packed matrix, for tests.
float unpack_value(int dtype, const uint8_t* matrix, int rows, int K, int row, int k);

}  // namespace moecap_cuda
