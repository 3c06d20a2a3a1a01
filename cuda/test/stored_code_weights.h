// A WeightSource built like a quantised release, for the tests of the stored-code path (host_index_test
// and gpu_selftest): fp8 as DeepSeek-V3 ships it (E4M3 codes, one fp32 scale per 128×128 block) or
// mxfp4 as gpt-oss does (E2M1 codes, an E8M0 scale per 32 inputs). row() gives the dequantised fp32
// values as a checkpoint reader does (code value × scale, one fp32 multiply), stored_codes() the
// codes themselves. The scales are chosen where the core's max-based quantisers would choose
// others: an fp8 block holds its largest magnitude (448) only in its first row, so every other
// row's own scale (max/448) is smaller; every odd mxfp4 block holds magnitudes ≤ 3 only, whose
// max-based exponent is one lower than the stored one.
#pragma once
#include <cmath>
#include <cstdint>

#include "weights/numeric.h"
#include "weights/weight_source.h"

struct StoredCodeWeights : moecap::WeightSource {
  moecap::DType dtype = moecap::DType::FP8;  // FP8 or MXFP4
  uint64_t seed = 1;
  bool hide_codes = false;  // true: fp32 values only, as the CUDA ABI's fp32 masters carried them

  uint64_t fingerprint() const override { return seed; }  // never written to an offload file

  // A deterministic hash of an element's coordinates (splitmix64's finaliser).
  uint64_t hash(moecap::Matrix m, int e, int r, int c) const {
    uint64_t z = seed + 0x9E3779B97F4A7C15ull * (uint64_t(m) * 1000003ull + uint64_t(e) * 10007ull + uint64_t(r)) +
                 uint64_t(c) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint8_t code(moecap::Matrix m, int e, int r, int c) const {
    const uint64_t h = hash(m, e, r, c);
    const uint8_t sign = uint8_t((h >> 8 & 1) << (dtype == moecap::DType::FP8 ? 7 : 3));
    if (dtype == moecap::DType::FP8)  // 0x7E = 448; below it, magnitudes up to 0x76 = 224 (no NaN codes)
      return uint8_t(sign | ((r % 128 == 0 && c % 128 == 0) ? 0x7E : h % 0x77));
    return uint8_t(sign | ((c / 32) % 2 ? h % 6 : h % 8));  // odd blocks: E2M1 magnitudes 0..3
  }
  // fp8: the scale of 128×128 block (rb, cb), shared by its 128 rows; mxfp4: row r's block b.
  float fp8_scale(moecap::Matrix m, int e, int rb, int cb) const {
    const uint64_t h = hash(m, e, -1 - rb, cb);
    return std::ldexp(1.0f + float(h % 1000) / 1000.0f, -12 + int(h >> 20 & 3));
  }
  uint8_t e8m0(moecap::Matrix m, int e, int r, int b) const { return uint8_t(118 + hash(m, e, r, -1 - b) % 8); }
  // The checkpoint's value of element (r, c): what a device holding its codes decodes.
  float value(moecap::Matrix m, int e, int r, int c) const {
    const uint8_t q = code(m, e, r, c);
    if (dtype == moecap::DType::FP8) return moecap::e4m3_to_f32(q) * fp8_scale(m, e, r / 128, c / 128);
    return float(moecap::e2m1_twice(q)) * moecap::e8m0_half(e8m0(m, e, r, c / 32));
  }

  void row(moecap::Matrix m, int e, int r, int cols, float* out) const override {
    for (int c = 0; c < cols; ++c) out[c] = value(m, e, r, c);
  }
  bool stored_codes(moecap::Matrix m, int e, int r, int cols, moecap::DType dt, uint8_t* codes,
                    void* scales) const override {
    if (hide_codes || dt != dtype) return false;
    for (int c = 0; c < cols; ++c) codes[c] = code(m, e, r, c);
    if (dtype == moecap::DType::FP8)
      for (int b = 0; b < (cols + 127) / 128; ++b) static_cast<float*>(scales)[b] = fp8_scale(m, e, r / 128, b);
    else
      for (int b = 0; b < (cols + 31) / 32; ++b) static_cast<uint8_t*>(scales)[b] = e8m0(m, e, r, b);
    return true;
  }
};
