// fp8 (E4M3, fp32 scale per lane and 128 inputs) × fp32 activations, AVX-512. Decode per k (32
// weights): vpmovsxbw, a shift by 7 and a mask give the fp16 bits of value·2^-8 (exact, subnormals
// included: weights/numeric.h e4m3_f16_scaled), vcvtph2ps gives fp32, then FMA against the
// broadcast activation; 2^8 is folded into the block scale. Why not the bf16 dot path: E4M3 →
// bf16 by bit moves yields bf16 subnormals for E4M3's small values, which vdpbf16ps flushes to
// zero, and vdpbf16ps would round the fp32 activations to bf16; the fp16 route is exact and its
// decode is shared by every row of a tile (figures against the read bandwidth: README).
// Per block of 128: part = Σ x·w (fp32 FMA chain in input order), acc += part · (scale · 2^8);
// the same operations for every element whatever the tile shape, so a row alone equals it in a batch.
#include <immintrin.h>

#include "kernels/avx512/linear_avx512.h"
#include "kernels/avx512/tile_avx512.h"
#include "kernels/quant_panel_layout.h"

namespace moecap {
namespace avx512 {
namespace {

// One k of the panel, 32 lanes: the bit moves run once on all 32 (one zmm of fp16 bits), then
// vcvtph2ps per 16-lane half — 10 µops per 32 weights with the 2 FMAs, 12 with 16-lane moves.
static inline void decode32(const uint8_t* p, __m512i keep, __m512 (&w)[2]) {
  const __m512i s = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  const __m512i h = _mm512_and_si512(_mm512_slli_epi16(s, 7), keep);
  w[0] = _mm512_cvtph_ps(_mm512_castsi512_si256(h));
  w[1] = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1));
}

template <int MR, int NP>
struct Fp8Tile {
  static constexpr size_t kBytesPerIter = kFp8BlockStride;  // one 128-k block and its scales
  static constexpr int kBlockIters = 8;                     // ~33 KB of panel per K-block
  static int iterations(int K) { return (K + kFp8Block - 1) / kFp8Block; }
  static void run(const LinearJob& job, int r0, int p, int ps, int b0, int b1, float* part, Prefetch pf) {
    const int K = job.K, nb = iterations(K);
    const uint8_t* P[NP];
    for (int q = 0; q < NP; ++q) P[q] = job_panel(job, p + q * ps);
    const float* x[MR];
    for (int r = 0; r < MR; ++r) x[r] = static_cast<const float*>(job.rows[r0 + r]);
    // fp16 bits = (sign-extended byte << 7) with bit 14 (a sign copy) cleared.
    const __m512i keep = _mm512_set1_epi16(short(0xBF80));
    const __m512 two8 = _mm512_set1_ps(256.0f);
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
      const uint8_t* blk[NP];
      for (int q = 0; q < NP; ++q) blk[q] = fp8_block(P[q], b);
      __m512 sum[MR][NP][2];
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
        for (int q = 0; q < NP; ++q) sum[r][q][0] = sum[r][q][1] = _mm512_setzero_ps();
#pragma GCC unroll 2
      for (int kk = 0; kk < n; ++kk) {
        __m512 w[NP][2];
#pragma GCC unroll 4
        for (int q = 0; q < NP; ++q) decode32(blk[q] + kk * 32, keep, w[q]);
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r) {
          const __m512 a = _mm512_set1_ps(x[r][k0 + kk]);
#pragma GCC unroll 4
          for (int q = 0; q < NP; ++q) {
            sum[r][q][0] = _mm512_fmadd_ps(a, w[q][0], sum[r][q][0]);
            sum[r][q][1] = _mm512_fmadd_ps(a, w[q][1], sum[r][q][1]);
          }
        }
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
