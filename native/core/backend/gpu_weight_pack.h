// Host-side packing of master weights into the GPU layout (backend/gpu_weight_layout.h), exactly
// as the CPU core packs them: a source's stored bf16/mxfp4/fp8 codes are kept bitwise (a
// checkpoint's, WeightSource::stored_codes), other rows are quantised by the core's quantisers, so
// the CPU and GPU layers hold identical values. On the core side because both sides run it: the
// CUDA library packs fp32 masters and seeds, the addon (backend/cuda_layer.cc) packs a checkpoint's
// experts from their stored codes and hands the bytes over the ABI.
// Plain C++ (no CUDA): built into the addon, libmoecap_cuda.so, the self-test and the host unit test.
#pragma once
#include <cstdint>

#include "backend/gpu_weight_layout.h"
#include "weights/weight_source.h"

namespace moecap_cuda {

// One row of K values → row values (row_value_bytes) and, for the block formats, its
// row_scales(dtype, K) scales of scale_bytes(dtype) bytes each (fp16, E8M0 or fp32).
void pack_row(int dtype, const float* v, int K, uint8_t* values, uint8_t* scales);

// The dtypes whose rows a source can hold as stored codes (WeightSource::stored_codes): bf16, mxfp4, fp8.
bool has_stored_codes(int dtype);

// A row's stored codes (WeightSource::stored_codes layout: K codes one a byte with zeros up to the
// last whole block, or K bf16 values; its ceil(K/32) E8M0 bytes or ceil(K/128) fp32 scales) → the
// GPU row, bitwise. A 128-input fp8 scale is the row's own scale of those inputs, so a release's
// 128×128 block scale lands unchanged in each row of the block.
void pack_codes_row(int dtype, const uint8_t* codes, const void* code_scales, int K, uint8_t* values, uint8_t* scales);

// A whole matrix (`rows` rows of matrix m of expert e, K inputs) into dst (matrix_bytes bytes),
// rows [row0, row0 + rows) of the source, from its stored codes where it holds them; `threads`
// host threads.
void pack_matrix(int dtype, const moecap::WeightSource& src, moecap::Matrix m, int expert, int row0, int rows, int K,
                 uint8_t* dst, int threads);

// One expert blob (expert_layout): gate and up rows into w13, down rows into w2.
void pack_expert(int dtype, const moecap::WeightSource& src, moecap::Matrix gate, moecap::Matrix up,
                 moecap::Matrix down, int expert, int H, int F, uint8_t* dst, int threads);

// All routed experts of a layer, expert e's blob at e · expert_layout(dtype, H, F).bytes of dst;
// experts with held[e] == 0 are left zero (held NULL = all). Reads the source expert by expert
// (will_read_expert hints, done_reading_experts at the end), as the CPU layer does.
void pack_routed_experts(int dtype, const moecap::WeightSource& src, int E, int H, int F, const uint8_t* held,
                         uint8_t* dst, int threads);

// Dequantised value (row, k) of a packed matrix, for tests.
float unpack_value(int dtype, const uint8_t* matrix, int rows, int K, int row, int k);

}  // namespace moecap_cuda
