#pragma once
#include "kernels/kernel_table.h"

namespace moecap {
namespace avx512 {
void linear_f32(const LinearJob& job);
void linear_bf16(const LinearJob& job);
void linear_int8(const LinearJob& job);
void linear_int4(const LinearJob& job);
void linear_mxfp4(const LinearJob& job);
void linear_fp8(const LinearJob& job);
void quant_row(const float* x, int K, void* out);
}  // namespace avx512
}  // namespace moecap
