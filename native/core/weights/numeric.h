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
