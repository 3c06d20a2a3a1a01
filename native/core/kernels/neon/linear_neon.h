// Entry points of the arm64 NEON kernels and the helpers every NEON tile shares. Groups of
// translation units, each with its own flags (binding.gyp): the baseline ones (armv8-a: fp32 FMA,
// bf16 widened to fp32, int8/int4/mxfp4 by widening multiplies, fp8 decoded to fp32), the dotprod one (sdot), the i8mm
// one (smmla for row pairs) and the bf16 one (bfdot); neon_kernels() (linear_neon.cc) takes each entry from the best
// group the CPU has. Included only by those translation units, and the helpers are static (internal linkage), so no
// code built for an optional feature can be merged into code that runs without it.
#pragma once
#include <arm_neon.h>

#include "kernels/epilogue_scalar.h"
#include "kernels/kernel_table.h"

namespace moecap {
namespace neon {
void linear_f32(const LinearJob& job);
void linear_bf16(const LinearJob& job);  // widened to fp32 (any arm64)
void linear_int8(const LinearJob& job);  // widening multiplies (any arm64)
void linear_int4(const LinearJob& job);
void linear_mxfp4(const LinearJob& job);         // E2M1 by tbl, widening multiplies (any arm64)
void linear_fp8(const LinearJob& job);           // E4M3 → fp16 bits → fp32, FMA (any arm64)
void linear_bf16_bfdot(const LinearJob& job);    // FEAT_BF16
void linear_int8_dotprod(const LinearJob& job);  // FEAT_DotProd
void linear_int4_dotprod(const LinearJob& job);
void linear_mxfp4_dotprod(const LinearJob& job);
void linear_int8_i8mm(const LinearJob& job);  // FEAT_I8MM (and FEAT_DotProd for a lone row)
void linear_int4_i8mm(const LinearJob& job);
void linear_mxfp4_i8mm(const LinearJob& job);

// The ceiling loops of the feature TUs (peak_neon.cc has the baseline ones and the table):
// kPeakChains independent accumulator chains; operations per iteration below.
constexpr int kPeakChains = 24;
float peak_dot_bf16(long iters);                                   // FEAT_BF16: bfdot
int32_t peak_dot_int8(long iters);                                 // FEAT_DotProd: sdot
constexpr double kPeakDotBf16PerIter = kPeakChains * 4 * 2 * 2.0;  // 4 lanes × 2 products, each a multiply-add
constexpr double kPeakDotInt8PerIter = kPeakChains * 4 * 4 * 2.0;  // 4 lanes × 4 byte products, each a multiply-add

// A tile's MR rows × 32 outputs (8 q-registers per row) through the job's epilogue.
template <int MR>
static inline void store_tile(const LinearJob& job, int r0, int p, float32x4_t (&acc)[MR][8]) {
  for (int r = 0; r < MR; ++r) {
    alignas(16) float out[32];
    for (int v = 0; v < 8; ++v) vst1q_f32(out + 4 * v, acc[r][v]);
    store_epilogue_scalar(job, r0 + r, p, out);
  }
}

// Every panel of the job, its rows in tiles of MR rows (Tile) and the rest one row at a time (Tail).
template <int MR, void (*Tile)(const LinearJob&, int, int), void (*Tail)(const LinearJob&, int, int)>
static inline void for_row_tiles(const LinearJob& job) {
  for (int p = job.p0; p < job.p1; ++p) {
    int r = 0;
    for (; r + MR <= job.n; r += MR) Tile(job, r, p);
    for (; r < job.n; ++r) Tail(job, r, p);
  }
}
}  // namespace neon
}  // namespace moecap
