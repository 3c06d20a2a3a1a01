// bf16 weights × bf16 activation rows with bfdot (FEAT_BF16; this TU alone is built with +bf16).
// Each 32-bit word of a panel k-pair is lane l's (k even, k odd) pair, exactly bfdot's operand
// layout, and the activation pair is broadcast as one word: per element, per k-pair in order,
// acc = bfdot(acc, x pair, w pair). bfdot rounds as the architecture defines it (not the fp32
// fma chain of the widening kernel), so its outputs differ from the other ISAs in the last bits;
// each element's operations are the same whatever the tile shape (a row alone equals it in a
// batch bit for bit).
#include "kernels/neon/linear_neon.h"

namespace moecap {
namespace neon {
namespace {

template <int MR>
void tile_bf16_bfdot(const LinearJob& job, int r0, int p) {
  const int K2 = (job.K + 1) / 2;
  const uint32_t* W = reinterpret_cast<const uint32_t*>(job_panel(job, p));
  const uint32_t* x[MR];
  for (int r = 0; r < MR; ++r) x[r] = static_cast<const uint32_t*>(job.rows[r0 + r]);
  float32x4_t acc[MR][8];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < 8; ++v) acc[r][v] = vdupq_n_f32(0.0f);
  for (int i = 0; i < K2; ++i) {
    const uint32_t* w = W + size_t(i) * 32;
    bfloat16x8_t b[8];
    for (int v = 0; v < 8; ++v) b[v] = vreinterpretq_bf16_u32(vld1q_u32(w + 4 * v));
    for (int r = 0; r < MR; ++r) {
      uint32_t pair;
      __builtin_memcpy(&pair, x[r] + i, 4);
      const bfloat16x8_t a = vreinterpretq_bf16_u32(vdupq_n_u32(pair));
      for (int v = 0; v < 8; ++v) acc[r][v] = vbfdotq_f32(acc[r][v], a, b[v]);
    }
  }
  store_tile<MR>(job, r0, p, acc);
}

}  // namespace

void linear_bf16_bfdot(const LinearJob& job) { for_row_tiles<2, tile_bf16_bfdot<2>, tile_bf16_bfdot<1>>(job); }

}  // namespace neon
}  // namespace moecap
