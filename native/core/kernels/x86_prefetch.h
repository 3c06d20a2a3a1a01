// Software prefetch of a weight stream, for every x86 kernel set (SSE's prefetch instructions).
// Past a stream's end the address lies outside the weights: a prefetch never faults, and the
// address is formed as an integer, not as a pointer out of its allocation.
#pragma once
#include <xmmintrin.h>

#include <cstddef>
#include <cstdint>

namespace moecap {

// How far ahead the decode tiles fetch their weight streams, into L1 and into L2: one core keeps
// more lines in flight than the hardware prefetchers do alone (bench/kernel-notes.md).
static constexpr size_t kStreamNear = 2048, kStreamFar = 8192;

// The line `ahead` bytes past p, into L1 (and the levels below).
static inline void prefetch_ahead(const void* p, size_t ahead) {
  _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(p) + ahead), _MM_HINT_T0);
}

// The line `ahead` bytes past p, into L2 and below, not L1 (Intel; AMD from Zen 4 — earlier AMD
// cores fill L1 for every hint).
static inline void prefetch_ahead_l2(const void* p, size_t ahead) {
  _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(p) + ahead), _MM_HINT_T1);
}

// A decode tile's fetch of the line at p: kStreamNear ahead into L1 and, unless kFar is false,
// kStreamFar ahead into L2.
template <bool kFar = true>
static inline void prefetch_stream(const void* p) {
  prefetch_ahead(p, kStreamNear);
  if constexpr (kFar) prefetch_ahead_l2(p, kStreamFar);
}

}  // namespace moecap
