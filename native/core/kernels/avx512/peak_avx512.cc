// AVX-512 ceilings: 16 independent accumulator chains (enough to cover latency × the two 512-bit
// FMA/dot pipes of current cores) of vfmadd231ps, vdpbf16ps and vpdpbusd; a 512-byte-per-
// iteration streaming read.
#include <immintrin.h>

#include "kernels/avx512/tile_avx512.h"
#include "kernels/peak_loops.h"
#include "kernels/x86_compiler.h"

namespace moecap {
namespace {

constexpr int kChains = 16;

// Horizontal sums through memory (the reduce intrinsics trip -Wuninitialized in GCC 12's headers).
static inline float hsum(__m512 v) {
  alignas(64) float o[16];
  _mm512_store_ps(o, v);
  float s = 0;
  for (int i = 0; i < 16; ++i) s += o[i];
  return s;
}
// Modulo 2^64 (unsigned): the lanes hold arbitrary memory in read_sum, whose signed sum overflows.
static inline uint64_t hsum_epi64(__m512i v) {
  alignas(64) uint64_t o[8];
  _mm512_store_si512(o, v);
  uint64_t s = 0;
  for (int i = 0; i < 8; ++i) s += o[i];
  return s;
}

float fma_f32(long iters) {
  __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-3f);
  MOECAP_OPAQUE_ZMM(a, b);
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(float(i));
  for (long it = 0; it < iters; ++it)
#pragma GCC unroll 16
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  __m512 s = acc[0];
  for (int i = 1; i < kChains; ++i) s = _mm512_add_ps(s, acc[i]);
  return hsum(s);
}

float dot_bf16(long iters) {
  __m512bh a = MOECAP_AS_BF16_PAIRS(_mm512_set1_epi16(0x3F80)),
           b = MOECAP_AS_BF16_PAIRS(_mm512_set1_epi16(0x3A83));  // 1.0, ~1e-3
  MOECAP_OPAQUE_ZMM(a, b);
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(float(i));
  for (long it = 0; it < iters; ++it)
#pragma GCC unroll 16
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
  __m512 s = acc[0];
  for (int i = 1; i < kChains; ++i) s = _mm512_add_ps(s, acc[i]);
  return hsum(s);
}

int32_t dot_int8(long iters) {
  __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-1);
  MOECAP_OPAQUE_ZMM(a, b);
  __m512i acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_epi32(i);
  for (long it = 0; it < iters; ++it)
#pragma GCC unroll 16
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
  __m512i s = acc[0];
  for (int i = 1; i < kChains; ++i) s = _mm512_add_epi32(s, acc[i]);
  return int32_t(hsum_epi64(s));
}

// Four interleaved sequential streams (quarters of the range): one stream per core leaves
// bandwidth unused on current cores (bench/kernel-notes.md).
uint64_t read_sum(const void* p, size_t bytes) {
  const size_t q = bytes / 4 / 64;  // zmm per stream (bytes: a multiple of 512)
  const __m512i* v0 = static_cast<const __m512i*>(p);
  const __m512i *v1 = v0 + q, *v2 = v1 + q, *v3 = v2 + q;
  __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
  for (size_t i = 0; i + 2 <= q; i += 2) {
    s0 = _mm512_add_epi64(s0, _mm512_add_epi64(_mm512_load_si512(v0 + i), _mm512_load_si512(v0 + i + 1)));
    s1 = _mm512_add_epi64(s1, _mm512_add_epi64(_mm512_load_si512(v1 + i), _mm512_load_si512(v1 + i + 1)));
    s2 = _mm512_add_epi64(s2, _mm512_add_epi64(_mm512_load_si512(v2 + i), _mm512_load_si512(v2 + i + 1)));
    s3 = _mm512_add_epi64(s3, _mm512_add_epi64(_mm512_load_si512(v3 + i), _mm512_load_si512(v3 + i + 1)));
  }
  return hsum_epi64(_mm512_add_epi64(_mm512_add_epi64(s0, s1), _mm512_add_epi64(s2, s3)));
}

// Two sequential streams (halves of the range), each prefetched in software as the decode tiles
// prefetch their panels (x86_prefetch.h prefetch_stream); past a stream's end the prefetches name
// bytes it does not read, which never faults.
uint64_t read_sum_prefetched(const void* p, size_t bytes) {
  const size_t h = bytes / 2 / 64;  // zmm per stream
  const __m512i* v0 = static_cast<const __m512i*>(p);
  const __m512i* v1 = v0 + h;
  __m512i s0 = _mm512_setzero_si512(), s1 = s0;
  for (size_t i = 0; i + 2 <= h; i += 2) {
    for (const __m512i* v : {v0 + i, v1 + i}) {
      prefetch_stream(v);
      prefetch_stream(v + 1);
    }
    s0 = _mm512_add_epi64(s0, _mm512_add_epi64(_mm512_load_si512(v0 + i), _mm512_load_si512(v0 + i + 1)));
    s1 = _mm512_add_epi64(s1, _mm512_add_epi64(_mm512_load_si512(v1 + i), _mm512_load_si512(v1 + i + 1)));
  }
  return hsum_epi64(_mm512_add_epi64(s0, s1));
}

}  // namespace

const PeakLoops& avx512_peak_loops() {
  static const PeakLoops t = {"avx512",
                              fma_f32,
                              kChains * 16 * 2.0,  // 16 lanes × multiply-add
                              dot_bf16,
                              kChains * 16 * 2 * 2.0,  // 16 lanes × 2 products, each a multiply-add
                              dot_int8,
                              kChains * 16 * 4 * 2.0,  // 16 lanes × 4 byte products, each a multiply-add
                              read_sum,
                              read_sum_prefetched};
  return t;
}

}  // namespace moecap
