// Register tile shared by the int8, int4 and mxfp4 kernels (AVX-512 VNNI). Per 32-k block:
//   dot = Σ w_u8 · x_s8  with vpdpbusd (weights unsigned: q+128, q+8, or 2·E2M1 + 12 looked up by
//         vpermb from the mxfp4 nibble, as the unsigned
//         operand; the activation k-quad broadcast as the signed one), the accumulator starting at
//         -offset·Σx_q so the result is exactly Σ q_w · q_x;
//   acc += float(dot) · (scale_w · scale_x)   (scale_w fp16 → fp32 with vcvtph2ps).
// The same operations in the same order for every element whatever MR/NP, so a row computes
// bit-identically alone or in a batch; the integer part is exact.
#pragma once
#include <immintrin.h>

#include "kernels/quant_panel_layout.h"
#include "kernels/quant_row_layout.h"
#include "kernels/avx512/tile_avx512.h"
#include "kernels/x86_compiler.h"

namespace moecap {
namespace avx512 {

template <QuantFormat F>
struct QuantTile {
  template <int MR, int NP>
  struct Tile {
    static constexpr bool Q4 = F == QuantFormat::Int4;
    static constexpr bool MX = F == QuantFormat::Mx4;
    static constexpr int kOffset = Q4 ? 8 : MX ? 12 : 128;

    // one 32-k block and its scales (mxfp4: half a block pair)
    static constexpr size_t kBytesPerIter = MX ? kMx4PairStride / 2 : quant_block_stride(Q4);
    static constexpr int kBlockIters = Q4 ? 64 : 32;  // ~35 KB of panel per K-block
    // int8 reaches the memory's rate with the near prefetch alone; the far one (tile_avx512.h)
    // costs it a third of its rate from L2 (figures: bench/kernel-notes.md).
    static constexpr bool kFetchFar = MX || Q4;
    static int iterations(int K) { return (K + 31) / 32; }
    static void run(const LinearJob& job, int r0, int p, int ps, int b0, int b1, float* part, Prefetch pf) {
      const int nb = (job.K + 31) / 32;
      const uint8_t* P[NP];
      for (int q = 0; q < NP; ++q) P[q] = job_panel(job, p + q * ps);
      QuantRowPtrs x[MR];
      for (int r = 0; r < MR; ++r) x[r] = quant_row_ptrs(job.rows[r0 + r], nb);
      const __m512i nib = _mm512_set1_epi8(0x0F);
      // mxfp4: E2M1 code → 2·value + 12 ∈ [0, 24] (numeric.h e2m1_twice), the 16 entries repeated
      // 4 times so that vpermb (which reads the low 6 bits of each index byte) needs no mask.
      // Bytes 12 13 14 15 16 18 20 24 | 12 11 10 9 8 6 4 0, little-endian dwords.
      const __m512i lut = _mm512_set4_epi32(0x00040608, 0x090A0B0C, 0x18141210, 0x0F0E0D0C);
      __m512 acc[MR][NP][2];
      if (b0 == 0) {
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
          for (int q = 0; q < NP; ++q) acc[r][q][0] = acc[r][q][1] = _mm512_setzero_ps();
      } else {
        if constexpr (NP == 1) load_partial<MR, NP>(part, acc);
      }
      for (int b = b0; b < b1; ++b) {
        pf.step();
        __m512i dot[MR][NP][2];
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r) {
          // int4 (see the loads below): the high half runs on 16·u_hi, the low half on the raw
          // byte u_lo + 16·u_hi and gets the high half subtracted after the block, so it starts
          // at -(8 + 128)·Σx; int8 starts at -128·Σx.
          const __m512i init = _mm512_set1_epi32((Q4 ? -17 : -1) * kOffset * x[r].sum[b]);
          const __m512i init_hi = Q4 ? _mm512_set1_epi32(-16 * kOffset * x[r].sum[b]) : init;
#pragma GCC unroll 4
          for (int q = 0; q < NP; ++q) {
            dot[r][q][0] = init;
            dot[r][q][1] = init_hi;
          }
        }
#pragma GCC unroll 8
        for (int j = 0; j < 8; ++j) {
          __m512i w[NP][2];
#pragma GCC unroll 4
          for (int q = 0; q < NP; ++q) {
            const uint8_t* blk = MX ? mx4_block(P[q], b) : quant_block(P[q], Q4, b);
            prefetch_stream<kFetchFar>(blk + j * (MX || Q4 ? 64 : 128));
            if (!MX && !Q4) prefetch_stream<kFetchFar>(blk + j * 128 + 64);
            if (MX) {
              // Index bits 4-5 (the other nibble, or the neighbour byte's after the word shift)
              // select among equal copies of the table: 3 ops per 64 bytes besides the dots.
              const __m512i v = _mm512_load_si512(blk + j * 64);
              w[q][0] = _mm512_permutexvar_epi8(v, lut);
              w[q][1] = _mm512_permutexvar_epi8(_mm512_srli_epi16(v, 4), lut);
            } else if (Q4) {
              const __m512i v = _mm512_load_si512(blk + j * 64);
              // One mask per load: the high nibbles in place (16·u_hi ≤ 240, an unsigned byte;
              // the exact 16 comes out of the scale below) and the raw byte for the low half
              // (u_lo + 16·u_hi ≤ 255; the 16·u_hi part is subtracted once per block).
              w[q][0] = v;
              w[q][1] = _mm512_andnot_si512(nib, v);
            } else {
              w[q][0] = _mm512_load_si512(blk + j * 128);
              w[q][1] = _mm512_load_si512(blk + j * 128 + 64);
            }
          }
#pragma GCC unroll 8
          for (int r = 0; r < MR; ++r) {
            int quad;
            MOECAP_MEMCPY(&quad, x[r].q + b * 32 + j * 4, 4);
            const __m512i a = _mm512_set1_epi32(quad);
#pragma GCC unroll 4
            for (int q = 0; q < NP; ++q) {
              dot[r][q][0] = _mm512_dpbusd_epi32(dot[r][q][0], w[q][0], a);
              dot[r][q][1] = _mm512_dpbusd_epi32(dot[r][q][1], w[q][1], a);
            }
          }
        }
        if (Q4) {
#pragma GCC unroll 8
          for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
            for (int q = 0; q < NP; ++q) dot[r][q][0] = _mm512_sub_epi32(dot[r][q][0], dot[r][q][1]);
        }
        __m512 sw[NP][2];
#pragma GCC unroll 4
        for (int q = 0; q < NP; ++q) {
          if (MX) {
            // The exponent e − 128 of 2^(e−128) (numeric.h e8m0_half), applied below by vscalefps.
            const uint8_t* S = mx4_block_scales(P[q], b);
            const __m512i bias = _mm512_set1_epi32(128);
            sw[q][0] = _mm512_cvtepi32_ps(
                _mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(S))), bias));
            sw[q][1] = _mm512_cvtepi32_ps(_mm512_sub_epi32(
                _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(S + 16))), bias));
            continue;
          }
          const uint16_t* S = quant_block_scales(P[q], Q4, b);
          sw[q][0] = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(S)));
          sw[q][1] = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(S + 16)));
          // dot_hi = 16·dot exactly (|dot| < 2^20, exact in fp32) and sw/16 is exact, so
          // float(16·dot)·((sw/16)·sx) is the same fp32 value as float(dot)·(sw·sx).
          if (Q4) sw[q][1] = _mm512_mul_ps(sw[q][1], _mm512_set1_ps(0.0625f));
        }
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r) {
          const __m512 sx = _mm512_set1_ps(x[r].scale[b]);
#pragma GCC unroll 4
          for (int q = 0; q < NP; ++q) {
            // mxfp4: sx·2^(e−128) rounded once, as 2^(e−128) (exact, subnormal for e < 2) times sx.
            const __m512 s0 = MX ? _mm512_scalef_ps(sx, sw[q][0]) : _mm512_mul_ps(sw[q][0], sx);
            const __m512 s1 = MX ? _mm512_scalef_ps(sx, sw[q][1]) : _mm512_mul_ps(sw[q][1], sx);
            acc[r][q][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[r][q][0]), s0, acc[r][q][0]);
            acc[r][q][1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[r][q][1]), s1, acc[r][q][1]);
          }
        }
      }
      if (b1 == nb) store_tile<MR, NP>(job, r0, p, ps, acc);
      else if constexpr (NP == 1) store_partial<MR, NP>(part, acc);
    }
  };
};

}  // namespace avx512
}  // namespace moecap
