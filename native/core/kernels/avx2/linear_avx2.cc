// AVX2 + FMA + F16C kernels, for CPUs without AVX-512 and for AVX-512 CPUs without BF16/VNNI
// (cpu_has_avx512() requires both): fp32 here, tiles of up to 3 rows × one panel (4 ymm per
// row); bf16 in linear_avx2_bf16.cc (widened to fp32, FMA); int8, int4 and mxfp4 in
// linear_avx2_quant.cc (vpmaddubsw + vpmaddwd, exact integer block dots); fp8 in
// linear_avx2_fp8.cc (fp16 bit move, vcvtph2ps, FMA). The int8/int4/mxfp4 activation quantiser stays the portable one
// (make_activation_row), so every ISA feeds the kernels bitwise the same rows.
#include <immintrin.h>

#include "kernels/avx2/linear_avx2.h"

namespace moecap {
namespace avx2 {
namespace {

template <int MR>
void tile_f32(const LinearJob& job, int r0, int p) {
  const int K = job.K;
  const float* W = reinterpret_cast<const float*>(job_panel(job, p));
  const float* x[MR];
  for (int r = 0; r < MR; ++r) x[r] = static_cast<const float*>(job.rows[r0 + r]);
  __m256 acc[MR][4];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < 4; ++v) acc[r][v] = _mm256_setzero_ps();
  for (int k = 0; k < K; ++k) {
    const float* w = W + size_t(k) * 32;
    __m256 b0 = _mm256_load_ps(w), b1 = _mm256_load_ps(w + 8), b2 = _mm256_load_ps(w + 16), b3 = _mm256_load_ps(w + 24);
#pragma GCC unroll 3
    for (int r = 0; r < MR; ++r) {
      __m256 a = _mm256_broadcast_ss(x[r] + k);
      acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
      acc[r][2] = _mm256_fmadd_ps(a, b2, acc[r][2]);
      acc[r][3] = _mm256_fmadd_ps(a, b3, acc[r][3]);
    }
  }
  store_tile<MR>(job, r0, p, acc);
}

}  // namespace

void linear_f32(const LinearJob& job) {
  for (int p = job.p0; p < job.p1; ++p) {
    int r = 0;
    for (; r + 3 <= job.n; r += 3) tile_f32<3>(job, r, p);
    if (job.n - r == 2) tile_f32<2>(job, r, p);
    else if (job.n - r == 1) tile_f32<1>(job, r, p);
  }
}

}  // namespace avx2

const KernelTable& avx2_kernels() {
  static const KernelTable t = {
      "avx2",
      {avx2::linear_f32, avx2::linear_bf16, avx2::linear_int8, avx2::linear_int4, avx2::linear_mxfp4, avx2::linear_fp8},
      generic_kernels().quant_row};
  return t;
}

}  // namespace moecap
