// fp8 (E4M3, fp32 scale per lane and 128 inputs) × fp32 activations, AVX-512. Decode per pair of
// k (64 weights): the code byte at the top of a 16-bit lane (placed there by where the load
// starts), an arithmetic shift by 1 and a mask give the fp16 bits of value·2^-8 (exact, subnormals
// included: weights/numeric.h e4m3_f16_scaled), vcvtph2ps gives fp32, then FMA against the
// broadcast activation; 2^8 is folded into the block scale. Why fp16 and not fp32 bits directly (a
// shift and a mask per 16 weights, as the AVX2 kernel does on CPUs without the penalty below):
// E4M3's subnormal codes would become
// fp32 subnormals, and on Intel an FMA with a subnormal operand takes a microcode assist (~50 ns
// each, measured on a Xeon: random codes decoded 30x slower); vcvtph2ps takes fp16 subnormals at
// full rate. Why not the bf16 dot path: vdpbf16ps flushes bf16 subnormals to zero and would round
// the fp32 activations to bf16.
// Per block of 128: part = Σ x·w (fp32 FMA chain in input order), acc += part · (scale · 2^8);
// the same operations for every element whatever the tile shape, so a row alone equals it in a
// batch, and the same as the sign-extending decode before it (outputs bitwise equal).
#include <immintrin.h>

#include "kernels/avx512/linear_avx512.h"
#include "kernels/avx512/tile_avx512.h"
#include "kernels/quant_panel_layout.h"

namespace moecap {
namespace avx512 {
namespace {

// Shifts spelled as the zero-masked intrinsics with a full mask: the same instruction, without the
// undefined source operand GCC 12 warns about once inlined (-Wuninitialized).
static inline __m512i shl16(__m512i a, unsigned n) { return _mm512_maskz_slli_epi16(__mmask32(0xFFFFFFFFu), a, n); }
static inline __m512i sar16(__m512i a, unsigned n) { return _mm512_maskz_srai_epi16(__mmask32(0xFFFFFFFFu), a, n); }

// Rows k and k + 1 of the panel (64 bytes at p) → w[0], w[1]: outputs 0, 2, …, 30 of k and of k + 1;
// w[2], w[3]: outputs 1, 3, …, 31 of k and of k + 1. A 64-byte load at p − 1 has byte 2i at the top
// of 16-bit lane i, one at p byte 2i + 1 (the byte before p is the previous k's, or for a block's
// first pair perhaps outside the weights: there the load at p is shifted instead).
template <bool first>
static inline void decode_pair(const uint8_t* p, __m512i keep, __m512 (&w)[4]) {
  const __m512i odd = _mm512_loadu_si512(p);
  const __m512i even = first ? shl16(odd, 8) : _mm512_loadu_si512(p - 1);
  const __m512i he = _mm512_and_si512(sar16(even, 1), keep), ho = _mm512_and_si512(sar16(odd, 1), keep);
  alignas(64) __m256i h[4];
  _mm512_store_si512(h, he);
  _mm512_store_si512(h + 2, ho);
#if defined(__GNUC__)
  for (int i = 0; i < 4; ++i) __asm__("vcvtph2ps %1, %0" : "=v"(w[i]) : "m"(h[i]));
#else
  for (int i = 0; i < 4; ++i) w[i] = _mm512_cvtph_ps(_mm256_load_si256(h + i));
#endif
}

template <int MR, int NP>
struct Fp8Tile {
  static constexpr size_t kBytesPerIter = kFp8BlockStride;  // one 128-k block and its scales
  static constexpr int kBlockIters = 8;                     // ~33 KB of panel per K-block
  static int iterations(int K) { return (K + kFp8Block - 1) / kFp8Block; }

  // Inputs k0 + kk and, unless `single` (kk the block's last input), k0 + kk + 1: sum[r][q][0] holds
  // the even outputs, [1] the odd ones.
  template <bool first, bool single>
  static inline void step(const float* const* x, int k, const uint8_t* const* B, int kk, __m512i keep,
                          __m512 (&sum)[MR][NP][2]) {
    __m512 w[NP][4];
#pragma GCC unroll 4
    for (int q = 0; q < NP; ++q) {
      prefetch_stream(B[q] + kk * 32);
      decode_pair<first>(B[q] + kk * 32, keep, w[q]);
    }
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512 a = _mm512_set1_ps(x[r][k]);
#pragma GCC unroll 4
      for (int q = 0; q < NP; ++q) {
        sum[r][q][0] = _mm512_fmadd_ps(a, w[q][0], sum[r][q][0]);
        sum[r][q][1] = _mm512_fmadd_ps(a, w[q][2], sum[r][q][1]);
      }
      if (!single) {
        const __m512 b = _mm512_set1_ps(x[r][k + 1]);
#pragma GCC unroll 4
        for (int q = 0; q < NP; ++q) {
          sum[r][q][0] = _mm512_fmadd_ps(b, w[q][1], sum[r][q][0]);
          sum[r][q][1] = _mm512_fmadd_ps(b, w[q][3], sum[r][q][1]);
        }
      }
    }
  }

  static void run(const LinearJob& job, int r0, int p, int ps, int b0, int b1, float* part, Prefetch pf) {
    const int K = job.K, nb = iterations(K);
    const uint8_t* P[NP];
    for (int q = 0; q < NP; ++q) P[q] = job_panel(job, p + q * ps);
    const float* x[MR];
    for (int r = 0; r < MR; ++r) x[r] = static_cast<const float*>(job.rows[r0 + r]);
    // fp16 bits = (the byte at the top of the lane >> 1, arithmetic) with bit 14 (a sign copy)
    // and bits 6..0 (the byte below) cleared: value·2^-8, exactly (weights/numeric.h e4m3_f16_scaled).
    const __m512i keep = _mm512_set1_epi16(short(0xBF80));
    const __m512 two8 = _mm512_set1_ps(256.0f);
    // Even and odd outputs → outputs 0..15 and 16..31.
    const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i hi = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
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
      const int k0 = b * kFp8Block, n = K - k0 < kFp8Block ? K - k0 : kFp8Block;
      const uint8_t* B[NP];
      for (int q = 0; q < NP; ++q) B[q] = fp8_block(P[q], b);
      __m512 sum[MR][NP][2];
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
        for (int q = 0; q < NP; ++q) sum[r][q][0] = sum[r][q][1] = _mm512_setzero_ps();
      if (n == 1) {
        step<true, true>(x, k0, B, 0, keep, sum);
      } else {
        step<true, false>(x, k0, B, 0, keep, sum);
        int kk = 2;
#pragma GCC unroll 2
        for (; kk + 1 < n; kk += 2) step<false, false>(x, k0 + kk, B, kk, keep, sum);
        if (kk < n) step<false, true>(x, k0 + kk, B, kk, keep, sum);
      }
      __m512 s[NP][2];
#pragma GCC unroll 4
      for (int q = 0; q < NP; ++q) {
        const float* S = fp8_block_scales(P[q], b);
        s[q][0] = _mm512_mul_ps(_mm512_loadu_ps(S), two8);
        s[q][1] = _mm512_mul_ps(_mm512_loadu_ps(S + 16), two8);
      }
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
        for (int q = 0; q < NP; ++q) {
          const __m512 o0 = _mm512_permutex2var_ps(sum[r][q][0], lo, sum[r][q][1]);
          const __m512 o1 = _mm512_permutex2var_ps(sum[r][q][0], hi, sum[r][q][1]);
          acc[r][q][0] = _mm512_fmadd_ps(o0, s[q][0], acc[r][q][0]);
          acc[r][q][1] = _mm512_fmadd_ps(o1, s[q][1], acc[r][q][1]);
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
