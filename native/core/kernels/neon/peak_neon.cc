// NEON ceilings (baseline armv8-a): 24 independent fmla chains (latency × the 2–4 128-bit FMA
// pipes of current cores, within the 32 vector registers) and a four-stream 128-bit read. The
// dot-product loops live in the TUs built with their features (peak_neon_dotprod.cc,
// peak_neon_bf16.cc) and are used only where the CPU has them; without them arm64 has no bf16 or
// int8 dot unit (the kernels widen), so those loops are null, as on AVX2.
#include "kernels/neon/linear_neon.h"
#include "kernels/peak_loops.h"

namespace moecap {
namespace {

float fma_f32(long iters) {
  float32x4_t a = vdupq_n_f32(0.999f), b = vdupq_n_f32(1e-3f);
  __asm__ volatile("" : "+w"(a), "+w"(b));
  float32x4_t acc[neon::kPeakChains];
  for (int i = 0; i < neon::kPeakChains; ++i) acc[i] = vdupq_n_f32(float(i));
  for (long it = 0; it < iters; ++it)
#pragma GCC unroll 24
    for (int i = 0; i < neon::kPeakChains; ++i) acc[i] = vfmaq_f32(b, acc[i], a);
  float32x4_t s = acc[0];
  for (int i = 1; i < neon::kPeakChains; ++i) s = vaddq_f32(s, acc[i]);
  return vaddvq_f32(s);
}

// Four interleaved sequential streams (quarters of the range), as in the x86 loops.
uint64_t read_sum(const void* p, size_t bytes) {
  const size_t q = bytes / 4 / 16;  // q-registers per stream (bytes: a multiple of 512)
  const uint64_t* v0 = static_cast<const uint64_t*>(p);
  const uint64_t *v1 = v0 + 2 * q, *v2 = v1 + 2 * q, *v3 = v2 + 2 * q;
  uint64x2_t s0 = vdupq_n_u64(0), s1 = s0, s2 = s0, s3 = s0;
  for (size_t i = 0; i + 2 <= q; i += 2) {
    s0 = vaddq_u64(s0, vaddq_u64(vld1q_u64(v0 + 2 * i), vld1q_u64(v0 + 2 * i + 2)));
    s1 = vaddq_u64(s1, vaddq_u64(vld1q_u64(v1 + 2 * i), vld1q_u64(v1 + 2 * i + 2)));
    s2 = vaddq_u64(s2, vaddq_u64(vld1q_u64(v2 + 2 * i), vld1q_u64(v2 + 2 * i + 2)));
    s3 = vaddq_u64(s3, vaddq_u64(vld1q_u64(v3 + 2 * i), vld1q_u64(v3 + 2 * i + 2)));
  }
  return vaddvq_u64(vaddq_u64(vaddq_u64(s0, s1), vaddq_u64(s2, s3)));
}

}  // namespace

const PeakLoops& neon_peak_loops() {
  static const bool bf16 = cpu_has_neon_bf16(), dot = cpu_has_neon_dotprod();
  static const PeakLoops t = {"neon",
                              fma_f32,
                              neon::kPeakChains * 4 * 2.0,  // 4 lanes × multiply-add
                              bf16 ? neon::peak_dot_bf16 : nullptr,
                              neon::kPeakDotBf16PerIter,
                              dot ? neon::peak_dot_int8 : nullptr,
                              neon::kPeakDotInt8PerIter,
                              read_sum,
                              nullptr};
  return t;
}

}  // namespace moecap
