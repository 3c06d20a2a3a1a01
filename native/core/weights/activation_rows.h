// Per-token activation rows in the format each weight dtype's kernels consume. Quantising the
// activations once per token (not per expert) is what lets the bf16 and int8/int4 kernels use
// the CPU's dot-product instructions (vdpbf16ps, vpdpbusd); accumulation stays fp32 (int32
// inside a 32-wide quantisation block).
//   f32, fp8 : float[K] (the caller's row itself, no copy)
//   bf16 : uint16[K rounded up to even], RNE, zero padded
//   int8, int4, mxfp4 : QuantRow — per block of 32: fp32 scale (max|x|/127), int32 sum of q, then the
//          int8 values q = round(x/scale), zero padded to whole blocks.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/quant_row_layout.h"
#include "weights/dtype.h"

namespace moecap {

using QuantRowView = QuantRowPtrs;  // scale[nb], sum[nb], q[nb·32] (kernels/quant_row_layout.h)

// The dtypes whose kernels take the int8 QuantRow (made by KernelTable::quant_row).
inline bool quantised_activations(DType d) { return d == DType::I8 || d == DType::I4 || d == DType::MXFP4; }

size_t activation_row_bytes(DType dtype, int K);  // multiple of 64; 0 for f32 (no copy)
void make_activation_row(DType dtype, const float* x, int K, void* out);

inline QuantRowView quant_row_view(const void* row, int K) { return quant_row_ptrs(row, (K + 31) / 32); }

}  // namespace moecap
