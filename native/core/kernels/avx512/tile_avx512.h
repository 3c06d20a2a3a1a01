// Register tiling shared by the AVX-512 kernels: a tile is MR activation rows × NP panels,
// each panel 32 outputs = 2 zmm accumulators per row. Every output element is accumulated in
// input order by one chain, whatever the tile shape, so a token computes bit-identically alone
// (decode tiles) or inside a batch (prefill tiles).
#pragma once
#include <immintrin.h>

#include "kernels/avx512/simd_math_avx512.h"
#include "kernels/kernel_table.h"

namespace moecap {
namespace avx512 {

// Software prefetch of the next panel while the prefill loop works on the current one: the
// first row tile of a panel otherwise waits on DRAM (one sequential stream per core, far below
// the FMA rate), the later ones find it in L2. Each row tile of a panel takes its share of the
// next panel and touches `lines` cache lines per iteration of its input loop.
struct Prefetch {
  const uint8_t* p = nullptr;
  const uint8_t* end = nullptr;
  int lines = 0;
  inline void step() {
    if (p < end) {
      for (int i = 0; i < lines; ++i) _mm_prefetch(reinterpret_cast<const char*>(p) + 64 * i, _MM_HINT_T1);
      p += 64 * lines;
    }
  }
};

template <int MR, int NP>
static inline void store_tile(const LinearJob& job, int r0, int p, __m512 (&acc)[MR][NP][2]) {
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    float* y = job.out[r0 + r];
#pragma GCC unroll 4
    for (int q = 0; q < NP; ++q) {
      const int pp = p + q;
      switch (job.epilogue) {
        case Epilogue::Store:
          _mm512_storeu_ps(y + pp * 32, acc[r][q][0]);
          _mm512_storeu_ps(y + pp * 32 + 16, acc[r][q][1]);
          break;
        case Epilogue::Scaled: {
          __m512 s = _mm512_set1_ps(job.row_scale[r0 + r]);
          _mm512_storeu_ps(y + pp * 32, _mm512_mul_ps(s, acc[r][q][0]));
          _mm512_storeu_ps(y + pp * 32 + 16, _mm512_mul_ps(s, acc[r][q][1]));
          break;
        }
        case Epilogue::SwiGLU:
          _mm512_storeu_ps(y + pp * 16, _mm512_mul_ps(silu_ps(acc[r][q][0]), acc[r][q][1]));
          break;
      }
    }
  }
}

// Largest panel count per tile for a row count. f32/bf16 tiles hold 2 fp32 accumulators per
// (row, panel) (MR·NP·2 + NP·2 weight registers within the 32 zmm); the quantised tiles hold 4
// (an int32 block accumulator next to the fp32 one), so they get fewer panels and rows.
constexpr int max_np(int mr) { return mr <= 2 ? 4 : mr == 3 ? 3 : mr <= 6 ? 2 : 1; }
constexpr int max_np_wide(int mr) { return mr == 1 ? 4 : mr == 2 ? 3 : mr == 3 ? 2 : 1; }

// Runs `Tile<MR,NP>::run(job, r0, p)` over the job's rows and panels. `AccRegs` = zmm
// accumulators per (row, panel): 2 (f32, bf16) or 4 (int8, int4).
//  - few rows (decode): one row group, several panels at once so enough independent chains
//    hide the latency while each panel streams once;
//  - many rows (prefill): panel-outer, row tiles inner, so the panel stays in L2.
template <template <int, int> class Tile, int AccRegs = 2>
struct Driver {
  static constexpr int kRowTile = AccRegs == 2 ? 12 : 6;
  static constexpr int np_for(int mr) { return AccRegs == 2 ? max_np(mr) : max_np_wide(mr); }

  template <int MR, int NP>
  static void panels_rows(const LinearJob& job, int r0) {
    int p = job.p0;
    for (; p + NP <= job.p1; p += NP) Tile<MR, NP>::run(job, r0, p, Prefetch());
    for (; p < job.p1; ++p) Tile<MR, 1>::run(job, r0, p, Prefetch());
  }
  template <int MR>
  static void rows_tail(const LinearJob& job, int r0, int p, const Prefetch& pf) {
    if constexpr (MR < kRowTile) Tile<MR, 1>::run(job, r0, p, pf);
  }
  // The share of panel p+1 that row tile `t` of `tiles` prefetches over its `iters` iterations.
  static Prefetch share(const LinearJob& job, int p, int t, int tiles) {
    Prefetch pf;
    if (p + 1 >= job.p1) return pf;
    const size_t lines = (job.panel_bytes + 63) / 64;
    const size_t l0 = lines * size_t(t) / size_t(tiles), l1 = lines * size_t(t + 1) / size_t(tiles);
    const size_t iters = size_t(Tile<1, 1>::iterations(job.K));
    pf.p = job_panel(job, p + 1) + 64 * l0;
    pf.end = job_panel(job, p + 1) + 64 * l1;
    pf.lines = int((l1 - l0 + iters - 1) / iters);
    return pf;
  }
  static void run(const LinearJob& job) {
    switch (job.n) {
      case 0: return;
      case 1: return panels_rows<1, np_for(1)>(job, 0);
      case 2: return panels_rows<2, np_for(2)>(job, 0);
      case 3: return panels_rows<3, np_for(3)>(job, 0);
      case 4: return panels_rows<4, np_for(4)>(job, 0);
      case 5: return panels_rows<5, np_for(5)>(job, 0);
      case 6: return panels_rows<6, np_for(6)>(job, 0);
      default: break;
    }
    const int tiles = (job.n + kRowTile - 1) / kRowTile;
    for (int p = job.p0; p < job.p1; ++p) {
      int r = 0, t = 0;
      for (; r + kRowTile <= job.n; r += kRowTile, ++t) Tile<kRowTile, 1>::run(job, r, p, share(job, p, t, tiles));
      const Prefetch pf = share(job, p, t, tiles);
      switch (job.n - r) {
        case 0: break;
        case 1: rows_tail<1>(job, r, p, pf); break;
        case 2: rows_tail<2>(job, r, p, pf); break;
        case 3: rows_tail<3>(job, r, p, pf); break;
        case 4: rows_tail<4>(job, r, p, pf); break;
        case 5: rows_tail<5>(job, r, p, pf); break;
        case 6: rows_tail<6>(job, r, p, pf); break;
        case 7: rows_tail<7>(job, r, p, pf); break;
        case 8: rows_tail<8>(job, r, p, pf); break;
        case 9: rows_tail<9>(job, r, p, pf); break;
        case 10: rows_tail<10>(job, r, p, pf); break;
        case 11: rows_tail<11>(job, r, p, pf); break;
      }
    }
  }
};

}  // namespace avx512
}  // namespace moecap
