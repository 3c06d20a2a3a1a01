// AVX2 ceilings: 12 chains of 256-bit FMA, and int8 multiply-adds as the int8/int4/mxfp4 kernels
// do them (vpmaddubsw: 32 u8 × s8 products summed in pairs to s16, then vpaddw into the total;
// the kernels' vpmaddwd widening comes on top, so they stay below it). No bf16 unit at this ISA
// level (the bf16 kernel widens to fp32 FMA), so no bf16 loop.
#include <immintrin.h>

#include "kernels/kernel_table.h"
#include "kernels/peak_loops.h"
#include "kernels/x86_compiler.h"
#include "kernels/x86_prefetch.h"

namespace moecap {
namespace {

constexpr int kChains = 12;

float fma_f32(long iters) {
  __m256 a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(1e-3f);
  MOECAP_OPAQUE_YMM(a, b);
  __m256 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(float(i));
  for (long it = 0; it < iters; ++it)
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  __m256 s = acc[0];
  for (int i = 1; i < kChains; ++i) s = _mm256_add_ps(s, acc[i]);
  alignas(32) float o[8];
  _mm256_store_ps(o, s);
  return o[0] + o[1] + o[2] + o[3] + o[4] + o[5] + o[6] + o[7];
}

// Each chain multiplies its own total's bytes (so the products cannot be computed once for all
// chains or hoisted out of the loop) and adds the pair sums back: 32 multiply-adds per step.
int32_t dot_int8(long iters) {
  __m256i b = _mm256_set1_epi8(-1), c = _mm256_set1_epi8(1);
  MOECAP_OPAQUE_YMM(b, c);
  __m256i acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_epi16(short(i + 1));
  for (long it = 0; it < iters; ++it)
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) acc[i] = _mm256_add_epi16(acc[i], _mm256_maddubs_epi16(acc[i], b));
  __m256i s = c;
  for (int i = 0; i < kChains; ++i) s = _mm256_add_epi16(s, acc[i]);
  alignas(32) int16_t o[16];
  _mm256_store_si256(reinterpret_cast<__m256i*>(o), s);
  int32_t r = 0;
  for (int16_t v : o) r += v;
  return r;
}

// Four interleaved sequential streams (quarters of the range), as in the AVX-512 loop.
uint64_t read_sum(const void* p, size_t bytes) {
  const size_t q = bytes / 4 / 32;  // ymm per stream (bytes: a multiple of 512)
  const __m256i* v0 = static_cast<const __m256i*>(p);
  const __m256i *v1 = v0 + q, *v2 = v1 + q, *v3 = v2 + q;
  __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
  for (size_t i = 0; i + 2 <= q; i += 2) {
    s0 = _mm256_add_epi64(s0, _mm256_add_epi64(_mm256_load_si256(v0 + i), _mm256_load_si256(v0 + i + 1)));
    s1 = _mm256_add_epi64(s1, _mm256_add_epi64(_mm256_load_si256(v1 + i), _mm256_load_si256(v1 + i + 1)));
    s2 = _mm256_add_epi64(s2, _mm256_add_epi64(_mm256_load_si256(v2 + i), _mm256_load_si256(v2 + i + 1)));
    s3 = _mm256_add_epi64(s3, _mm256_add_epi64(_mm256_load_si256(v3 + i), _mm256_load_si256(v3 + i + 1)));
  }
  alignas(32) uint64_t o[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(o),
                     _mm256_add_epi64(_mm256_add_epi64(s0, s1), _mm256_add_epi64(s2, s3)));
  return o[0] + o[1] + o[2] + o[3];
}

// Two sequential streams prefetched 2 KB ahead, and 8 KB ahead into L2 where the decode tiles
// fetch that far (where prefetcht1 skips L1: linear_avx2.h, tile_fetches), as the AVX2 tiles prefetch.
uint64_t read_sum_prefetched(const void* p, size_t bytes) {
  const size_t h = bytes / 2 / 32;  // ymm per stream
  const __m256i* v0 = static_cast<const __m256i*>(p);
  const __m256i* v1 = v0 + h;
  const bool far = cpu_prefetch_t1_skips_l1();
  __m256i s0 = _mm256_setzero_si256(), s1 = s0;
  for (size_t i = 0; i + 2 <= h; i += 2) {
    prefetch_ahead(v0 + i, kStreamNear);
    prefetch_ahead(v1 + i, kStreamNear);
    if (far) {
      prefetch_ahead_l2(v0 + i, kStreamFar);
      prefetch_ahead_l2(v1 + i, kStreamFar);
    }
    s0 = _mm256_add_epi64(s0, _mm256_add_epi64(_mm256_load_si256(v0 + i), _mm256_load_si256(v0 + i + 1)));
    s1 = _mm256_add_epi64(s1, _mm256_add_epi64(_mm256_load_si256(v1 + i), _mm256_load_si256(v1 + i + 1)));
  }
  alignas(32) uint64_t o[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(o), _mm256_add_epi64(s0, s1));
  return o[0] + o[1] + o[2] + o[3];
}

}  // namespace

const PeakLoops& avx2_peak_loops() {
  static const PeakLoops t = {"avx2",
                              fma_f32,
                              kChains * 8 * 2.0,
                              nullptr,
                              0,
                              dot_int8,
                              kChains * 32 * 2.0,  // 32 byte products per step, each a multiply-add
                              read_sum,
                              read_sum_prefetched};
  return t;
}

}  // namespace moecap
