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

}  // namespace

void decode_q4_0_block(const uint8_t* blk, float* out) {
  const float d = f16_to_f32(load_u16(blk));
  for (int j = 0; j < 16; ++j) {
    out[j] = float(int(blk[2 + j] & 0x0F) - 8) * d;
    out[j + 16] = float(int(blk[2 + j] >> 4) - 8) * d;
  }
}

void decode_q4_k_block(const uint8_t* blk, float* out) {
  const float d = f16_to_f32(load_u16(blk)), dmin = f16_to_f32(load_u16(blk + 2));
  const uint8_t* sc = blk + 4;
  const uint8_t* q = blk + 16;
  // 64 elements per group of 32 bytes: low nibbles are sub-block 2g, high nibbles sub-block 2g+1.
  for (int g = 0; g < 4; ++g, q += 32, out += 64) {
    int s0, m0, s1, m1;
    q4_k_scale_min(2 * g, sc, &s0, &m0);
    q4_k_scale_min(2 * g + 1, sc, &s1, &m1);
    // d·s and dmin·m are exact in fp32 (11 × 6 bits); the one rounding is the final subtraction.
    const float d0 = d * float(s0), o0 = dmin * float(m0), d1 = d * float(s1), o1 = dmin * float(m1);
    for (int l = 0; l < 32; ++l) {
      out[l] = d0 * float(q[l] & 0x0F) - o0;
      out[32 + l] = d1 * float(q[l] >> 4) - o1;
    }
  }
}

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
