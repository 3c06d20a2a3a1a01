// fp32 weights × fp32 activations, AVX-512 FMA.
#include "kernels/avx512/linear_avx512.h"
#include "kernels/avx512/tile_avx512.h"

namespace moecap {
namespace avx512 {
namespace {

template <int MR, int NP>
struct TileF32 {
  static constexpr size_t kBytesPerIter = 32 * 4;  // one k of the panel
  static constexpr int kBlockIters = 256;          // 32 KB of panel per K-block
  static int iterations(int K) { return K; }
  static void run(const LinearJob& job, int r0, int p, int ps, int k0, int k1, float* part, Prefetch pf) {
    const float* W[NP];
    for (int q = 0; q < NP; ++q) W[q] = reinterpret_cast<const float*>(job_panel(job, p + q * ps));
    const float* x[MR];
    for (int r = 0; r < MR; ++r) x[r] = static_cast<const float*>(job.rows[r0 + r]);
    __m512 acc[MR][NP][2];
    if (k0 == 0) {
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
        for (int q = 0; q < NP; ++q) acc[r][q][0] = acc[r][q][1] = _mm512_setzero_ps();
    } else {
      if constexpr (NP == 1) load_partial<MR, NP>(part, acc);
    }
    for (int k = k0; k < k1; ++k) {
      pf.step();
      __m512 b[NP][2];
#pragma GCC unroll 4
      for (int q = 0; q < NP; ++q) {
        prefetch_stream(W[q] + size_t(k) * 32);
        prefetch_stream(W[q] + size_t(k) * 32 + 16);
        b[q][0] = _mm512_load_ps(W[q] + size_t(k) * 32);
        b[q][1] = _mm512_load_ps(W[q] + size_t(k) * 32 + 16);
      }
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r) {
        __m512 a = _mm512_set1_ps(x[r][k]);
#pragma GCC unroll 4
        for (int q = 0; q < NP; ++q) {
          acc[r][q][0] = _mm512_fmadd_ps(a, b[q][0], acc[r][q][0]);
          acc[r][q][1] = _mm512_fmadd_ps(a, b[q][1], acc[r][q][1]);
        }
      }
    }
    if (k1 == job.K) store_tile<MR, NP>(job, r0, p, ps, acc);
    else if constexpr (NP == 1) store_partial<MR, NP>(part, acc);
  }
};

}  // namespace

void linear_f32(const LinearJob& job) { Driver<TileF32>::run(job); }

}  // namespace avx512
}  // namespace moecap
