#include "checkpoint/quant_formats.h"

#include <cmath>
#include <limits>

#include "weights/numeric.h"

namespace moecap {

namespace {

uint16_t load_u16(const uint8_t* p) { return uint16_t(p[0] | (uint16_t(p[1]) << 8)); }

// Q4_K's packed 6-bit pairs: sub-blocks 0..3 keep scale and min in the low 6 bits of bytes j and
// j+4; sub-blocks 4..7 keep their low 4 bits in byte j+4's nibbles and their top 2 bits in the
// spare top bits of bytes j−4 (scale) and j (min).
void q4_k_scale_min(int j, const uint8_t* q, int* scale, int* min) {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
    *min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

uint32_t load_u32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

// The legacy 32-element blocks: byte j of `qs` holds element j (low nibble) and j+16 (high);
// `qh` (Q5) gives each element its fifth bit. level·d is exact in fp32 (5 × 11 bits), so the one
// rounding is the addition of m (Q4_1, Q5_1), as in ggml's x·d + m.
// `m` null: no offset added (Q5_0: level·d alone, so a zero level keeps d's sign as ggml's does).
void decode_legacy_block(const uint8_t* qs, uint32_t qh, bool fifth, int offset, float d, const float* m, float* out) {
  for (int j = 0; j < 16; ++j) {
    const int hi0 = fifth ? int((qh >> j) & 1) << 4 : 0, hi1 = fifth ? int((qh >> (j + 16)) & 1) << 4 : 0;
    const float v0 = float(int(qs[j] & 0x0F) + hi0 - offset) * d, v1 = float(int(qs[j] >> 4) + hi1 - offset) * d;
    out[j] = m ? v0 + *m : v0;
    out[j + 16] = m ? v1 + *m : v1;
  }
}

// Q4_K and Q5_K: 8 sub-blocks of 32 with 6-bit (scale, min) pairs; 64 elements per group of 32
// nibble bytes, low nibbles sub-block 2g, high nibbles 2g+1. Q5_K adds a fifth bit per element:
// bit 2g (low) or 2g+1 (high) of qh[l]. d·s·level is exact in fp32 (11 + 6 + 5 bits, and
// dmin·m 11 × 6), so the one rounding is the final subtraction, as in ggml.
template <bool kFifth>
void decode_k_block(const uint8_t* blk, float* out) {
  const float d = f16_to_f32(load_u16(blk)), dmin = f16_to_f32(load_u16(blk + 2));
  const uint8_t* sc = blk + 4;
  const uint8_t* qh = blk + 16;
  const uint8_t* q = blk + (kFifth ? 48 : 16);
  for (int g = 0; g < 4; ++g, q += 32, out += 64) {
    int s0, m0, s1, m1;
    q4_k_scale_min(2 * g, sc, &s0, &m0);
    q4_k_scale_min(2 * g + 1, sc, &s1, &m1);
    const float d0 = d * float(s0), o0 = dmin * float(m0), d1 = d * float(s1), o1 = dmin * float(m1);
    for (int l = 0; l < 32; ++l) {
      const int h0 = kFifth ? ((qh[l] >> (2 * g)) & 1) << 4 : 0, h1 = kFifth ? ((qh[l] >> (2 * g + 1)) & 1) << 4 : 0;
      out[l] = d0 * float((q[l] & 0x0F) | h0) - o0;
      out[32 + l] = d1 * float((q[l] >> 4) | h1) - o1;
    }
  }
}

}  // namespace

void decode_q4_0_block(const uint8_t* blk, float* out) {
  const float d = f16_to_f32(load_u16(blk));
  for (int j = 0; j < 16; ++j) {
    out[j] = float(int(blk[2 + j] & 0x0F) - 8) * d;
    out[j + 16] = float(int(blk[2 + j] >> 4) - 8) * d;
  }
}

void decode_q4_1_block(const uint8_t* blk, float* out) {
  const float m = f16_to_f32(load_u16(blk + 2));
  decode_legacy_block(blk + 4, 0, false, 0, f16_to_f32(load_u16(blk)), &m, out);
}

void decode_q5_0_block(const uint8_t* blk, float* out) {
  decode_legacy_block(blk + 6, load_u32(blk + 2), true, 16, f16_to_f32(load_u16(blk)), nullptr, out);
}

void decode_q5_1_block(const uint8_t* blk, float* out) {
  const float m = f16_to_f32(load_u16(blk + 2));
  decode_legacy_block(blk + 8, load_u32(blk + 4), true, 0, f16_to_f32(load_u16(blk)), &m, out);
}

void decode_q4_k_block(const uint8_t* blk, float* out) { decode_k_block<false>(blk, out); }

void decode_q5_k_block(const uint8_t* blk, float* out) { decode_k_block<true>(blk, out); }

void decode_q6_k_block(const uint8_t* blk, float* out) {
  const uint8_t* ql = blk;
  const uint8_t* qh = blk + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(blk + 192);
  const float d = f16_to_f32(load_u16(blk + 208));
  // Two halves of 128 elements, each from 64 ql bytes, 32 qh bytes and 8 scales (one per 16).
  for (int h = 0; h < 2; ++h, ql += 64, qh += 32, sc += 8, out += 128) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = int((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = int((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = int((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = int((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      out[l] = d * float(sc[is]) * float(q1);
      out[l + 32] = d * float(sc[is + 2]) * float(q2);
      out[l + 64] = d * float(sc[is + 4]) * float(q3);
      out[l + 96] = d * float(sc[is + 6]) * float(q4);
    }
  }
}

float fp8_e4m3_to_f32(uint8_t b) {
  const uint32_t sign = uint32_t(b & 0x80) << 24;
  const uint32_t exp = (b >> 3) & 0x0F, mant = b & 0x07;
  if (exp == 0x0F && mant == 0x07) return std::numeric_limits<float>::quiet_NaN();
  if (exp == 0) {
    // Subnormal: mant·2^-9, exact in fp32 (ldexp of a 3-bit integer).
    const float v = float(mant) * (1.0f / 512.0f);
    return sign ? -v : v;
  }
  return bits_f32(sign | ((exp + 120) << 23) | (mant << 20));
}

}  // namespace moecap
