// fp8 (E4M3, fp32 scale per lane and 128 inputs) × bf16 activation rows, AVX-512 BF16 + VBMI.
// Decode per k-pair (64 weights): two vpermi2b table lookups give the high and low bytes of each
// code's exact bf16 (weights/numeric.h e4m3_bf16: E4M3 subnormals come out as bf16 normals, so
// vdpbf16ps, which reads bf16 subnormals as zero, sees every value), a vpternlogd puts the sign
// bit back, and two vpermt2b interleave the bytes into the bf16 kernel's k-pair layout (lane l's
// (k, k+1) in one dword); then one vdpbf16ps per 16 lanes and row. 7 vector ops per 64 weights
// besides the dots, against 10 per 32 for the former fp16 decode + fp32 FMA, which was
// compute-bound at T = 1 on a 2-core Zen 4 (bench/run.js BENCH_SHAPES=cache; README).
// Per block of 128: part = the vdpbf16ps chain over its k-pairs from zero, acc = fma(part, scale,
// acc); the same operations for every element whatever the tile shape, so a row alone equals it
// in a batch. The portable, AVX2 and NEON kernels compute the same chain (a bf16 × bf16 product
// is exact in fp32): part = (part + x_odd·w_odd) + x_even·w_even.
#include <immintrin.h>

#include "kernels/avx512/linear_avx512.h"
#include "kernels/avx512/tile_avx512.h"
#include "kernels/quant_panel_layout.h"
#include "kernels/x86_compiler.h"
#include "weights/numeric.h"

namespace moecap {
namespace avx512 {
namespace {

// The high and low bytes of e4m3_bf16 for the 128 magnitudes (vpermi2b reads 7 index bits), and
// the vpermb order that puts lane l's (k, k+1) codes side by side (byte (k-offset)·32 + l of the 64
// loaded) such that vpunpcklbw/vpunpckhbw of the looked-up bytes, which interleave within each
// 128-bit lane, give lanes 0..15 and 16..31 as bf16 k-pairs in order: 128-bit lane q's bytes
// 0..7 are lanes 4q..4q+3, its bytes 8..15 lanes 16+4q..16+4q+3.
struct E4m3Tables {
  alignas(64) uint8_t hi[128];
  alignas(64) uint8_t lo[128];
  alignas(64) uint8_t pairs[64];
  constexpr E4m3Tables() : hi(), lo(), pairs() {
    for (int c = 0; c < 128; ++c) {
      hi[c] = uint8_t(e4m3_bf16(uint8_t(c)) >> 8);
      lo[c] = uint8_t(e4m3_bf16(uint8_t(c)) & 0xFF);
    }
    for (int q = 0; q < 4; ++q)
      for (int t = 0; t < 16; ++t) {
        const int lane = (t < 8 ? 0 : 16) + 4 * q + (t & 7) / 2;
        pairs[16 * q + t] = uint8_t((t & 1) * 32 + lane);
      }
  }
};
constexpr E4m3Tables kTables;

struct Decoder {
  __m512i hi0, hi1, lo0, lo1, pairs, sign;
  Decoder()
      : hi0(_mm512_load_si512(kTables.hi)),
        hi1(_mm512_load_si512(kTables.hi + 64)),
        lo0(_mm512_load_si512(kTables.lo)),
        lo1(_mm512_load_si512(kTables.lo + 64)),
        pairs(_mm512_load_si512(kTables.pairs)),
        sign(_mm512_set1_epi8(char(0x80))) {}
  // One k-pair of the panel (k, k+1 × 32 lanes) → lanes 0..15 and 16..31 as bf16 k-pairs.
  inline void pair(const uint8_t* p, __m512bh (&w)[2]) const {
    const __m512i v = _mm512_permutexvar_epi8(pairs, _mm512_load_si512(p));
    // high byte: the magnitude's, or the code's sign bit (0xF8: a | (b & c))
    const __m512i h = _mm512_ternarylogic_epi32(_mm512_permutex2var_epi8(hi0, v, hi1), v, sign, 0xF8);
    const __m512i l = _mm512_permutex2var_epi8(lo0, v, lo1);
    w[0] = MOECAP_AS_BF16_PAIRS(_mm512_unpacklo_epi8(l, h));
    w[1] = MOECAP_AS_BF16_PAIRS(_mm512_unpackhi_epi8(l, h));
  }
};

template <int MR, int NP>
struct Fp8Tile {
  static constexpr size_t kBytesPerIter = kFp8BlockStride;  // one 128-k block and its scales
  static constexpr int kBlockIters = 8;                     // ~33 KB of panel per K-block
  static int iterations(int K) { return (K + kFp8Block - 1) / kFp8Block; }
  static void run(const LinearJob& job, int r0, int p, int ps, int b0, int b1, float* part, Prefetch pf) {
    const int K = job.K, nb = iterations(K);
    const uint8_t* P[NP];
    for (int q = 0; q < NP; ++q) P[q] = job_panel(job, p + q * ps);
    const int* x[MR];  // k-pairs of bf16 read as one 32-bit word
    for (int r = 0; r < MR; ++r) x[r] = static_cast<const int*>(job.rows[r0 + r]);
    const Decoder dec;
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
      const int k0 = b * kFp8Block, n2 = ((K - k0 < kFp8Block ? K - k0 : kFp8Block) + 1) / 2;
      const uint8_t* blk[NP];
      for (int q = 0; q < NP; ++q) blk[q] = fp8_block(P[q], b);
      __m512 sum[MR][NP][2];
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
        for (int q = 0; q < NP; ++q) sum[r][q][0] = sum[r][q][1] = _mm512_setzero_ps();
#pragma GCC unroll 2
      for (int i = 0; i < n2; ++i) {
        __m512bh w[NP][2];
#pragma GCC unroll 4
        for (int q = 0; q < NP; ++q) dec.pair(blk[q] + i * 64, w[q]);
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r) {
          const __m512bh a = MOECAP_AS_BF16_PAIRS(_mm512_set1_epi32(x[r][k0 / 2 + i]));
#pragma GCC unroll 4
          for (int q = 0; q < NP; ++q) {
            sum[r][q][0] = _mm512_dpbf16_ps(sum[r][q][0], a, w[q][0]);
            sum[r][q][1] = _mm512_dpbf16_ps(sum[r][q][1], a, w[q][1]);
          }
        }
      }
      __m512 s[NP][2];
#pragma GCC unroll 4
      for (int q = 0; q < NP; ++q) {
        const float* S = fp8_block_scales(P[q], b);
        s[q][0] = _mm512_loadu_ps(S);
        s[q][1] = _mm512_loadu_ps(S + 16);
      }
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
        for (int q = 0; q < NP; ++q) {
          acc[r][q][0] = _mm512_fmadd_ps(sum[r][q][0], s[q][0], acc[r][q][0]);
          acc[r][q][1] = _mm512_fmadd_ps(sum[r][q][1], s[q][1], acc[r][q][1]);
        }
    }
    if (b1 == nb) store_tile<MR, NP>(job, r0, p, ps, acc);
    else if constexpr (NP == 1) store_partial<MR, NP>(part, acc);
  }
};

}  // namespace

void linear_fp8(const LinearJob& job) { Driver<Fp8Tile, 4>::run(job); }

}  // namespace avx512
}  // namespace moecap
