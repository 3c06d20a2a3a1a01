// Scalar conversions shared by packing, activation quantisation and the portable kernels.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace moecap {

static inline uint32_t f32_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
static inline float bits_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round-to-nearest-even fp32 → bf16 (NaN stays NaN).
static inline uint16_t f32_to_bf16(float f) {
  uint32_t u = f32_bits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}
static inline float bf16_to_f32(uint16_t h) { return bits_f32(uint32_t(h) << 16); }

// IEEE half conversions, round-to-nearest-even, with subnormals.
static inline uint16_t f32_to_f16(float f) {
  uint32_t x = f32_bits(f);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t ax = x & 0x7FFFFFFFu;
  if (ax >= 0x7F800000u) return uint16_t(sign | 0x7C00u | (ax > 0x7F800000u ? 0x200u : 0u));
  if (ax >= 0x477FF000u) return uint16_t(sign | 0x7C00u);  // rounds to inf
  if (ax < 0x38800000u) {                                  // half subnormal or zero
    float v = bits_f32(ax) * 16777216.0f;                  // scale by 2^24: ulp of subnormal half = 2^-24
    uint32_t m = uint32_t(std::nearbyint(v));
    return uint16_t(sign | m);
  }
  uint32_t mant = ax & 0x7FFFFFu;
  uint32_t exp = (ax >> 23) - 112;
  uint32_t h = (exp << 10) | (mant >> 13);
  uint32_t rest = mant & 0x1FFFu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
  return uint16_t(sign | h);
}
static inline float f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  if (exp == 0) return bits_f32(sign) + (sign ? -1.0f : 1.0f) * float(mant) * (1.0f / 16777216.0f);
  if (exp == 31) return bits_f32(sign | 0x7F800000u | (mant << 13));
  return bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

// Microscaling element formats (weights/dtype.h). E2M1 code c (sign in bit 3) → 2·value, an
// integer in [-12, 12]: integer kernels take it from a 16-entry table, exactly.
static inline int e2m1_twice(uint8_t c) {
  static constexpr int8_t kTwice[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
  return kTwice[c & 15];
}
// E8M0 byte e (0xFF = NaN, refused at packing) → 2^(e−128): the block scale 2^(e−127) halved, the
// factor of e2m1_twice(). e = 0, 1 give fp32 subnormals, still exact.
static inline float e8m0_half(uint8_t e) { return bits_f32(e >= 2 ? uint32_t(e - 1) << 23 : 0x200000u << e); }
// E4M3 byte (bias 7, no inf; 0x7F/0xFF = NaN, refused at packing) → fp16 bits of value·2^-8: the
// same bits moved, exact for normals and subnormals alike (fp16 has bias 15 and subnormals below
// 2^-14 = 2^-6·2^-8), so SIMD kernels decode with a shift and vcvtph2ps.
static inline uint16_t e4m3_f16_scaled(uint8_t x) { return uint16_t(((x & 0x80u) << 8) | ((x & 0x7Fu) << 7)); }
static inline float e4m3_to_f32(uint8_t x) { return f16_to_f32(e4m3_f16_scaled(x)) * 256.0f; }
static inline bool e4m3_is_nan(uint8_t x) { return (x & 0x7F) == 0x7F; }

static inline float silu(float g) { return g / (1.0f + std::exp(-g)); }

// The gated activation of an expert variant (kernels/linear_job.h, Epilogue::GatedVariant):
// limit 0 = silu(g)·u; else gpt-oss's clamped form (up + 1)·g·σ(α·g), g ≤ limit, |u| ≤ limit.
// The comparisons keep a NaN (torch.clamp propagates it).
static inline float gated_variant(float g, float u, float limit, float alpha) {
  if (limit == 0) return silu(g) * u;
  if (g > limit) g = limit;
  if (u > limit) u = limit;
  if (u < -limit) u = -limit;
  return (u + 1.0f) * (g / (1.0f + std::exp(-alpha * g)));
}

}  // namespace moecap
