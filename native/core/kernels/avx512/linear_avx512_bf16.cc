// bf16 weights × bf16 activations, AVX-512 BF16: vdpbf16ps multiplies a k-pair of the panel
// ([K/2][32][2], two zmm per k-pair) by the broadcast k-pair of an activation row and adds both
// products into fp32 — 64 flops per instruction, twice the fp32 FMA's, on half the bytes.
#include "kernels/avx512/linear_avx512.h"
#include "kernels/avx512/tile_avx512.h"
#include "kernels/x86_compiler.h"

namespace moecap {
namespace avx512 {
namespace {

template <int MR, int NP>
struct TileBF16 {
  static constexpr size_t kBytesPerIter = 32 * 2 * 2;  // one k-pair of the panel
  static constexpr int kBlockIters = 256;              // 32 KB of panel per K-block
  static int iterations(int K) { return (K + 1) / 2; }
  static void run(const LinearJob& job, int r0, int p, int ps, int k20, int k21, float* part, Prefetch pf) {
    const int K2 = (job.K + 1) / 2;
    const uint16_t* W[NP];
    for (int q = 0; q < NP; ++q) W[q] = reinterpret_cast<const uint16_t*>(job_panel(job, p + q * ps));
    const int* x[MR];  // k-pairs of bf16 read as one 32-bit word
    for (int r = 0; r < MR; ++r) x[r] = static_cast<const int*>(job.rows[r0 + r]);
    __m512 acc[MR][NP][2];
    if (k20 == 0) {
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
        for (int q = 0; q < NP; ++q) acc[r][q][0] = acc[r][q][1] = _mm512_setzero_ps();
    } else {
      if constexpr (NP == 1) load_partial<MR, NP>(part, acc);
    }
    for (int k2 = k20; k2 < k21; ++k2) {
      pf.step();
      __m512bh b[NP][2];
#pragma GCC unroll 4
      for (int q = 0; q < NP; ++q) {
        prefetch_stream(W[q] + size_t(k2) * 64);
        prefetch_stream(W[q] + size_t(k2) * 64 + 32);
        b[q][0] = MOECAP_AS_BF16_PAIRS(_mm512_load_si512(W[q] + size_t(k2) * 64));
        b[q][1] = MOECAP_AS_BF16_PAIRS(_mm512_load_si512(W[q] + size_t(k2) * 64 + 32));
      }
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r) {
        __m512bh a = MOECAP_AS_BF16_PAIRS(_mm512_set1_epi32(x[r][k2]));
#pragma GCC unroll 4
        for (int q = 0; q < NP; ++q) {
          acc[r][q][0] = _mm512_dpbf16_ps(acc[r][q][0], a, b[q][0]);
          acc[r][q][1] = _mm512_dpbf16_ps(acc[r][q][1], a, b[q][1]);
        }
      }
    }
    if (k21 == K2) store_tile<MR, NP>(job, r0, p, ps, acc);
    else if constexpr (NP == 1) store_partial<MR, NP>(part, acc);
  }
};

}  // namespace

void linear_bf16(const LinearJob& job) { Driver<TileBF16>::run(job); }

}  // namespace avx512
}  // namespace moecap
