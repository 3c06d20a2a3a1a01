// Decoding of the block formats' codes in the SIMT kernels (expert_gemm.cu), four or two codes
// per 32-bit word. Host and device code: on the device the byte permute and per-byte subtract are
// the PTX instructions; on the host they are emulated, so host_index_test checks these decoders
// against the CPU core's (weights/numeric.h) for every code without a GPU.
#pragma once
#include <stdint.h>

#include "int_math.h"

namespace moecap_cuda {

// __byte_perm(x, y, s): output byte i = byte (s >> 4i) & 7 of y:x (bit 3 of a selector replicates
// that byte's sign bit instead); __vsub4: per-byte subtraction modulo 256.
MOECAP_HD uint32_t byte_perm(uint32_t x, uint32_t y, uint32_t s) {
#if defined(__CUDA_ARCH__)
  return __byte_perm(x, y, s);
#else
  const uint64_t b = uint64_t(x) | uint64_t(y) << 32;
  uint32_t r = 0;
  for (int i = 0; i < 4; ++i) {
    const uint32_t n = (s >> (4 * i)) & 15u;
    uint32_t v = uint32_t(b >> (8 * (n & 7u))) & 0xFFu;
    if (n & 8u) v = (v & 0x80u) ? 0xFFu : 0u;
    r |= v << (8 * i);
  }
  return r;
#endif
}
MOECAP_HD uint32_t vsub4(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
  return __vsub4(a, b);
#else
  uint32_t r = 0;
  for (int i = 0; i < 32; i += 8) r |= ((((a >> i) & 0xFFu) - ((b >> i) & 0xFFu)) & 0xFFu) << i;
  return r;
#endif
}

// mxfp4: four E2M1 codes (one a byte, 0..15, sign in bit 3) → four signed bytes 2·value ∈ [-12, 12]
// (numeric.h e2m1_twice): the magnitude from an 8-byte table by one byte permute, then the bytes
// whose code is negative are negated ((m ^ 0xFF) − 0xFF = −m).
MOECAP_HD uint32_t e2m1_twice4(uint32_t codes) {
  const uint32_t t = codes | (codes >> 4);  // selector nibble i = code i
  const uint32_t sel = ((t & 0xFFu) | ((t >> 8) & 0xFF00u)) & 0x7777u;
  const uint32_t mag = byte_perm(0x03020100u, 0x0C080604u, sel);  // 0, 1, 2, 3, 4, 6, 8, 12
  const uint32_t neg = ((codes >> 3) & 0x01010101u) * 0xFFu;
  return vsub4(mag ^ neg, neg);
}

// E8M0 byte e → the bits of 2^(e−128) (numeric.h e8m0_half: the block scale halved, the factor of
// 2·value; e = 0, 1 give fp32 subnormals, exact).
MOECAP_HD uint32_t e8m0_half_bits(uint32_t e) { return e >= 2 ? (e - 1) << 23 : 0x200000u << e; }

// fp8: two E4M3 codes of w (bytes 0, 1 with sel 0x1404; bytes 2, 3 with sel 0x3424) → an fp16 pair
// (low half the first code) of value·2^-8 each, the codes' bits moved (numeric.h e4m3_f16_scaled).
constexpr uint32_t kE4m3Pair01 = 0x1404u, kE4m3Pair23 = 0x3424u;
MOECAP_HD uint32_t e4m3_pair_f16_scaled(uint32_t w, uint32_t sel) {
  const uint32_t x = byte_perm(w, 0u, sel);  // each code in the high byte of its half
  return (x & 0x80008000u) | ((x & 0x7F007F00u) >> 1);
}

}  // namespace moecap_cuda
