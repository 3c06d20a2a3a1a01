// fp8 (E4M3, fp32 scale per lane and 128 inputs) × fp32 activations on any arm64. Decode per 8
// weights: sshll #7 (sign-extend to 16 bits and shift in one) and a mask give the fp16 bits of
// value·2^-8 (exact, subnormals included: weights/numeric.h e4m3_f16_scaled), fcvtl gives fp32,
// then FMA against the broadcast activation; 2^8 is folded into the block scale. The decode of a
// k-step (32 weights) is shared by the tile's rows.
// Per block of 128: part = Σ x·w (fp32 FMA chain in input order), acc = fma(part, scale · 2^8, acc),
// as the x86 kernels do; the same operations for every element whatever the tile shape, so a row
// alone equals it in a batch. Tiles: 2 rows × one panel (8 q-registers of block sums per row).
#include "kernels/neon/linear_neon.h"
#include "kernels/quant_panel_layout.h"

namespace moecap {
namespace neon {
namespace {

// 16 E4M3 bytes → 4 q-registers of fp32 (value·2^-8), lanes 0..15 in order.
static inline void decode16(const uint8_t* p, int16x8_t keep, float32x4_t w[4]) {
  const int8x16_t b = vreinterpretq_s8_u8(vld1q_u8(p));
  // fp16 bits = (sign-extended byte << 7) with bit 14 (a sign copy) cleared.
  const float16x8_t lo = vreinterpretq_f16_s16(vandq_s16(vshll_n_s8(vget_low_s8(b), 7), keep));
  const float16x8_t hi = vreinterpretq_f16_s16(vandq_s16(vshll_high_n_s8(b, 7), keep));
  w[0] = vcvt_f32_f16(vget_low_f16(lo));
  w[1] = vcvt_high_f32_f16(lo);
  w[2] = vcvt_f32_f16(vget_low_f16(hi));
  w[3] = vcvt_high_f32_f16(hi);
}

template <int MR>
void tile_fp8(const LinearJob& job, int r0, int p) {
  const int K = job.K, nb = (K + kFp8Block - 1) / kFp8Block;
  const uint8_t* P = job_panel(job, p);
  const float* x[MR];
  for (int r = 0; r < MR; ++r) x[r] = static_cast<const float*>(job.rows[r0 + r]);
  const int16x8_t keep = vdupq_n_s16(int16_t(0xBF80));
  float32x4_t acc[MR][8];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < 8; ++v) acc[r][v] = vdupq_n_f32(0.0f);
  for (int b = 0; b < nb; ++b) {
    const int k0 = b * kFp8Block, n = K - k0 < kFp8Block ? K - k0 : kFp8Block;
    const uint8_t* blk = fp8_block(P, b);
    float32x4_t sum[MR][8];
    for (int r = 0; r < MR; ++r)
      for (int v = 0; v < 8; ++v) sum[r][v] = vdupq_n_f32(0.0f);
    for (int kk = 0; kk < n; ++kk) {
      float32x4_t w[8];
      decode16(blk + kk * 32, keep, w);
      decode16(blk + kk * 32 + 16, keep, w + 4);
      for (int r = 0; r < MR; ++r) {
        const float32x4_t a = vdupq_n_f32(x[r][k0 + kk]);
        for (int v = 0; v < 8; ++v) sum[r][v] = vfmaq_f32(sum[r][v], a, w[v]);
      }
    }
    const float* S = fp8_block_scales(P, b);
    for (int v = 0; v < 8; ++v) {
      const float32x4_t s = vmulq_n_f32(vld1q_f32(S + 4 * v), 256.0f);
      for (int r = 0; r < MR; ++r) acc[r][v] = vfmaq_f32(acc[r][v], sum[r][v], s);
    }
  }
  store_tile<MR>(job, r0, p, acc);
}

}  // namespace

void linear_fp8(const LinearJob& job) { for_row_tiles<2, tile_fp8<2>, tile_fp8<1>>(job); }

}  // namespace neon
}  // namespace moecap
