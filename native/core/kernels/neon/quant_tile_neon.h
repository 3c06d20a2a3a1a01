// The int8/int4 tile shared by the widening (any arm64) and the sdot (FEAT_DotProd) kernels; they
// differ only in how one k-quad of products enters the integer block dot (the `Dot` policy each
// translation unit defines). The integer block dot Σ q_w·q_x is exact either way:
//   int8: weights stored u8 = q + 128 become s8 q by xor 0x80;
//   int4: the nibble u = q + 8 ∈ [0, 15] is used as s8 directly, then dot = Σ u·x_q − 8·Σx_q.
// Then, per block in block order, the portable kernel's fp32 arithmetic exactly (mul, mul, add;
// these TUs are built with -ffp-contract=off so they are not fused):
//   acc += float(dot) · (scale_w · scale_x)
// so the outputs match generic/linear_generic.cc bit for bit, and each element's operations are
// the same whatever the tile shape (a row alone equals it in a batch).
// Panel layout (quant_panel_layout.h): a k-quad of int8 is 32 lanes × 4 bytes (8 q-registers,
// lanes 4v..4v+3 in register v); of int4, 16 lanes × 4 bytes with lanes l and l+16 sharing a
// byte (low, high nibble), so register g holds lanes 4g.. (low) and 16+4g.. (high).
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

static inline void load_scales(const uint16_t* s, float32x4_t sw[8]) {
  for (int v = 0; v < 8; ++v) sw[v] = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(s + 4 * v)));
}

// The 8 weight registers of k-quad j of a block, as s8 (lanes 4v..4v+3 in register v).
template <bool Q4>
static inline void load_quad(const uint8_t* blk, int j, int8x16_t w[8]) {
  if (Q4) {
    const uint8x16_t nib = vdupq_n_u8(0x0F);
    for (int g = 0; g < 4; ++g) {
      const uint8x16_t raw = vld1q_u8(blk + j * 64 + g * 16);
      w[g] = vreinterpretq_s8_u8(vandq_u8(raw, nib));
      w[4 + g] = vreinterpretq_s8_u8(vshrq_n_u8(raw, 4));
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
template <bool Q4, class Dot, int MR>
void tile_quant(const LinearJob& job, int r0, int p) {
  const int nb = (job.K + 31) / 32;
  const uint8_t* P = job_panel(job, p);
  QuantRowPtrs x[MR];
  for (int r = 0; r < MR; ++r) x[r] = quant_row_ptrs(job.rows[r0 + r], nb);
  float32x4_t acc[MR][8];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < 8; ++v) acc[r][v] = vdupq_n_f32(0.0f);
  for (int b = 0; b < nb; ++b) {
    const uint8_t* blk = quant_block(P, Q4, b);
    int32x4_t lo[MR][8], hi[MR][8];
    for (int r = 0; r < MR; ++r)
      for (int v = 0; v < 8; ++v) lo[r][v] = hi[r][v] = vdupq_n_s32(0);
    for (int j = 0; j < 8; ++j) {
      int8x16_t w[8];
      load_quad<Q4>(blk, j, w);
      for (int r = 0; r < MR; ++r) {
        const int8x16_t xs = broadcast_quad(x[r].q + b * 32 + j * 4);
        for (int v = 0; v < 8; ++v) Dot::quad(lo[r][v], hi[r][v], w[v], xs);
      }
    }
    float32x4_t sw[8];
    load_scales(quant_block_scales(P, Q4, b), sw);
    for (int r = 0; r < MR; ++r) {
      const int32x4_t off = vdupq_n_s32(Q4 ? 8 * x[r].sum[b] : 0);
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
