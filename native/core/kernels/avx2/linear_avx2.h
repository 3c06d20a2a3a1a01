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

// A tile's accumulators: MR rows × NP panels × 32 outputs (4 ymm).
template <int MR, int NP>
static inline void zero_tile(__m256 (&acc)[MR][NP][4]) {
  for (int r = 0; r < MR; ++r)
    for (int q = 0; q < NP; ++q)
      for (int v = 0; v < 4; ++v) acc[r][q][v] = _mm256_setzero_ps();
}

// Rows r0.. of panels p, p + ps, … through the job's epilogue.
template <int MR, int NP>
static inline void store_tile(const LinearJob& job, int r0, int p, int ps, const __m256 (&acc)[MR][NP][4]) {
  for (int r = 0; r < MR; ++r)
    for (int q = 0; q < NP; ++q) {
      alignas(32) float out[32];
      for (int v = 0; v < 4; ++v) _mm256_store_ps(out + 8 * v, acc[r][q][v]);
      store_epilogue_scalar(job, r0 + r, p + q * ps, out);
    }
}

// Runs a kernel's tiles over the job. `Tile<R, NP>::run(job, r0, p, ps, extra…)` computes R rows × NP
// panels p, p + ps, …, p + (NP − 1)·ps (`extra`: what the kernel computed once for the whole job). Every output element
// is one chain in input order whatever the tile, so a row alone equals it in a batch.
//  - one row (decode): NP panels at once, `stride` apart, so each of the NP weight streams walks
//    on through adjacent panels from one tile to the next. One core reads memory faster through
//    several sequential streams than through one (hardware prefetchers ramp up per stream), and
//    NP × 4 chains hide the FMA latency;
//  - several rows: MR rows × one panel, the rest of the rows in a smaller tile (the panel then
//    comes from cache).
template <template <int, int> class Tile, int MR, int NP, class... Extra>
static inline void run_tiles(const LinearJob& job, const Extra&... extra) {
  int p = job.p0;
  if (job.n == 1 && NP > 1) {
    const int count = (job.p1 - job.p0) / NP * NP, stride = count / NP;
    for (int i = 0; i < stride; ++i) Tile<1, NP>::run(job, 0, job.p0 + i, stride, extra...);
    p += count;
  }
  for (; p < job.p1; ++p) {
    int r = 0;
    for (; r + MR <= job.n; r += MR) Tile<MR, 1>::run(job, r, p, 1, extra...);
    if constexpr (MR > 2)
      if (job.n - r >= 2) Tile<2, 1>::run(job, r, p, 1, extra...), r += 2;
    for (; r < job.n; ++r) Tile<1, 1>::run(job, r, p, 1, extra...);
  }
}
}  // namespace avx2
}  // namespace moecap
