// bf16 weights × bf16 activation rows on any arm64, widened to fp32 (the CPUs without bfdot). A
// panel k-pair is [32 lanes][2] uint16: each 32-bit word holds lane l's (k even, k odd) pair, so
// the two fp32 weights are exact bit operations on it: even = word << 16, odd = word & 0xFFFF0000.
// Per element: acc = fma(x_odd, w_odd, acc); acc = fma(x_even, w_even, acc), k-pair after k-pair.
// A product of two bf16 values is exact in fp32, so this is bit for bit the portable kernel's
// (acc + x1·w1) + x0·w0 whatever the tile shape (a row alone equals it in a batch).
#include "kernels/neon/linear_neon.h"

namespace moecap {
namespace neon {
namespace {

template <int MR>
void tile_bf16(const LinearJob& job, int r0, int p) {
  const int K2 = (job.K + 1) / 2;
  const uint32_t* W = reinterpret_cast<const uint32_t*>(job_panel(job, p));
  const uint32_t* x[MR];
  for (int r = 0; r < MR; ++r) x[r] = static_cast<const uint32_t*>(job.rows[r0 + r]);
  const uint32x4_t hi = vdupq_n_u32(0xFFFF0000u);
  float32x4_t acc[MR][8];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < 8; ++v) acc[r][v] = vdupq_n_f32(0.0f);
  for (int i = 0; i < K2; ++i) {
    const uint32_t* w = W + size_t(i) * 32;
    uint32x4_t raw[8];
    for (int v = 0; v < 8; ++v) raw[v] = vld1q_u32(w + 4 * v);
    for (int r = 0; r < MR; ++r) {
      uint32_t pair;
      __builtin_memcpy(&pair, x[r] + i, 4);
      const float32x4_t x_odd = vreinterpretq_f32_u32(vdupq_n_u32(pair & 0xFFFF0000u));
      const float32x4_t x_even = vreinterpretq_f32_u32(vdupq_n_u32(pair << 16));
      for (int v = 0; v < 8; ++v) {
        acc[r][v] = vfmaq_f32(acc[r][v], x_odd, vreinterpretq_f32_u32(vandq_u32(raw[v], hi)));
        acc[r][v] = vfmaq_f32(acc[r][v], x_even, vreinterpretq_f32_u32(vshlq_n_u32(raw[v], 16)));
      }
    }
  }
  store_tile<MR>(job, r0, p, acc);
}

}  // namespace

void linear_bf16(const LinearJob& job) { for_row_tiles<2, tile_bf16<2>, tile_bf16<1>>(job); }

}  // namespace neon
}  // namespace moecap
