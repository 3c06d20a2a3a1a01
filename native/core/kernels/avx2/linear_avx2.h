// Entry points of the AVX2 + FMA + F16C kernels, one translation unit per weight format, all
// compiled with the moecap_isa_avx2 flags (binding.gyp); the table is in linear_avx2.cc. Also the
// two helpers every AVX2 tile shares. Included only by those translation units, and the helpers
// are static (internal linkage), so no AVX2 code can be merged into another ISA's.
#pragma once
#include <immintrin.h>

#include "kernels/epilogue_scalar.h"
#include "kernels/kernel_table.h"

namespace moecap {
namespace avx2 {
void linear_f32(const LinearJob& job);
void linear_bf16(const LinearJob& job);
void linear_int8(const LinearJob& job);
void linear_int4(const LinearJob& job);
void linear_mxfp4(const LinearJob& job);
void linear_fp8(const LinearJob& job);

// A tile's MR rows × 32 outputs (4 ymm per row) through the job's epilogue.
template <int MR>
static inline void store_tile(const LinearJob& job, int r0, int p, __m256 (&acc)[MR][4]) {
  for (int r = 0; r < MR; ++r) {
    alignas(32) float out[32];
    for (int v = 0; v < 4; ++v) _mm256_store_ps(out + 8 * v, acc[r][v]);
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
}  // namespace avx2
}  // namespace moecap
