// Register tiling shared by the AVX-512 kernels: a tile is MR activation rows × NP panels,
// each panel 32 outputs = 2 zmm accumulators per row. Every output element is accumulated in
// input order by one chain, whatever the tile shape, so a token computes bit-identically alone
// (decode tiles) or inside a batch (prefill tiles).
#pragma once
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/avx512/simd_math_avx512.h"
#include "kernels/kernel_table.h"
#include "kernels/x86_prefetch.h"

namespace moecap {
namespace avx512 {

// Software prefetch of the weights the prefill loop needs next (the next K-block of the panel
// stream) while it works on the current one, spread over the row tiles of the current block:
// each tile touches `lines` cache lines per iteration of its input loop until its share is done.
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

// The tiles fetch each weight stream ahead of where they read, one prefetch_stream call
// (x86_prefetch.h) per 64 bytes read. With the hardware prefetchers alone two streams per core
// stayed well under the memory's rate; with the far fetch too, fp8, mxfp4, int4, bf16 and f32 read
// up to 20% faster from memory than with the near one alone (int8 did not gain; figures:
// bench/kernel-notes.md).

template <int MR, int NP>
static inline void store_tile(const LinearJob& job, int r0, int p, int ps, __m512 (&acc)[MR][NP][2]) {
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    float* y = job.out[r0 + r];
#pragma GCC unroll 4
    for (int q = 0; q < NP; ++q) {
      const int pp = p + q * ps;
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
        case Epilogue::SwiGLU: _mm512_storeu_ps(y + pp * 16, _mm512_mul_ps(silu_ps(acc[r][q][0]), acc[r][q][1])); break;
        case Epilogue::GatedVariant: {
          __m512 g = acc[r][q][0], u = acc[r][q][1];
          if (job.row_scale) {
            const __m512 s = _mm512_set1_ps(job.row_scale[r0 + r]);
            g = _mm512_mul_ps(s, g);
            u = _mm512_mul_ps(s, u);
          }
          if (job.bias) {
            g = _mm512_add_ps(g, _mm512_loadu_ps(job.bias + size_t(pp) * 32));
            u = _mm512_add_ps(u, _mm512_loadu_ps(job.bias + size_t(pp) * 32 + 16));
          }
          _mm512_storeu_ps(y + pp * 16, gated_variant_ps(g, u, job.clamp_limit, job.alpha));
          break;
        }
        case Epilogue::ScaledBias: {
          const __m512 s = _mm512_set1_ps(job.row_scale[r0 + r]);
          const float* b = job.bias + size_t(pp) * 32;
          _mm512_storeu_ps(y + pp * 32, _mm512_mul_ps(s, _mm512_add_ps(acc[r][q][0], _mm512_loadu_ps(b))));
          _mm512_storeu_ps(y + pp * 32 + 16, _mm512_mul_ps(s, _mm512_add_ps(acc[r][q][1], _mm512_loadu_ps(b + 16))));
          break;
        }
      }
    }
  }
}

// Partial sums of a K-blocked tile (one panel): `part` holds MR rows × 32 floats. Storing and
// reloading fp32 values is exact, so K-blocking leaves every element's accumulation order intact.
template <int MR, int NP>
static inline void load_partial(const float* part, __m512 (&acc)[MR][NP][2]) {
  static_assert(NP == 1, "K-blocked tiles are one panel wide");
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    acc[r][0][0] = _mm512_load_ps(part + r * 32);
    acc[r][0][1] = _mm512_load_ps(part + r * 32 + 16);
  }
}
template <int MR, int NP>
static inline void store_partial(float* part, __m512 (&acc)[MR][NP][2]) {
  static_assert(NP == 1, "K-blocked tiles are one panel wide");
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    _mm512_store_ps(part + r * 32, acc[r][0][0]);
    _mm512_store_ps(part + r * 32 + 16, acc[r][0][1]);
  }
}

// Panels per tile for a row count. f32/bf16 tiles hold 2 fp32 accumulators per (row, panel)
// (MR·NP·2 + NP·2 weight registers within the 32 zmm). The quantised tiles hold 4 (an int32 block
// accumulator next to the fp32 one) and take at most 2 panels, i.e. two weight streams per core:
// that keeps int4 decode closest to the read bandwidth (figures: bench/kernel-notes.md).
constexpr int max_np(int mr) { return mr <= 2 ? 4 : mr == 3 ? 3 : mr <= 6 ? 2 : 1; }
constexpr int max_np_wide(int mr) { return mr <= 3 ? 2 : 1; }

// Runs the tiles over the job's rows and panels. A tile is
//   Tile<MR,NP>::run(job, r0, p, it0, it1, part, prefetch)
// over iterations [it0, it1) of its input loop (Tile<1,1>::iterations(K) in all; kBytesPerIter
// bytes of panel each): it starts from zero when it0 == 0, else from `part`, and ends with the
// job's epilogue when it1 == iterations(K), else by storing `part`. `AccRegs` = zmm accumulators
// per (row, panel): 2 (f32, bf16) or 4 (int8, int4).
//  - few rows (decode): one row group over the whole input, several panels at once so enough
//    independent chains hide the latency while each panel streams once (hardware prefetch);
//  - many rows (prefill): chunks of up to kChunkRows rows; per panel, the input in K-blocks of
//    kBlockIters iterations (a ~32 KB slice of the panel that stays in L1 while every row tile of
//    the chunk uses it), the next slice prefetched meanwhile. Partial sums go to a stack buffer.
template <template <int, int> class Tile, int AccRegs = 2>
struct Driver {
  static constexpr int kRowTile = AccRegs == 2 ? 12 : 6;
  static constexpr int kChunkRows = 96;
  static constexpr int np_for(int mr) { return AccRegs == 2 ? max_np(mr) : max_np_wide(mr); }
  using T1 = Tile<1, 1>;

  template <int MR, int NP>
  static void panels_rows(const LinearJob& job, int r0) {
    const int iters = T1::iterations(job.K);
    int p = job.p0;
    // The tile's NP panels are `stride` apart (one from each NP-th of the range), so each of
    // the NP weight streams walks on through adjacent panels from one tile to the next instead
    // of restarting every NP panels (hardware prefetchers ramp up per stream, which costs most
    // with the small int4 panels).
    const int count = (job.p1 - job.p0) / NP * NP;
    const int stride = count / NP;
    if (NP > 1 && stride > 1) {
      for (int i = 0; i < stride; ++i) Tile<MR, NP>::run(job, r0, job.p0 + i, stride, 0, iters, nullptr, Prefetch());
      p = job.p0 + count;
    } else {
      // With fewer than 4 panels in flight (tiles of several rows) one or two sequential
      // streams per core do not reach the memory bandwidth: prefetch the next NP panels.
      const size_t panel_lines = (job.panel_bytes + 63) / 64;
      for (; p + NP <= job.p1; p += NP) {
        Prefetch pf;
        if (NP < 4 && p + NP < job.p1) {
          const int q1 = p + 2 * NP < job.p1 ? p + 2 * NP : job.p1;
          pf.p = job_panel(job, p + NP);
          pf.end = job_panel(job, q1);
          pf.lines = int((size_t(q1 - p - NP) * panel_lines + size_t(iters) - 1) / size_t(iters));
        }
        Tile<MR, NP>::run(job, r0, p, 1, 0, iters, nullptr, pf);
      }
    }
    for (; p < job.p1; ++p) Tile<MR, 1>::run(job, r0, p, 1, 0, iters, nullptr, Prefetch());
  }
  template <int MR>
  static void rows_tail(const LinearJob& job, int r0, int p, int it0, int it1, float* part, const Prefetch& pf) {
    if constexpr (MR < kRowTile) Tile<MR, 1>::run(job, r0, p, 1, it0, it1, part, pf);
  }
  static void tail(int m, const LinearJob& job, int r0, int p, int it0, int it1, float* part, const Prefetch& pf) {
    switch (m) {
      case 1: return rows_tail<1>(job, r0, p, it0, it1, part, pf);
      case 2: return rows_tail<2>(job, r0, p, it0, it1, part, pf);
      case 3: return rows_tail<3>(job, r0, p, it0, it1, part, pf);
      case 4: return rows_tail<4>(job, r0, p, it0, it1, part, pf);
      case 5: return rows_tail<5>(job, r0, p, it0, it1, part, pf);
      case 6: return rows_tail<6>(job, r0, p, it0, it1, part, pf);
      case 7: return rows_tail<7>(job, r0, p, it0, it1, part, pf);
      case 8: return rows_tail<8>(job, r0, p, it0, it1, part, pf);
      case 9: return rows_tail<9>(job, r0, p, it0, it1, part, pf);
      case 10: return rows_tail<10>(job, r0, p, it0, it1, part, pf);
      case 11: return rows_tail<11>(job, r0, p, it0, it1, part, pf);
      default: return;
    }
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
    const int iters = T1::iterations(job.K);
    const int kb = T1::kBlockIters;
    const size_t bpi = T1::kBytesPerIter;
    alignas(64) float part[kChunkRows * 32];
    for (int c0 = 0; c0 < job.n; c0 += kChunkRows) {
      const int cn = job.n - c0 < kChunkRows ? job.n - c0 : kChunkRows;
      const int tiles = (cn + kRowTile - 1) / kRowTile;
      for (int p = job.p0; p < job.p1; ++p) {
        for (int it0 = 0; it0 < iters; it0 += kb) {
          const int it1 = it0 + kb < iters ? it0 + kb : iters;
          // Next slice of the weight stream: the next K-block of this panel, or the first of the
          // next panel (panels are contiguous), or nothing at the end of the job.
          const uint8_t* next = nullptr;
          size_t next_bytes = 0;
          if (it1 < iters) {
            next = job_panel(job, p) + size_t(it1) * bpi;
            next_bytes = size_t((it1 + kb < iters ? it1 + kb : iters) - it1) * bpi;
          } else if (p + 1 < job.p1) {
            next = job_panel(job, p + 1);
            next_bytes = size_t(kb < iters ? kb : iters) * bpi;
          }
          const size_t lines = (next_bytes + 63) / 64;
          const int n_it = it1 - it0;
          int r = 0;
          for (int t = 0; t < tiles; ++t, r += kRowTile) {
            Prefetch pf;
            if (next) {
              const size_t l0 = lines * size_t(t) / size_t(tiles), l1 = lines * size_t(t + 1) / size_t(tiles);
              pf.p = next + 64 * l0;
              pf.end = next + 64 * l1;
              pf.lines = int((l1 - l0 + size_t(n_it) - 1) / size_t(n_it));
            }
            float* pp = part + size_t(r) * 32;
            if (r + kRowTile <= cn) Tile<kRowTile, 1>::run(job, c0 + r, p, 1, it0, it1, pp, pf);
            else tail(cn - r, job, c0 + r, p, it0, it1, pp, pf);
          }
        }
      }
    }
  }
};

}  // namespace avx512
}  // namespace moecap
