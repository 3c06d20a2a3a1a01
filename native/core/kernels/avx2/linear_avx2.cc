// AVX2 + FMA + F16C kernels, for CPUs without AVX-512 and for AVX-512 CPUs without BF16/VNNI
// (cpu_has_avx512() requires both): fp32 here, tiles of up to 3 rows × one panel, or one row ×
// 3 panels for decode (4 ymm per row and panel; run_tiles in linear_avx2.h); bf16 in linear_avx2_bf16.cc (widened to
// fp32, FMA); int8, int4 and mxfp4 in linear_avx2_quant.cc (vpmaddubsw + vpmaddwd, exact integer block dots); fp8 in
// linear_avx2_fp8.cc (bit moves to fp32, or to fp16 then vcvtph2ps where FMAs take assists on subnormals; FMA). The
// int8/int4/mxfp4 activation quantiser stays the portable one (make_activation_row), so every ISA feeds the kernels
// bitwise the same rows.
#include <immintrin.h>

#include "kernels/avx2/linear_avx2.h"

namespace moecap {
namespace avx2 {
namespace {

// fp32 panels: per input k, 32 weights (4 ymm) per panel, one FMA each against the broadcast input.
// Tiles that stream their panels fetch both lines of each k ahead where prefetcht1 skips L1
// (tile_fetches, linear_avx2.h).
template <int MR, int NP>
struct TileF32 {
  static constexpr int kBlockIters = 256;  // k per K-block: 32 KB of panel
  static int iterations(int K) { return K; }
  static void run(const LinearJob& job, int r0, int p, int ps, int k0, int k1, float* part) {
    const float* W[NP];
    for (int q = 0; q < NP; ++q) W[q] = reinterpret_cast<const float*>(job_panel(job, p + q * ps));
    const float* x[MR];
    for (int r = 0; r < MR; ++r) x[r] = static_cast<const float*>(job.rows[r0 + r]);
    const bool fetch = tile_fetches(k0, k1, job.K);
    __m256 acc[MR][NP][4];
    begin_tile(k0, part, acc);
    for (int k = k0; k < k1; ++k) {
      __m256 a[MR];
      for (int r = 0; r < MR; ++r) a[r] = _mm256_broadcast_ss(x[r] + k);
#pragma GCC unroll 4
      for (int q = 0; q < NP; ++q) {
        const float* w = W[q] + size_t(k) * 32;
        if (fetch) prefetch_k_step(w);
        for (int v = 0; v < 4; ++v) {
          const __m256 b = _mm256_load_ps(w + 8 * v);
          for (int r = 0; r < MR; ++r) acc[r][q][v] = _mm256_fmadd_ps(a[r], b, acc[r][q][v]);
        }
      }
    }
    end_tile(job, r0, p, ps, k1 == job.K, part, acc);
  }
};

}  // namespace

void linear_f32(const LinearJob& job) { run_tiles<TileF32, 3, 3>(job); }

}  // namespace avx2

const KernelTable& avx2_kernels() {
  static const KernelTable t = {
      "avx2",
      {avx2::linear_f32, avx2::linear_bf16, avx2::linear_int8, avx2::linear_int4, avx2::linear_mxfp4, avx2::linear_fp8},
      generic_kernels().quant_row};
  return t;
}

}  // namespace moecap
