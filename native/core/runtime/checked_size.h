// Byte counts of buffers and files: sizes are products of int shapes (H·F·E …) that pass 2^31 long
// before they pass memory, so they are formed in size_t and every product is checked. An overflow
// throws a RangeError naming what was being sized instead of wrapping to a small, wrong size.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "error.h"
#include "int_math.h"

namespace moecap {

// a · b in size_t; throws naming `what` if it does not fit.
// GCC and clang have overflow builtins; MSVC does not: there the checks are written out.
inline size_t checked_mul(size_t a, size_t b, const char* what) {
  size_t r;
#if defined(_MSC_VER) && !defined(__clang__)
  const bool overflow = a != 0 && b > SIZE_MAX / a;
  r = a * b;
#else
  const bool overflow = __builtin_mul_overflow(a, b, &r);
#endif
  if (overflow) throw_range(std::string(what) + ": size overflows size_t");
  return r;
}
inline size_t checked_add(size_t a, size_t b, const char* what) {
  size_t r;
#if defined(_MSC_VER) && !defined(__clang__)
  const bool overflow = b > SIZE_MAX - a;
  r = a + b;
#else
  const bool overflow = __builtin_add_overflow(a, b, &r);
#endif
  if (overflow) throw_range(std::string(what) + ": size overflows size_t");
  return r;
}

}  // namespace moecap
