// fp8 (E4M3, fp32 scale per lane and 128 inputs) × fp32 activations, AVX2 + FMA. Per block of 128:
// part = Σ x·w (fp32 FMA chain in input order), acc += part · scale; the same operations for every
// element whatever the tile shape, so a row alone equals it in a batch.
//
// Decode, per 8 weights: a byte at the top of each 32-bit lane, an arithmetic shift right by 4 and a
// mask put the byte's exponent into the low 4 bits of the fp32 exponent and its mantissa into the
// top 3 mantissa bits: the fp32 bits of value·2^-120, exact for every code (E4M3 subnormals become
// fp32 subnormals m·2^-129). The byte reaches the top by where the 32-byte load starts (p, p-1,
// p-2, p-3 put bytes 4i+3, +2, +1, +0 there, from the previous k's row of the same block), so 8
// weights cost one shift where the sign extension cost a shuffle and a shift: the shifts and
// shuffles, not the loads, bound this loop (measured below). Each of the four ymm then holds every
// fourth output; the block sums go back to output order (a 4x8 transpose, values moved, not
// changed) once per block, so the results are bitwise those of the sign-extending decode.
// Measured per core, panels in cache (bench/kernel_rate.cc, 1 row): the fp16 route (vcvtph2ps) ~12
// GB/s; vpmovsxbd + shift + mask per 8 weights 18.7-19.8; this 23.2-23.3 (same runs; one load at p
// and shifts for all four instead: 19.7-19.8, so it is the shifts, not the unaligned loads).
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

// One k of a panel (32 E4M3 bytes at p) → the fp32 bits of value·2^-120 of outputs 4i + v (i = 0..7)
// for v = hi ? 3, 2 : 1, 0. A 32-byte load at p - t has byte 4i + 3 - t at the top of lane i.
// `first`: the bytes before p may lie outside the weights (a block's first k), so the top bytes
// of one load at p are shifted into place instead.
template <bool first, bool hi>
static inline void decode_pair(const uint8_t* p, __m256i keep, __m256& w_a, __m256& w_b) {
  const auto at = [p](int t) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p - t)); };
  __m256i a, b;  // outputs 4i + (hi ? 3 : 1) and 4i + (hi ? 2 : 0)
  if (first) {
    const __m256i raw = at(0);
    a = hi ? raw : _mm256_slli_epi32(raw, 16);
    b = _mm256_slli_epi32(raw, hi ? 8 : 24);
  } else {
    a = at(hi ? 0 : 2);
    b = at(hi ? 1 : 3);
  }
  // Bits 31..24 the byte: >> 4 (arithmetic) leaves sign copies at 31..27 and bits 6..0 at 26..20.
  w_a = _mm256_castsi256_ps(_mm256_and_si256(_mm256_srai_epi32(a, 4), keep));
  w_b = _mm256_castsi256_ps(_mm256_and_si256(_mm256_srai_epi32(b, 4), keep));
}

// s[v] holds outputs 4i + v → s[u] holds outputs 8u .. 8u + 7 (values moved, not changed).
static inline void to_output_order(__m256 s[4]) {
  const __m256 t0 = _mm256_unpacklo_ps(s[0], s[1]), t1 = _mm256_unpackhi_ps(s[0], s[1]);
  const __m256 t2 = _mm256_unpacklo_ps(s[2], s[3]), t3 = _mm256_unpackhi_ps(s[2], s[3]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);  // 0..7 | 16..23
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);  // 8..15 | 24..31
  s[0] = _mm256_permute2f128_ps(u0, u1, 0x20);
  s[1] = _mm256_permute2f128_ps(u2, u3, 0x20);
  s[2] = _mm256_permute2f128_ps(u0, u1, 0x31);
  s[3] = _mm256_permute2f128_ps(u2, u3, 0x31);
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
  // One k of the block: sum[r][q][v] += x·2^e · w of outputs 4i + v.
  template <bool first>
  static inline void step(const float* const* x, int k0, int kk, const __m256* act_scale, const uint8_t* const* B,
                          __m256i keep, __m256 (&sum)[MR][NP][4]) {
    __m256 a[MR];
    for (int r = 0; r < MR; ++r) a[r] = _mm256_mul_ps(_mm256_broadcast_ss(x[r] + k0 + kk), act_scale[r]);
#pragma GCC unroll 4
    for (int q = 0; q < NP; ++q) {
      __m256 w3, w2, w1, w0;
      decode_pair<first, true>(B[q] + kk * 32, keep, w3, w2);
      for (int r = 0; r < MR; ++r) {
        sum[r][q][3] = _mm256_fmadd_ps(a[r], w3, sum[r][q][3]);
        sum[r][q][2] = _mm256_fmadd_ps(a[r], w2, sum[r][q][2]);
      }
      decode_pair<first, false>(B[q] + kk * 32, keep, w1, w0);
      for (int r = 0; r < MR; ++r) {
        sum[r][q][1] = _mm256_fmadd_ps(a[r], w1, sum[r][q][1]);
        sum[r][q][0] = _mm256_fmadd_ps(a[r], w0, sum[r][q][0]);
      }
    }
  }
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
      __m256 sum[MR][NP][4];  // [v]: outputs 4i + v until the block ends
      zero_tile(sum);
      const uint8_t* B[NP];
      for (int q = 0; q < NP; ++q) B[q] = fp8_block(P[q], b);
      step<true>(x, k0, 0, act_scale, B, keep, sum);
#pragma GCC unroll 2
      for (int kk = 1; kk < n; ++kk) step<false>(x, k0, kk, act_scale, B, keep, sum);
      for (int r = 0; r < MR; ++r)
        for (int q = 0; q < NP; ++q) to_output_order(sum[r][q]);
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
