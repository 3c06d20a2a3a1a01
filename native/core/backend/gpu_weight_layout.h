// The GPU weight layout of the CUDA backend: how libmoecap_cuda.so stores one expert on the
// device. On the core side because both sides need it: the CUDA kernels and packer, and the CPU
// loader (backend/cuda_layer.cc), which reports an expert's size in this layout.
// Plain integer code only, so it compiles with g++ as well as nvcc.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "int_math.h"

namespace moecap_cuda {

using moecap::ceil_div;
using moecap::round_up;
using moecap::round_up64;

// ---- GPU weight layout (row-major, HF orientation: rows = outputs, cols = inputs) ----
// A matrix of `rows` × K is stored with K padded to kRowPad elements (zeros), so every row
// starts 16-byte aligned for any dtype and holds whole 32-wide quantisation blocks:
//   f32  : float[rows][Kp]                      bf16 : uint16[rows][Kp]
//   int8 : int8[rows][Kp] (q ∈ [-127,127])
//   int4 : uint8[rows][Kp/2]; per group of 8 k, byte i (0..3) = (q[k+i]+8) | (q[k+i+4]+8) << 4, so one
//          32-bit word masked with 0x0F0F0F0F gives k..k+3 and shifted by 4 gives k+4..k+7 (for dp4a)
//   int8/int4 then fp16 scales [rows][Kp/32] (same quantisation as the CPU core: s = fp16(max|w|/qmax)).
//   mxfp4: E2M1 codes (sign in bit 3) in int4's nibble order, then E8M0 scale bytes [rows][Kp/32].
//   fp8  : E4M3 bytes [rows][Kp], then fp32 scales [rows][ceil(Kp/128)] (one per 128 inputs).
// Levels and scales are the CPU core's (weights/block_quant.h); only the byte order is the GPU's.
// An expert is one blob: w13 (2F rows: gate rows then up rows, K = H), then w2 (H rows, K = F),
// each part aligned to kPartAlign bytes, so offloading moves one contiguous range per expert.
enum GpuDType { kF32 = 0, kBF16 = 1, kI8 = 2, kI4 = 3, kMX4 = 4, kFP8 = 5 };  // same order as moecap::DType
constexpr int kGpuDTypes = 6;
constexpr int kRowPad = 64;
constexpr int kQBlock = 32;
constexpr int kFp8QBlock = 128;
constexpr size_t kPartAlign = 256;

MOECAP_HD int padded_k(int K) { return round_up(K, kRowPad); }
// int8/int4: fp16 block-32 scales.
MOECAP_HD bool is_quantised(int dt) { return dt == kI8 || dt == kI4; }
// Nibble values in int4's order (int4 levels or mxfp4 E2M1 codes).
MOECAP_HD bool is_nibbles(int dt) { return dt == kI4 || dt == kMX4; }
// The activation rows a dtype's kernels read: f32, bf16 (bf16 and fp8) or int8 blocks of 32
// (int8, int4, mxfp4: exact integer block dots, as on the CPU).
MOECAP_HD int act_dtype(int dt) { return dt == kF32 ? kF32 : (dt == kBF16 || dt == kFP8) ? kBF16 : kI8; }
// Scales after the values: bytes per scale and scales per row (0 for f32/bf16).
MOECAP_HD size_t scale_bytes(int dt) { return is_quantised(dt) ? 2 : dt == kMX4 ? 1 : dt == kFP8 ? 4 : 0; }
MOECAP_HD int row_scales(int dt, int K) {
  return dt == kFP8 ? ceil_div(padded_k(K), kFp8QBlock) : scale_bytes(dt) ? padded_k(K) / kQBlock : 0;
}

// Bytes of one row's values (no scales).
MOECAP_HD size_t row_value_bytes(int dt, int K) {
  const size_t kp = size_t(padded_k(K));
  switch (dt) {
    case kF32: return kp * 4;
    case kBF16: return kp * 2;
    case kI8:
    case kFP8: return kp;
    default: return kp / 2;  // int4, mxfp4
  }
}
// Offset of the scale array after the values of `rows` rows (scale_bytes(dt) each).
MOECAP_HD size_t scales_offset(int dt, int rows, int K) { return size_t(rows) * row_value_bytes(dt, K); }
// Index (in scales) of the scale of element (row, k).
MOECAP_HD size_t scale_index(int dt, int row, int k, int K) {
  return size_t(row) * size_t(row_scales(dt, K)) + size_t(k / (dt == kFP8 ? kFp8QBlock : kQBlock));
}
MOECAP_HD size_t matrix_bytes(int dt, int rows, int K) {
  const size_t b = size_t(rows) * (row_value_bytes(dt, K) + size_t(row_scales(dt, K)) * scale_bytes(dt));
  return size_t(round_up64(int64_t(b), int64_t(kPartAlign)));
}
// Byte offset of element (row, k) in the value array, and for int4 whether it is the high nibble.
MOECAP_HD size_t value_offset(int dt, int row, int k, int K, bool* high_nibble) {
  const size_t base = size_t(row) * row_value_bytes(dt, K);
  if (high_nibble) *high_nibble = is_nibbles(dt) && (k % 8) >= 4;
  switch (dt) {
    case kF32: return base + size_t(k) * 4;
    case kBF16: return base + size_t(k) * 2;
    case kI8:
    case kFP8: return base + size_t(k);
    default: return base + size_t(k / 8) * 4 + size_t(k % 4);
  }
}

struct ExpertLayout {
  size_t w13 = 0, w2 = 0, bytes = 0;  // part offsets and the blob size
};
MOECAP_HD ExpertLayout expert_layout(int dt, int H, int F) {
  ExpertLayout l;
  l.w13 = 0;
  l.w2 = matrix_bytes(dt, 2 * F, H);
  l.bytes = l.w2 + matrix_bytes(dt, H, F);
  return l;
}

// Activation rows on the GPU (by act_dtype): f32 float[Kp]; bf16 uint16[Kp]; int8: int8[Kp] then
// float scales [Kp/32] at byte Kp (x ≈ q · scale, q = rint(x · 127/max|x|) as in the CPU core). Row
// sizes are multiples of 16 bytes so that every row can be read with 16-byte loads.
MOECAP_HD size_t act_row_bytes(int dt, int K) {
  const size_t kp = size_t(padded_k(K));
  switch (act_dtype(dt)) {
    case kF32: return kp * 4;
    case kBF16: return kp * 2;
    default: return size_t(round_up64(int64_t(kp + (kp / kQBlock) * 4), 16));
  }
}

}  // namespace moecap_cuda
