#include "weights/block_quant.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "weights/numeric.h"

namespace moecap {

// Round to nearest even without a libm call (|v| < 2^22, which clamped levels always are).
static inline float round_even(float v) { return (v + 12582912.0f) - 12582912.0f; }

// Exponent of the lowest set bit of a finite non-zero float (v = odd integer · 2^result).
static int low_bit_exponent(float v) {
  const uint32_t u = f32_bits(v) & 0x7FFFFFFFu;
  const uint32_t e = u >> 23;
  const uint32_t m = e ? (u & 0x7FFFFFu) | 0x800000u : u & 0x7FFFFFu;
  return (e ? int(e) - 150 : -149) + __builtin_ctz(m);
}

// The odd integer o with v = o · 2^low_bit_exponent(v) exceeds 127 (v finite, non-zero).
static bool odd_part_above_127(float v) {
  const uint32_t u = f32_bits(v) & 0x7FFFFFFFu;
  const uint32_t m = u >> 23 ? (u & 0x7FFFFFu) | 0x800000u : u & 0x7FFFFFu;
  return (m >> __builtin_ctz(m)) > 127u;
}

bool exact_int8_block(const float* v, int n, uint16_t* scale) {
  int low = INT32_MAX;
  float amax = 0;
  for (int i = 0; i < n; ++i) {
    if (v[i] == 0) continue;
    if (!std::isfinite(v[i])) return false;
    // Every level is |v|/2^s with s ≤ low_bit_exponent(v): at least v's odd part, so one odd part
    // over 127 settles it (most weights' first value does: the usual early answer).
    if (odd_part_above_127(v[i])) return false;
    low = std::min(low, low_bit_exponent(v[i]));
    amax = std::max(amax, std::fabs(v[i]));
  }
  if (low == INT32_MAX) return false;  // all zero: the plain rule is exact already
  // The scale 2^s must be an fp16 value (2^-24 … 2^15) with every level |v|/2^s ≤ 127; s ≤ low
  // keeps the levels integers.
  const int s = std::min(low, 15);
  if (s < -24 || std::ldexp(amax, -s) > 127.0f) return false;
  *scale = f32_to_f16(std::ldexp(1.0f, s));
  return true;
}

// int8: symmetric block quantisation of one lane, q = round(v / s) ∈ [-127, 127],
// s = max|v| / 127 stored fp16; q uses the fp16-rounded scale so dequantisation is exact to it.
// A block that int8 holds exactly (exact_int8_block) keeps its values: q·2^s = v.
void quantise_block_int8(const float* v, int K, int8_t* q, uint16_t* scales) {
  const int nb = (K + kQuantBlockSize - 1) / kQuantBlockSize;
  for (int b = 0; b < nb; ++b) {
    int k0 = b * kQuantBlockSize, k1 = std::min(K, k0 + kQuantBlockSize);
    uint16_t exact;
    if (exact_int8_block(v + k0, k1 - k0, &exact)) {
      scales[b] = exact;
      const float inv = 1.0f / f16_to_f32(exact);  // a power of two: v·inv is exact
      for (int k = k0; k < k0 + kQuantBlockSize; ++k) q[k] = int8_t(k < k1 ? int(v[k] * inv) : 0);
      continue;
    }
    float amax = 0;
    for (int k = k0; k < k1; ++k) amax = std::max(amax, std::fabs(v[k]));
    uint16_t h = f32_to_f16(amax / 127.0f);
    float s = f16_to_f32(h);
    scales[b] = h;
    float inv = s > 0 ? 1.0f / s : 0.0f;
    if (k1 - k0 == kQuantBlockSize && s > 0) {
      // A whole block without the tail test, clamped as floats (|x| < 2^22, so the same integer
      // as clamping after the conversion): it vectorises.
      for (int k = k0; k < k1; ++k) {
        float x = round_even(v[k] * inv);
        x = x < -127.0f ? -127.0f : x > 127.0f ? 127.0f : x;
        q[k] = int8_t(int(x));
      }
      continue;
    }
    for (int k = k0; k < k0 + kQuantBlockSize; ++k) {
      int x = 0;
      if (k < k1 && s > 0) x = std::max(-127, std::min(127, int(round_even(v[k] * inv))));
      q[k] = int8_t(x);
    }
  }
}

// A block that already lies on an int4 grid, v = q·s with q ∈ [-8, 7] and s an fp16 (a ggml Q4_0
// block decoded: (nibble − 8)·d), is kept exactly: its largest-magnitude value m is some level j
// times s, so s = m / j for one of the 15 non-zero levels. Returns the first such s (as fp16 bits)
// under which every value is exactly a level times s, or 0 when there is none (the usual case for
// weights that were not int4 already: the first test, m / j exact in fp16 with j·s == m, fails at once).
static uint16_t exact_int4_scale(const float* blk, float m) {
  // j·s has at most 3 + 11 significant bits (|j| ≤ 8, an fp16 significand), always a normal fp32:
  // its low 10 mantissa bits are zero. Ordinary fp32 weights fail this at once.
  uint32_t mb;
  std::memcpy(&mb, &m, 4);
  if ((mb & 0x3FFu) != 0) return 0;
  static const int kLevels[15] = {-8, 7, -7, 6, -6, 5, -5, 4, -4, 3, -3, 2, -2, 1, -1};
  for (int j : kLevels) {
    const uint16_t h = f32_to_f16(m / float(j));
    const float s = f16_to_f32(h);
    if (s == 0 || !std::isfinite(s) || s * float(j) != m) continue;
    bool exact = true;
    for (int i = 0; i < kQuantBlockSize && exact; ++i) {
      const float x = round_even(blk[i] / s);
      exact = x >= -8.0f && x <= 7.0f && x * s == blk[i];
    }
    if (exact) return h;
  }
  return 0;
}

// int4: w = q · s with q ∈ [-8, 7] and a signed fp16 scale. With only 16 levels the plain
// max|v|/7 scale wastes level -8 and over-weights the one largest value, so each block tries
// s = m / -d (m = the block's largest-magnitude value, d ∈ {7.5, 7.75, …, 9.5}: d = 8 maps m
// to -8, larger d clips it) and keeps the scale with the least squared error: the lower rms
// weight error is what brings the layer under its 1.5e-1 tolerance (bench/kernel-notes.md).
void quantise_block_int4(const float* v, int K, int8_t* q, uint16_t* scales) {
  const int nb = (K + kQuantBlockSize - 1) / kQuantBlockSize;
  alignas(64) float blk[kQuantBlockSize];
  for (int b = 0; b < nb; ++b) {
    const int k0 = b * kQuantBlockSize, n = std::min(K - k0, kQuantBlockSize);
    // The block zero padded to 32 (a zero meets level 0 and adds no error), so the candidate
    // loop has a fixed trip count and 8 partial error sums the compiler vectorises.
    for (int i = 0; i < kQuantBlockSize; ++i) blk[i] = i < n ? v[k0 + i] : 0.0f;
    float m = 0;
    for (int i = 0; i < n; ++i)
      if (std::fabs(blk[i]) > std::fabs(m)) m = blk[i];
    uint16_t best_h = m != 0 ? exact_int4_scale(blk, m) : 0;
    const bool exact = best_h != 0;
    float best_err = INFINITY;
    if (m != 0 && best_h == 0) {
      for (int c = 0; c <= 8; ++c) {
        const float d = 7.5f + 0.25f * float(c);
        const uint16_t h = f32_to_f16(m / -d);
        const float s = f16_to_f32(h);
        if (s == 0) continue;
        const float inv = 1.0f / s;
        float part[8] = {0};
        for (int i = 0; i < kQuantBlockSize; i += 8)
          for (int j = 0; j < 8; ++j) {
            float x = round_even(blk[i + j] * inv);
            x = x < -8.0f ? -8.0f : x > 7.0f ? 7.0f : x;
            const float e = blk[i + j] - x * s;
            part[j] += e * e;
          }
        const float err = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
        if (err < best_err) best_err = err, best_h = h;
      }
    }
    scales[b] = best_h;
    const float s = f16_to_f32(best_h);
    const float inv = s != 0 ? 1.0f / s : 0.0f;
    for (int i = 0; i < kQuantBlockSize; ++i) {
      // blk·(1/s) can land a hair off an exact level; the division does not.
      float x = round_even(exact ? blk[i] / s : blk[i] * inv);
      x = x < -8.0f ? -8.0f : x > 7.0f ? 7.0f : x;
      q[k0 + i] = int8_t(i < n ? int(x) : 0);
    }
  }
}

QuantAmaxRange quant_amax_range(bool int4) {
  if (int4) return {9.5f * kMinQuantScale, 7.5f * kMaxQuantScale};
  return {127.0f * kMinQuantScale, 127.0f * kMaxQuantScale};
}

int first_unrepresentable_block(const float* v, int K, bool int4, float* amax) {
  const QuantAmaxRange r = quant_amax_range(int4);
  for (int k0 = 0; k0 < K; k0 += kQuantBlockSize) {
    const int k1 = std::min(K, k0 + kQuantBlockSize);
    float m = 0;
    for (int k = k0; k < k1; ++k) m = std::max(m, std::fabs(v[k]));
    uint16_t exact;
    if (m != 0 && (m < r.lo || m > r.hi) && !(!int4 && exact_int8_block(v + k0, k1 - k0, &exact))) {
      *amax = m;
      return k0 / kQuantBlockSize;
    }
  }
  return -1;
}

// Nearest E2M1 code of q: the 8 magnitudes searched, a tie going to the even code (mantissa bit
// 0). Below 8 (every q the packer passes: a block's values over its scale) the distances are exact,
// a tie lies at a midpoint between neighbours, and the search is a comparison with the midpoints,
// each going to its even side (it runs per element); above, the search as it rounds.
uint8_t e2m1_nearest(double q) {
  const double a = std::fabs(q);
  if (!(a <= 8)) {
    static constexpr double kMag[8] = {0, 0.5, 1, 1.5, 2, 3, 4, 6};
    int best = 0;
    for (int c = 1; c < 8; ++c) {
      const double d = std::fabs(a - kMag[c]), db = std::fabs(a - kMag[best]);
      if (d < db || (d == db && (c & 1) == 0)) best = c;
    }
    return uint8_t(best == 0 ? 0 : (q < 0 ? 8 : 0) | best);
  }
  const int best = a <= 0.25   ? 0
                   : a < 0.75  ? 1
                   : a <= 1.25 ? 2
                   : a < 1.75  ? 3
                   : a <= 2.5  ? 4
                   : a < 3.5   ? 5
                   : a <= 5    ? 6
                               : 7;
  return uint8_t(best == 0 ? 0 : (q < 0 ? 8 : 0) | best);
}

// std::nearbyint of 0 ≤ y < 2^52 under the default rounding (to nearest even), without the libm
// call: adding 2^52 leaves no fraction bits.
static inline double round_even_nonneg(double y) { return (y + 4503599627370496.0) - 4503599627370496.0; }

// Nearest E4M3 code of q (RNE, saturating at ±448): subnormals in steps of 2^-9, normals with 3
// mantissa bits; a mantissa that rounds up to 8 carries into the exponent by the addition.
uint8_t e4m3_nearest(double q) {
  const double a = std::fabs(q);
  const uint8_t sign = q < 0 ? 0x80 : 0;
  int code;
  if (a >= 448) code = 0x7E;
  else if (a < 0.015625) code = int(round_even_nonneg(a * 512));  // 2^-6: subnormal (8 = 2^-6 itself)
  else {
    // a = m·2^e, m ∈ [0.5, 1) (std::frexp of a normal double), from its bits.
    uint64_t bits;
    std::memcpy(&bits, &a, 8);
    const int e = int(bits >> 52) - 1022;
    bits = (bits & 0xFFFFFFFFFFFFFull) | (uint64_t(1022) << 52);
    double m;
    std::memcpy(&m, &bits, 8);
    code = ((e - 1 + 7) << 3) + int(round_even_nonneg((2 * m - 1) * 8));
    if (code > 0x7E) code = 0x7E;
  }
  return uint8_t(code == 0 ? 0 : sign | code);
}

void quantise_mxfp4(const float* v, int K, uint8_t* codes, uint8_t* scales) {
  const int nb = (K + kQuantBlockSize - 1) / kQuantBlockSize;
  for (int b = 0; b < nb; ++b) {
    const int k0 = b * kQuantBlockSize, k1 = std::min(K, k0 + kQuantBlockSize);
    float amax = 0;
    for (int k = k0; k < k1; ++k) amax = std::max(amax, std::fabs(v[k]));
    int e = 0;
    if (amax > 0) {
      int ex;
      std::frexp(amax, &ex);  // floor(log2 amax) = ex − 1
      e = std::min(254, std::max(0, ex - 1 - 2 + 127));
    }
    scales[b] = uint8_t(e);
    const double pow2 = std::ldexp(1.0, 127 - e);  // v·2^(127−e) is exact in double: ldexp's value
    for (int k = k0; k < k0 + kQuantBlockSize; ++k) codes[k] = k < k1 ? e2m1_nearest(double(v[k]) * pow2) : 0;
  }
}

void quantise_fp8(const float* v, int K, uint8_t* codes, float* scales) {
  const int nb = (K + kFp8BlockSize - 1) / kFp8BlockSize;
  for (int b = 0; b < nb; ++b) {
    const int k0 = b * kFp8BlockSize, k1 = std::min(K, k0 + kFp8BlockSize);
    float amax = 0;
    for (int k = k0; k < k1; ++k) amax = std::max(amax, std::fabs(v[k]));
    const float s = amax / 448.0f;
    scales[b] = s;
    for (int k = k0; k < k0 + kFp8BlockSize; ++k) codes[k] = k < k1 && s > 0 ? e4m3_nearest(double(v[k]) / s) : 0;
  }
}

}  // namespace moecap
