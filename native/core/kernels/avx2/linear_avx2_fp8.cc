// fp8 (E4M3, fp32 scale per lane and 128 inputs) × fp32 activations, AVX2 + FMA + F16C. Per block of
// 128: part = Σ x·w (fp32 FMA chain in input order), acc += part · scale; the same operations for
// every element whatever the tile shape, so a row alone equals it in a batch. Two decodes of the
// codes, with the same results (below), chosen once per process by which this CPU runs faster:
//
//  - fp32 bits (`kHalf` false): a byte at the top of each 32-bit lane, an arithmetic shift right by
//    4 and a mask put its exponent into the low 4 bits of the fp32 exponent and its mantissa into
//    the top 3 mantissa bits: the fp32 bits of value·2^-120 (E4M3 subnormals become fp32
//    subnormals). Four 32-byte loads of a k's row, at p, p − 1, p − 2, p − 3, put bytes 4i + 3, +2,
//    +1, +0 at the top of lane i (the earlier bytes are the previous k's row; a block's first k
//    shifts one load instead), so 8 weights cost a shift and a mask. The products x·w·2^-120 would
//    underflow, so each row is scaled by 2^e as it is broadcast (e from the row's max|x|,
//    RowScales) and each block sum by 2^(120−e) before its scale.
//  - fp16 bits (`kHalf` true): a 32-byte load at p − 1 puts byte 2i at the top of 16-bit lane i,
//    one at p byte 2i + 1; an arithmetic shift by 1 and a mask give the fp16 bits of value·2^-8
//    (exact, subnormals included: weights/numeric.h e4m3_f16_scaled), vcvtph2ps gives fp32, and
//    2^8 is folded into the block scale: the AVX-512 kernel's arithmetic.
// Why two: on Intel an FMA with a subnormal operand takes a microcode assist (tens of ns; a scalar
// mul or add with one does not), so the fp32-bits decode ran at 0.7 GB/s per core on a Xeon with
// uniform codes and ~10% slower on Gaussian weights' (~1e-4 subnormal codes) than without them;
// vcvtph2ps takes fp16 subnormals at full rate. On a Zen 3 subnormal operands cost nothing and
// vcvtph2ps (one vector pipe) bounded an earlier fp16 decode: 11.6-12.3 GB/s per core against
// 23.2-23.3 for the fp32 bits (bench/kernel-notes.md). fma_subnormals_slow() measures which case
// this CPU is. Powers of two are exact, so both compute the fp32 rounding of x·w·(2^k) and give
// the same outputs, except where the fp32-bits products fall below fp32's normal range (a product
// below 2^-36 of the row's largest possible one), which keeps subnormal precision there.
// Each decode leaves a k's 32 outputs in four ymm out of order (fp32 bits: every fourth output;
// fp16: even, then odd outputs); the block sums go back to output order (values moved, not
// changed) once per block.
// Tiles (run_tiles, linear_avx2.h): 2 rows × one panel, or one row × 3 panels for decode (32
// outputs = 4 ymm per row and panel); the block sums and the decoded ymm fit the 16 registers, the
// running totals go to `part` between blocks. The fp16 decode tiles prefetch each panel stream one
// block ahead (on the Xeon, 2 processes streaming: the fp32-bits decode, which does not, 12-18
// GB/s; this one 19-27), and where prefetcht1 skips L1 every fp16 tile that streams its panels
// does so and fetches 8 KB ahead into L2 (tile_fetches).
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

#include "kernels/avx2/linear_avx2.h"
#include "kernels/quant_panel_layout.h"

namespace moecap {
namespace avx2 {
namespace {

// fp32 bits: one k of a panel (32 E4M3 bytes at p) → the fp32 bits of value·2^-120 of outputs
// 4i + v (i = 0..7) for v = hi ? 3, 2 : 1, 0. A 32-byte load at p − t has byte 4i + 3 − t at the top
// of lane i. `first`: the bytes before p may lie outside the weights (a block's first k), so the
// top bytes of one load at p are shifted into place instead.
template <bool first, bool hi>
static inline void decode_bits_pair(const uint8_t* p, __m256i keep, __m256& w_a, __m256& w_b) {
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

// fp16 bits: one k of a panel → w[0], w[1]: outputs 0, 2, …, 30 (fp32 value·2^-8); w[2], w[3]:
// outputs 1, 3, …, 31. `first` as above (the load at p shifted by 8 for the even bytes).
template <bool first>
static inline void decode_half(const uint8_t* p, __m256i keep, __m256 (&w)[4]) {
  const __m256i odd = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  const __m256i even = first ? _mm256_slli_epi16(odd, 8) : _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p - 1));
  const __m256i he = _mm256_and_si256(_mm256_srai_epi16(even, 1), keep);
  const __m256i ho = _mm256_and_si256(_mm256_srai_epi16(odd, 1), keep);
  // vcvtph2ps from memory: from a register it is two uops, one on the shuffle port the 128-bit
  // extracts also need, from memory one (and the loads have ports of their own). One thread,
  // panels in L2, a Xeon: 16.8 against 14.1-14.6 GB/s. Compilers forward the stores to
  // register-form conversions, hence the asm (MSVC, without it: the register form).
  alignas(32) __m128i h[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(h), he);
  _mm256_store_si256(reinterpret_cast<__m256i*>(h + 2), ho);
#if defined(__GNUC__)
  for (int i = 0; i < 4; ++i) __asm__("vcvtph2ps %1, %0" : "=x"(w[i]) : "m"(h[i]));
#else
  for (int i = 0; i < 4; ++i) w[i] = _mm256_cvtph_ps(_mm_load_si128(h + i));
#endif
}

// fp32 bits: s[v] holds outputs 4i + v → s[u] holds outputs 8u .. 8u + 7.
static inline void bits_to_output_order(__m256 s[4]) {
  const __m256 t0 = _mm256_unpacklo_ps(s[0], s[1]), t1 = _mm256_unpackhi_ps(s[0], s[1]);
  const __m256 t2 = _mm256_unpacklo_ps(s[2], s[3]), t3 = _mm256_unpackhi_ps(s[2], s[3]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);  // 0..7 | 16..23
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);  // 8..15 | 24..31
  s[0] = _mm256_permute2f128_ps(u0, u1, 0x20);
  s[1] = _mm256_permute2f128_ps(u2, u3, 0x20);
  s[2] = _mm256_permute2f128_ps(u0, u1, 0x31);
  s[3] = _mm256_permute2f128_ps(u2, u3, 0x31);
}

// fp16 bits: s = {outputs 0, 2, …, 14 | 16, …, 30 | 1, …, 15 | 17, …, 31} → s[u] holds outputs 8u .. 8u + 7.
static inline void half_to_output_order(__m256 s[4]) {
  const __m256 a = _mm256_unpacklo_ps(s[0], s[2]), b = _mm256_unpackhi_ps(s[0], s[2]);  // 0..3 | 8..11, 4..7 | 12..15
  const __m256 c = _mm256_unpacklo_ps(s[1], s[3]),
               d = _mm256_unpackhi_ps(s[1], s[3]);  // 16..19 | 24..27, 20..23 | 28..31
  s[0] = _mm256_permute2f128_ps(a, b, 0x20);
  s[1] = _mm256_permute2f128_ps(a, b, 0x31);
  s[2] = _mm256_permute2f128_ps(c, d, 0x20);
  s[3] = _mm256_permute2f128_ps(c, d, 0x31);
}

// Per row of the job: activation scale and block-sum scale. fp32 bits: 2^e and 2^(120−e), e
// bringing max|x| to [2^20, 2^21) where fp32 allows (e in [-6, 126]: both scales stay normal
// fp32). fp16 bits: 1 and 2^8.
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

RowScales row_scales(const LinearJob& job, bool half, std::vector<float>& store) {
  store.resize(2 * size_t(job.n));
  for (int r = 0; r < job.n; ++r) {
    if (half) {
      store[r] = 1.0f;
      store[job.n + r] = 256.0f;
      continue;
    }
    const float m = row_max_abs(static_cast<const float*>(job.rows[r]), job.K);
    // A zero, inf or NaN maximum: any scale serves (and ilogb's INT_MIN for 0 and NaN must not be negated).
    const int e = std::isfinite(m) && m > 0 ? std::clamp(20 - std::ilogb(m), -6, 126) : 0;
    store[r] = std::ldexp(1.0f, e);
    store[job.n + r] = std::ldexp(1.0f, 120 - e);
  }
  return {store.data(), store.data() + job.n};
}

template <bool kHalf>
struct Fp8 {
  template <int MR, int NP>
  struct Tile {
    static constexpr int kBlockIters = 8;  // 128-k blocks per K-block: ~33 KB of panel
    static int iterations(int K) { return (K + kFp8Block - 1) / kFp8Block; }
    // One k of the block: sum[r][q][·] += x·(act scale) · w. The fp16 decode tiles (NP > 1), and
    // every fp16 tile that streams its panels where `far` (tile_fetches), prefetch each panel's
    // stream one block ahead, a line per two k (`fetch`); past a stream's end the address lies
    // outside the weights, which a prefetch may name (it never faults).
    template <bool first, bool fetch>
    static inline void step(const float* const* x, int k, int kk, const __m256* act_scale, const uint8_t* const* B,
                            __m256i keep, bool far, __m256 (&sum)[MR][NP][4]) {
      __m256 a[MR];
      for (int r = 0; r < MR; ++r)
        a[r] = kHalf ? _mm256_broadcast_ss(x[r] + k) : _mm256_mul_ps(_mm256_broadcast_ss(x[r] + k), act_scale[r]);
#pragma GCC unroll 4
      for (int q = 0; q < NP; ++q) {
        const uint8_t* p = B[q] + kk * 32;
        if constexpr (kHalf && fetch) {
          if (NP > 1 || far) prefetch_ahead(p, kFp8BlockStride);
          if (far) prefetch_ahead_l2(p, kStreamFar);
        }
        __m256 w[4];
        if constexpr (kHalf) {
          decode_half<first>(p, keep, w);
        } else {
          decode_bits_pair<first, true>(p, keep, w[3], w[2]);
          decode_bits_pair<first, false>(p, keep, w[1], w[0]);
        }
        for (int r = 0; r < MR; ++r)
          for (int v = 0; v < 4; ++v) sum[r][q][v] = _mm256_fmadd_ps(a[r], w[v], sum[r][q][v]);
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
      // fp16: bit 14 (a sign copy) and bits 6..0 (the byte below) cleared; fp32: bits 26..0 kept
      // from bit 20 (the byte's bits 6..0), the sign.
      const __m256i keep = kHalf ? _mm256_set1_epi16(short(0xBF80)) : _mm256_set1_epi32(int(0x87F00000u));
      const bool far = tile_fetches(b0, b1, iterations(K));  // and 8 KB ahead into L2 (linear_avx2.h)
      for (int b = b0; b < b1; ++b) {
        const int k0 = b * kFp8Block, n = K - k0 < kFp8Block ? K - k0 : kFp8Block;
        __m256 sum[MR][NP][4];
        zero_tile(sum);
        const uint8_t* B[NP];
        for (int q = 0; q < NP; ++q) B[q] = fp8_block(P[q], b);
        step<true, true>(x, k0, 0, act_scale, B, keep, far, sum);
        int kk = 1;
#pragma GCC unroll 2
        for (; kk + 1 < n; kk += 2) {
          step<false, false>(x, k0 + kk, kk, act_scale, B, keep, far, sum);
          step<false, true>(x, k0 + kk + 1, kk + 1, act_scale, B, keep, far, sum);
        }
        if (kk < n) step<false, false>(x, k0 + kk, kk, act_scale, B, keep, far, sum);
        for (int r = 0; r < MR; ++r)
          for (int q = 0; q < NP; ++q) {
            if constexpr (kHalf) half_to_output_order(sum[r][q]);
            else bits_to_output_order(sum[r][q]);
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
};

template <bool kHalf>
void run_fp8(const LinearJob& job) {
  thread_local std::vector<float> scales;  // grows to the largest batch a thread has seen, then stays
  run_tiles<Fp8<kHalf>::template Tile, 2, 3>(job, row_scales(job, kHalf, scales));
}

// Nanoseconds per FMA of four independent chains 2^20 · w + s (best of 3 runs of 256), as the
// fp32-bits decode's FMAs are: products and sums normal, `w` perhaps not. The operands pass
// through volatiles so the compiler cannot fold the loop.
MOECAP_NOINLINE double fma_ns(float w) {
  volatile float vw = w, va = 1048576.0f;
  const __m256 m = _mm256_set1_ps(vw), a = _mm256_set1_ps(va);
  double best = 1e30;
  for (int run = 0; run < 3; ++run) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 256; ++i) {
      s0 = _mm256_fmadd_ps(a, m, s0);
      s1 = _mm256_fmadd_ps(a, m, s1);
      s2 = _mm256_fmadd_ps(a, m, s2);
      s3 = _mm256_fmadd_ps(a, m, s3);
    }
    const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
    alignas(32) float out[8];
    _mm256_store_ps(out, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    volatile float sink = out[0];
    (void)sink;
    best = std::min(best, ns / (4 * 256));
  }
  return best;
}

}  // namespace

bool fma_subnormals_slow() {
  // w = 2^-140 (an fp32 subnormal) against 2^-100: on a Xeon ~10 against 0.4 ns.
  static const bool slow = fma_ns(std::ldexp(1.0f, -140)) > 4 * fma_ns(std::ldexp(1.0f, -100)) + 1.0;
  return slow;
}

void linear_fp8_fp32_bits(const LinearJob& job) { run_fp8<false>(job); }
void linear_fp8_fp16_bits(const LinearJob& job) { run_fp8<true>(job); }
void linear_fp8(const LinearJob& job) {
  if (fma_subnormals_slow()) linear_fp8_fp16_bits(job);
  else linear_fp8_fp32_bits(job);
}

}  // namespace avx2
}  // namespace moecap
