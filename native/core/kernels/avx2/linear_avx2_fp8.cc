// fp8 (E4M3, fp32 scale per lane and 128 inputs) × fp32 activations, AVX2 + F16C + FMA: the
// AVX-512 kernel's decode at half width. Per 8 weights: vpmovsxbw, a shift by 7 and a mask give
// the fp16 bits of value·2^-8 (exact, subnormals included: weights/numeric.h e4m3_f16_scaled),
// vcvtph2ps gives fp32, then FMA against the broadcast activation; 2^8 is folded into the scale.
// Per block of 128: part = Σ x·w (fp32 FMA chain in input order), acc += part · (scale · 2^8);
// the same operations for every element whatever the tile shape, so a row alone equals it in a batch.
// Tiles (run_tiles, linear_avx2.h): 2 rows × one panel, or one row × 3 panels for decode (32
// outputs = 4 ymm per row and panel); the block sums and one decoded ymm at a time fit the 16
// registers, the running totals go to the stack between blocks.
#include <immintrin.h>

#include "kernels/avx2/linear_avx2.h"
#include "kernels/quant_panel_layout.h"

namespace moecap {
namespace avx2 {
namespace {

// 16 E4M3 bytes → lanes 0..7 and 8..15 as fp32 (value·2^-8).
static inline void decode16(const uint8_t* p, __m256i keep, __m256& lo, __m256& hi) {
  const __m256i s = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  // fp16 bits = (sign-extended byte << 7) with bit 14 (a sign copy) cleared.
  const __m256i h = _mm256_and_si256(_mm256_slli_epi16(s, 7), keep);
  lo = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
  hi = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
}

template <int MR, int NP>
struct TileFp8 {
  static void run(const LinearJob& job, int r0, int p, int ps) {
    const int K = job.K, nb = (K + kFp8Block - 1) / kFp8Block;
    const uint8_t* P[NP];
    for (int q = 0; q < NP; ++q) P[q] = job_panel(job, p + q * ps);
    const float* x[MR];
    for (int r = 0; r < MR; ++r) x[r] = static_cast<const float*>(job.rows[r0 + r]);
    const __m256i keep = _mm256_set1_epi16(short(0xBF80));
    const __m256 two8 = _mm256_set1_ps(256.0f);
    __m256 acc[MR][NP][4];
    zero_tile(acc);
    for (int b = 0; b < nb; ++b) {
      const int k0 = b * kFp8Block, n = K - k0 < kFp8Block ? K - k0 : kFp8Block;
      __m256 sum[MR][NP][4];
      zero_tile(sum);
#pragma GCC unroll 2
      for (int kk = 0; kk < n; ++kk) {
        __m256 a[MR];
        for (int r = 0; r < MR; ++r) a[r] = _mm256_broadcast_ss(x[r] + k0 + kk);
#pragma GCC unroll 4
        for (int q = 0; q < NP; ++q)
          for (int h = 0; h < 2; ++h) {
            __m256 w0, w1;
            decode16(fp8_block(P[q], b) + kk * 32 + 16 * h, keep, w0, w1);
            for (int r = 0; r < MR; ++r) {
              sum[r][q][2 * h] = _mm256_fmadd_ps(a[r], w0, sum[r][q][2 * h]);
              sum[r][q][2 * h + 1] = _mm256_fmadd_ps(a[r], w1, sum[r][q][2 * h + 1]);
            }
          }
      }
      for (int q = 0; q < NP; ++q) {
        const float* S = fp8_block_scales(P[q], b);
        for (int v = 0; v < 4; ++v) {
          const __m256 s = _mm256_mul_ps(_mm256_loadu_ps(S + 8 * v), two8);
          for (int r = 0; r < MR; ++r) acc[r][q][v] = _mm256_fmadd_ps(sum[r][q][v], s, acc[r][q][v]);
        }
      }
    }
    store_tile(job, r0, p, ps, acc);
  }
};

}  // namespace

void linear_fp8(const LinearJob& job) { run_tiles<TileFp8, 2, 3>(job); }

}  // namespace avx2
}  // namespace moecap
