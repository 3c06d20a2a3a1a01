// Software prefetch of a weight stream, for every x86 kernel set (SSE's prefetch instructions).
// Past a stream's end the address lies outside the weights: a prefetch never faults, and the
// address is formed as an integer, not as a pointer out of its allocation.
#pragma once
#include <xmmintrin.h>

#include <cstddef>
#include <cstdint>

namespace moecap {

// The line `ahead` bytes past p, into L1 (and the levels below).
static inline void prefetch_ahead(const void* p, size_t ahead) {
  _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(p) + ahead), _MM_HINT_T0);
}

// The line `ahead` bytes past p, into L2 and below, not L1 (Intel; AMD from Zen 4 — earlier AMD
// cores fill L1 for every hint).
static inline void prefetch_ahead_l2(const void* p, size_t ahead) {
  _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(p) + ahead), _MM_HINT_T1);
}

}  // namespace moecap
