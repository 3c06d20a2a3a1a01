// Entry points of the AVX2 + FMA + F16C kernels, one translation unit per weight format, all
// compiled with the moecap_isa_avx2 flags (binding.gyp); the table is in linear_avx2.cc.
#pragma once
#include "kernels/kernel_table.h"

namespace moecap {
namespace avx2 {
void linear_f32(const LinearJob& job);
void linear_bf16(const LinearJob& job);
void linear_int8(const LinearJob& job);
void linear_int4(const LinearJob& job);
}  // namespace avx2
}  // namespace moecap
