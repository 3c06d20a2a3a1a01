// The int8/int4/mxfp4 tile shared by the widening (any arm64) and the sdot (FEAT_DotProd) kernels;
// they differ only in how one k-quad of products enters the integer block dot (the `Dot` policy
// each translation unit defines). The integer block dot Σ q_w·q_x is exact either way:
//   int8: weights stored u8 = q + 128 become s8 q by xor 0x80;
//   int4: the nibble u = q + 8 ∈ [0, 15] is used as s8 directly, then dot = Σ u·x_q − 8·Σx_q;
//   mxfp4: the nibble (E2M1 code) becomes the signed 2·value ∈ [−12, 12] by one tbl lookup
//          (numeric.h e2m1_twice), so dot = Σ 2·value·x_q needs no offset (the portable kernel's
//          Σ (2·value + 12)·x_q − 12·Σx_q is the same integer); scale_w = 2^(e−128) is built in
//          the fp32 exponent bits (numeric.h e8m0_half), exact for the subnormal e = 0, 1 too.
// Then, per block in block order, the portable kernel's fp32 arithmetic exactly (mul, mul, add;
// these TUs are built with -ffp-contract=off so they are not fused):
//   acc += float(dot) · (scale_w · scale_x)
// so the outputs match generic/linear_generic.cc bit for bit, and each element's operations are
// the same whatever the tile shape (a row alone equals it in a batch).
// Panel layout (quant_panel_layout.h): a k-quad of int8 is 32 lanes × 4 bytes (8 q-registers,
// lanes 4v..4v+3 in register v); of int4 and mxfp4, 16 lanes × 4 bytes with lanes l and l+16
// sharing a byte (low, high nibble), so register g holds lanes 4g.. (low) and 16+4g.. (high).
#pragma once
#include "kernels/neon/linear_neon.h"
#include "kernels/quant_panel_layout.h"
#include "kernels/quant_row_layout.h"

namespace moecap {
namespace neon {
namespace {

static inline int8x16_t broadcast_quad(const int8_t* q) {
  int32_t v;
  __builtin_memcpy(&v, q, 4);
  return vreinterpretq_s8_s32(vdupq_n_s32(v));
}

// acc[v] += float(dot[v]) · (sw[v] · sx), as the portable kernel rounds it.
static inline void scale_block(float32x4_t acc[8], const int32x4_t dot[8], const float32x4_t sw[8], float scale_x) {
  const float32x4_t sx = vdupq_n_f32(scale_x);
  for (int v = 0; v < 8; ++v) acc[v] = vaddq_f32(acc[v], vmulq_f32(vcvtq_f32_s32(dot[v]), vmulq_f32(sw[v], sx)));
}

// E8M0 bytes e → 2^(e−128) in the exponent bits: (e−1) << 23 for e ≥ 2, the subnormals
// 0x200000 << e for e = 0, 1 (numeric.h e8m0_half).
static inline float32x4_t e8m0_half4(uint16x4_t e16) {
  const uint32x4_t e = vmovl_u16(e16), one = vdupq_n_u32(1);
  const uint32x4_t normal = vshlq_n_u32(vsubq_u32(e, one), 23);
  const uint32x4_t tiny = vshlq_u32(vdupq_n_u32(0x200000u), vreinterpretq_s32_u32(e));
  return vreinterpretq_f32_u32(vbslq_u32(vcgtq_u32(e, one), normal, tiny));
}

// The 32 lanes' weight scales of block b: fp16 (int8, int4) or E8M0 (mxfp4).
template <QuantFormat F>
static inline void load_scales(const uint8_t* P, int b, float32x4_t sw[8]) {
  if (F == QuantFormat::Mx4) {
    const uint8_t* s = mx4_block_scales(P, b);
    for (int h = 0; h < 2; ++h) {
      const uint8x16_t e = vld1q_u8(s + 16 * h);
      const uint16x8_t lo = vmovl_u8(vget_low_u8(e)), hi = vmovl_high_u8(e);
      sw[4 * h] = e8m0_half4(vget_low_u16(lo));
      sw[4 * h + 1] = e8m0_half4(vget_high_u16(lo));
      sw[4 * h + 2] = e8m0_half4(vget_low_u16(hi));
      sw[4 * h + 3] = e8m0_half4(vget_high_u16(hi));
    }
    return;
  }
  const uint16_t* s = quant_block_scales(P, F == QuantFormat::Int4, b);
  for (int v = 0; v < 8; ++v) sw[v] = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(s + 4 * v)));
}

template <QuantFormat F>
static inline const uint8_t* block_values(const uint8_t* P, int b) {
  return F == QuantFormat::Mx4 ? mx4_block(P, b) : quant_block(P, F == QuantFormat::Int4, b);
}

// What comes off the block dot: 8·Σx_q for int4 (u = q + 8), nothing for int8 and mxfp4.
template <QuantFormat F>
static inline int32x4_t block_offset(const QuantRowPtrs& x, int b) {
  return vdupq_n_s32(F == QuantFormat::Int4 ? 8 * x.sum[b] : 0);
}

// The 8 weight registers of k-quad j of a block, as s8 (lanes 4v..4v+3 in register v).
template <QuantFormat F>
static inline void load_quad(const uint8_t* blk, int j, int8x16_t w[8]) {
  if (F != QuantFormat::Int8) {
    const uint8x16_t nib = vdupq_n_u8(0x0F);
    // E2M1 code → 2·value (numeric.h e2m1_twice): 0 1 2 3 4 6 8 12, then the negatives.
    static const int8_t kTwice[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
    const int8x16_t lut = vld1q_s8(kTwice);
    for (int g = 0; g < 4; ++g) {
      const uint8x16_t raw = vld1q_u8(blk + j * 64 + g * 16);
      const uint8x16_t lo = vandq_u8(raw, nib), hi = vshrq_n_u8(raw, 4);
      if (F == QuantFormat::Mx4) {
        w[g] = vqtbl1q_s8(lut, lo);
        w[4 + g] = vqtbl1q_s8(lut, hi);
      } else {
        w[g] = vreinterpretq_s8_u8(lo);
        w[4 + g] = vreinterpretq_s8_u8(hi);
      }
    }
  } else {
    const uint8x16_t flip = vdupq_n_u8(0x80);
    for (int v = 0; v < 8; ++v) w[v] = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(blk + j * 128 + v * 16), flip));
  }
}

// The Dot policies: how a k-quad of products (register w: lanes 4v..4v+3 × 4 inputs, x: the row's
// 4 inputs broadcast) enters the block dot. Widening (any arm64): smull/smull2 (s8 × s8 → s16, at
// most 127·127 in magnitude), accumulated pairwise into s32 (sadalp): lo holds lanes 0,1 as
// (k0+k1, k2+k3) pairs, hi lanes 2,3; addp folds them at the end of the block.
struct WideningDot {
  static inline void quad(int32x4_t& lo, int32x4_t& hi, int8x16_t w, int8x16_t x) {
    lo = vpadalq_s16(lo, vmull_s8(vget_low_s8(w), vget_low_s8(x)));
    hi = vpadalq_s16(hi, vmull_high_s8(w, x));
  }
  static inline int32x4_t finish(int32x4_t lo, int32x4_t hi) { return vpaddq_s32(lo, hi); }
};

#if defined(__ARM_FEATURE_DOTPROD)
// sdot (only in the TUs built with +dotprod): one instruction per register and k-quad.
struct SdotDot {
  static inline void quad(int32x4_t& lo, int32x4_t&, int8x16_t w, int8x16_t x) { lo = vdotq_s32(lo, w, x); }
  static inline int32x4_t finish(int32x4_t lo, int32x4_t) { return lo; }
};
#endif

// Dot: struct { static void quad(int32x4_t& lo, int32x4_t& hi, int8x16_t w, int8x16_t x);
//               static int32x4_t finish(int32x4_t lo, int32x4_t hi); } — lanes 4v..4v+3.
template <QuantFormat F, class Dot, int MR>
void tile_quant(const LinearJob& job, int r0, int p) {
  const int nb = (job.K + 31) / 32;
  const uint8_t* P = job_panel(job, p);
  QuantRowPtrs x[MR];
  for (int r = 0; r < MR; ++r) x[r] = quant_row_ptrs(job.rows[r0 + r], nb);
  float32x4_t acc[MR][8];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < 8; ++v) acc[r][v] = vdupq_n_f32(0.0f);
  for (int b = 0; b < nb; ++b) {
    const uint8_t* blk = block_values<F>(P, b);
    int32x4_t lo[MR][8], hi[MR][8];
    for (int r = 0; r < MR; ++r)
      for (int v = 0; v < 8; ++v) lo[r][v] = hi[r][v] = vdupq_n_s32(0);
    for (int j = 0; j < 8; ++j) {
      int8x16_t w[8];
      load_quad<F>(blk, j, w);
      for (int r = 0; r < MR; ++r) {
        const int8x16_t xs = broadcast_quad(x[r].q + b * 32 + j * 4);
        for (int v = 0; v < 8; ++v) Dot::quad(lo[r][v], hi[r][v], w[v], xs);
      }
    }
    float32x4_t sw[8];
    load_scales<F>(P, b, sw);
    for (int r = 0; r < MR; ++r) {
      const int32x4_t off = block_offset<F>(x[r], b);
      int32x4_t dot[8];
      for (int v = 0; v < 8; ++v) dot[v] = vsubq_s32(Dot::finish(lo[r][v], hi[r][v]), off);
      scale_block(acc[r], dot, sw, x[r].scale[b]);
    }
  }
  store_tile<MR>(job, r0, p, acc);
}

}  // namespace
}  // namespace neon
}  // namespace moecap
