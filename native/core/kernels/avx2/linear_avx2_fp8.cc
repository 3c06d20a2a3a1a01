// fp8 (E4M3, fp32 scale per lane and 128 inputs) × fp32 activations, AVX2 + FMA. Per block of 128:
// part = Σ x·w (fp32 FMA chain in input order), acc += part · scale; the same operations for every
// element whatever the tile shape, so a row alone equals it in a batch.
//
// Decode, per 8 weights: vpmovsxbd, a shift by 20 and a mask put the byte's exponent into the low 4
// bits of the fp32 exponent and its mantissa into the top 3 mantissa bits: the fp32 bits of
// value·2^-120, exact for every code (E4M3 subnormals become fp32 subnormals m·2^-129). These are
// integer ops the vector pipes share, where the fp16 route (vcvtph2ps, two per 16 weights) runs
// on one pipe and held the kernel to ~12 GB/s per core.
// The products x·w·2^-120 would underflow, so each row is scaled by a power of two 2^e as it is
// broadcast (e from the row's max|x|, RowScales) and each block sum by 2^(120-e) before its scale.
// Powers of two are exact: this is the fp32 rounding of x·w, except that a product below 2^-126
// in the scaled units (2^-36 of the row's largest possible product) keeps subnormal precision.
// Tiles (run_tiles, linear_avx2.h): 2 rows × one panel, or one row × 3 panels for decode (32
// outputs = 4 ymm per row and panel); the block sums and the decoded ymm fit the 16 registers, the
// running totals go to the stack between blocks.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/avx2/linear_avx2.h"
#include "kernels/quant_panel_layout.h"

namespace moecap {
namespace avx2 {
namespace {

// 16 E4M3 bytes → lanes 0..7 and 8..15 as the fp32 bits of value·2^-120.
static inline void decode16(const uint8_t* p, __m256i keep, __m256& lo, __m256& hi) {
  const __m256i a = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  const __m256i b = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 8)));
  // Sign-extended byte << 20: bits 27..20 the byte, 31..28 sign copies; keep the sign at 31 and 26..20.
  lo = _mm256_castsi256_ps(_mm256_and_si256(_mm256_slli_epi32(a, 20), keep));
  hi = _mm256_castsi256_ps(_mm256_and_si256(_mm256_slli_epi32(b, 20), keep));
}

// Per row of the job: activation scale 2^e and block-sum scale 2^(120-e), e bringing max|x| to
// [2^20, 2^21) where fp32 allows (e in [-6, 126]: both scales stay normal fp32).
struct RowScales {
  const float* act;
  const float* sum;
};

float row_max_abs(const float* x, int K) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  __m256 m = _mm256_setzero_ps();
  int k = 0;
  for (; k + 8 <= K; k += 8) m = _mm256_max_ps(m, _mm256_and_ps(_mm256_loadu_ps(x + k), abs_mask));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, m);
  float r = 0;
  for (float v : lanes) r = std::max(r, v);
  for (; k < K; ++k) r = std::max(r, std::fabs(x[k]));
  return r;
}

RowScales row_scales(const LinearJob& job, std::vector<float>& store) {
  store.resize(2 * size_t(job.n));
  for (int r = 0; r < job.n; ++r) {
    const float m = row_max_abs(static_cast<const float*>(job.rows[r]), job.K);
    // A zero, inf or NaN maximum: any scale serves (and ilogb's INT_MIN for 0 and NaN must not be negated).
    const int e = std::isfinite(m) && m > 0 ? std::clamp(20 - std::ilogb(m), -6, 126) : 0;
    store[r] = std::ldexp(1.0f, e);
    store[job.n + r] = std::ldexp(1.0f, 120 - e);
  }
  return {store.data(), store.data() + job.n};
}

template <int MR, int NP>
struct TileFp8 {
  static constexpr int kBlockIters = 8;  // 128-k blocks per K-block: ~33 KB of panel
  static int iterations(int K) { return (K + kFp8Block - 1) / kFp8Block; }
  static void run(const LinearJob& job, int r0, int p, int ps, int b0, int b1, float* part, const RowScales& rs) {
    const int K = job.K;
    const uint8_t* P[NP];
    for (int q = 0; q < NP; ++q) P[q] = job_panel(job, p + q * ps);
    const float* x[MR];
    __m256 act_scale[MR], sum_scale[MR];
    for (int r = 0; r < MR; ++r) {
      x[r] = static_cast<const float*>(job.rows[r0 + r]);
      act_scale[r] = _mm256_set1_ps(rs.act[r0 + r]);
      sum_scale[r] = _mm256_set1_ps(rs.sum[r0 + r]);
    }
    const __m256i keep = _mm256_set1_epi32(int(0x87F00000u));
    for (int b = b0; b < b1; ++b) {
      const int k0 = b * kFp8Block, n = K - k0 < kFp8Block ? K - k0 : kFp8Block;
      __m256 sum[MR][NP][4];
      zero_tile(sum);
#pragma GCC unroll 2
      for (int kk = 0; kk < n; ++kk) {
        __m256 a[MR];
        for (int r = 0; r < MR; ++r) a[r] = _mm256_mul_ps(_mm256_broadcast_ss(x[r] + k0 + kk), act_scale[r]);
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
      // The running totals pass from block to block through `part`, decode tiles' too: in
      // registers they would crowd the block sums out of them in the loop above.
      __m256 acc[MR][NP][4];
      if (b == 0) zero_tile(acc);
      else load_partial(part, acc);
      for (int q = 0; q < NP; ++q) {
        const float* S = fp8_block_scales(P[q], b);
        for (int v = 0; v < 4; ++v) {
          const __m256 s = _mm256_loadu_ps(S + 8 * v);
          for (int r = 0; r < MR; ++r)
            acc[r][q][v] = _mm256_fmadd_ps(_mm256_mul_ps(sum[r][q][v], sum_scale[r]), s, acc[r][q][v]);
        }
      }
      if (b + 1 == iterations(K)) finish_tile(job, r0, p, ps, acc);
      else store_partial(part, acc);
    }
  }
};

}  // namespace

void linear_fp8(const LinearJob& job) {
  thread_local std::vector<float> scales;  // grows to the largest batch a thread has seen, then stays
  run_tiles<TileFp8, 2, 3>(job, row_scales(job, scales));
}

}  // namespace avx2
}  // namespace moecap
