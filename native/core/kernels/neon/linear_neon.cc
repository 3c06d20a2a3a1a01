// NEON fp32 kernel (FMA, tiles of up to 2 rows × one panel, 8 q-registers per row) and the NEON
// kernel table. Per element: acc = fma(x_k, w_k, acc) for k in order, whatever the tile shape, so
// a row alone equals it in a batch bit for bit. The int8/int4 activation quantiser stays the
// portable one (make_activation_row), so every ISA feeds the kernels bitwise the same rows.
#include "kernels/neon/linear_neon.h"

namespace moecap {
namespace neon {
namespace {

template <int MR>
void tile_f32(const LinearJob& job, int r0, int p) {
  const int K = job.K;
  const float* W = reinterpret_cast<const float*>(job_panel(job, p));
  const float* x[MR];
  for (int r = 0; r < MR; ++r) x[r] = static_cast<const float*>(job.rows[r0 + r]);
  float32x4_t acc[MR][8];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < 8; ++v) acc[r][v] = vdupq_n_f32(0.0f);
  for (int k = 0; k < K; ++k) {
    const float* w = W + size_t(k) * 32;
    float32x4_t b[8];
    for (int v = 0; v < 8; ++v) b[v] = vld1q_f32(w + 4 * v);
    for (int r = 0; r < MR; ++r) {
      const float32x4_t a = vdupq_n_f32(x[r][k]);
      for (int v = 0; v < 8; ++v) acc[r][v] = vfmaq_f32(acc[r][v], a, b[v]);
    }
  }
  store_tile<MR>(job, r0, p, acc);
}

}  // namespace

void linear_f32(const LinearJob& job) { for_row_tiles<2, tile_f32<2>, tile_f32<1>>(job); }

}  // namespace neon

// One table whose entries follow the optional features: bfdot where the CPU has FEAT_BF16; smmla
// where it has FEAT_I8MM (with FEAT_DotProd), else sdot where it has FEAT_DotProd; the baseline
// kernels otherwise. All int8/int4/mxfp4 variants give the same bits (exact integer block dots);
// fp8 has one kernel (fp32 FMA, no optional feature helps it).
const KernelTable& neon_kernels() {
  static const bool mmla = cpu_has_neon_i8mm() && cpu_has_neon_dotprod(), dot = cpu_has_neon_dotprod();
  static const KernelTable t = {"neon",
                                {neon::linear_f32, cpu_has_neon_bf16() ? neon::linear_bf16_bfdot : neon::linear_bf16,
                                 mmla  ? neon::linear_int8_i8mm
                                 : dot ? neon::linear_int8_dotprod
                                       : neon::linear_int8,
                                 mmla  ? neon::linear_int4_i8mm
                                 : dot ? neon::linear_int4_dotprod
                                       : neon::linear_int4,
                                 mmla  ? neon::linear_mxfp4_i8mm
                                 : dot ? neon::linear_mxfp4_dotprod
                                       : neon::linear_mxfp4,
                                 neon::linear_fp8},
                                generic_kernels().quant_row};
  return t;
}

}  // namespace moecap
