// bf16 weights × bf16 activation rows on AVX2 + FMA (no bf16 dot product at this ISA level).
// A panel k-pair is [32 lanes][2] uint16: each 32-bit word holds lane l's (k even, k odd) pair,
// so one ymm load is 8 lanes and the two fp32 weights are exact bit operations on it:
// even = word << 16, odd = word & 0xFFFF0000. The activation row (uint16, bf16) is widened to
// fp32 a chunk at a time into a stack buffer, so each broadcast is a plain load.
//
// Per element: acc = fma(x_odd, w_odd, acc); acc = fma(x_even, w_even, acc) for k-pair after
// k-pair. A product of two bf16 values is exact in fp32, so this is bit for bit the portable
// kernel's (acc + x1·w1) + x0·w0, whatever the tile shape (a row alone equals it in a batch).
// Tiles that stream their panels fetch both lines of each k-pair ahead where prefetcht1 skips L1
// (tile_fetches, linear_avx2.h).
#include <immintrin.h>

#include "kernels/avx2/linear_avx2.h"

namespace moecap {
namespace avx2 {
namespace {

constexpr int kChunk = 256;  // k-pairs of activations widened per pass (2 KB per row)

template <int MR, int NP>
struct TileBf16 {
  static constexpr int kBlockIters = 256;  // k-pairs per K-block: 32 KB of panel
  static int iterations(int K) { return (K + 1) / 2; }
  static void run(const LinearJob& job, int r0, int p, int ps, int i0, int i1, float* part) {
    const uint16_t* W[NP];
    for (int q = 0; q < NP; ++q) W[q] = reinterpret_cast<const uint16_t*>(job_panel(job, p + q * ps));
    const uint16_t* x[MR];
    for (int r = 0; r < MR; ++r) x[r] = static_cast<const uint16_t*>(job.rows[r0 + r]);
    alignas(32) float xf[MR][2 * kChunk];
    const __m256i hi = _mm256_set1_epi32(int(0xFFFF0000u));
    const bool fetch = tile_fetches(i0, i1, iterations(job.K));
    __m256 acc[MR][NP][4];
    begin_tile(i0, part, acc);
    for (int c0 = i0; c0 < i1; c0 += kChunk) {
      const int n2 = i1 - c0 < kChunk ? i1 - c0 : kChunk;
      for (int r = 0; r < MR; ++r) {
        const uint16_t* xs = x[r] + 2 * size_t(c0);
        uint32_t* d = reinterpret_cast<uint32_t*>(xf[r]);
        for (int i = 0; i < 2 * n2; ++i) d[i] = uint32_t(xs[i]) << 16;
      }
      for (int i = 0; i < n2; ++i) {
        __m256 a_odd[MR], a_even[MR];
        for (int r = 0; r < MR; ++r) {
          a_odd[r] = _mm256_broadcast_ss(&xf[r][2 * i + 1]);
          a_even[r] = _mm256_broadcast_ss(&xf[r][2 * i]);
        }
#pragma GCC unroll 4
        for (int q = 0; q < NP; ++q) {
          const uint16_t* w = W[q] + size_t(c0 + i) * 64;
          if (fetch) prefetch_k_step(w);
          for (int v = 0; v < 4; ++v) {
            const __m256i raw = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + 16 * v));
            const __m256 odd = _mm256_castsi256_ps(_mm256_and_si256(raw, hi));
            const __m256 even = _mm256_castsi256_ps(_mm256_slli_epi32(raw, 16));
            for (int r = 0; r < MR; ++r) {
              acc[r][q][v] = _mm256_fmadd_ps(a_odd[r], odd, acc[r][q][v]);
              acc[r][q][v] = _mm256_fmadd_ps(a_even[r], even, acc[r][q][v]);
            }
          }
        }
      }
    }
    end_tile(job, r0, p, ps, i1 == iterations(job.K), part, acc);
  }
};

}  // namespace

void linear_bf16(const LinearJob& job) { run_tiles<TileBf16, 2, 3>(job); }

}  // namespace avx2
}  // namespace moecap
