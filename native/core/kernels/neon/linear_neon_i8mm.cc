// int8, int4 and mxfp4 weights × int8-quantised activation rows with smmla (FEAT_I8MM; this TU alone is
// built with +i8mm+dotprod, and runs only where the CPU has both): pairs of rows in one
// instruction. smmla multiplies a 2×8 block of activations (two rows, 8 inputs) by an 8×2 block
// of weights (two lanes) into the 2×2 int32 block, so a k-octet (two k-quads of the panel) is
// zipped lane-wise into [lane l: k0..7 | lane l+1: k0..7] operands once and serves both rows;
// a row left over runs the sdot tile. The integer block dots are exact, so the outputs are bit
// for bit those of the sdot, widening and portable kernels (and a row alone equals it in a batch).
#include "kernels/neon/quant_tile_neon.h"

namespace moecap {
namespace neon {
namespace {

template <QuantFormat F>
void tile_quant_mmla(const LinearJob& job, int r0, int p) {
  const int nb = (job.K + 31) / 32;
  const uint8_t* P = job_panel(job, p);
  const QuantRowPtrs x0 = quant_row_ptrs(job.rows[r0], nb), x1 = quant_row_ptrs(job.rows[r0 + 1], nb);
  float32x4_t acc[2][8];
  for (int r = 0; r < 2; ++r)
    for (int v = 0; v < 8; ++v) acc[r][v] = vdupq_n_f32(0.0f);
  for (int b = 0; b < nb; ++b) {
    const uint8_t* blk = block_values<F>(P, b);
    // c[v][h]: [row0·lane a, row0·lane b, row1·lane a, row1·lane b] for lanes (4v+2h, 4v+2h+1).
    int32x4_t c[8][2];
    for (int v = 0; v < 8; ++v) c[v][0] = c[v][1] = vdupq_n_s32(0);
    for (int o = 0; o < 4; ++o) {
      int8x16_t w0[8], w1[8];
      load_quad<F>(blk, 2 * o, w0);
      load_quad<F>(blk, 2 * o + 1, w1);
      const int8x16_t a = vcombine_s8(vld1_s8(x0.q + b * 32 + 8 * o), vld1_s8(x1.q + b * 32 + 8 * o));
      for (int v = 0; v < 8; ++v) {
        const int32x4_t q0 = vreinterpretq_s32_s8(w0[v]), q1 = vreinterpretq_s32_s8(w1[v]);
        c[v][0] = vmmlaq_s32(c[v][0], a, vreinterpretq_s8_s32(vzip1q_s32(q0, q1)));
        c[v][1] = vmmlaq_s32(c[v][1], a, vreinterpretq_s8_s32(vzip2q_s32(q0, q1)));
      }
    }
    float32x4_t sw[8];
    load_scales<F>(P, b, sw);
    int32x4_t dot[2][8];
    const int32x4_t off0 = block_offset<F>(x0, b), off1 = block_offset<F>(x1, b);
    for (int v = 0; v < 8; ++v) {
      const int64x2_t lo = vreinterpretq_s64_s32(c[v][0]), hi = vreinterpretq_s64_s32(c[v][1]);
      dot[0][v] = vsubq_s32(vreinterpretq_s32_s64(vzip1q_s64(lo, hi)), off0);
      dot[1][v] = vsubq_s32(vreinterpretq_s32_s64(vzip2q_s64(lo, hi)), off1);
    }
    scale_block(acc[0], dot[0], sw, x0.scale[b]);
    scale_block(acc[1], dot[1], sw, x1.scale[b]);
  }
  store_tile<2>(job, r0, p, acc);
}

}  // namespace

void linear_int8_i8mm(const LinearJob& job) {
  for_row_tiles<2, tile_quant_mmla<QuantFormat::Int8>, tile_quant<QuantFormat::Int8, SdotDot, 1>>(job);
}
void linear_int4_i8mm(const LinearJob& job) {
  for_row_tiles<2, tile_quant_mmla<QuantFormat::Int4>, tile_quant<QuantFormat::Int4, SdotDot, 1>>(job);
}
void linear_mxfp4_i8mm(const LinearJob& job) {
  for_row_tiles<2, tile_quant_mmla<QuantFormat::Mx4>, tile_quant<QuantFormat::Mx4, SdotDot, 1>>(job);
}

}  // namespace neon
}  // namespace moecap
