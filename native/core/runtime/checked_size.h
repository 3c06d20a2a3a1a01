// Byte counts of buffers and files: sizes are products of int shapes (H·F·E …) that pass 2^31 long
// before they pass memory, so they are formed in size_t and every product is checked. An overflow
// throws a RangeError naming what was being sized instead of wrapping to a small, wrong size.
#pragma once
#include <cstddef>
#include <string>

#include "error.h"
#include "int_math.h"

namespace moecap {

// a · b in size_t; throws naming `what` if it does not fit.
inline size_t checked_mul(size_t a, size_t b, const char* what) {
  size_t r;
  if (__builtin_mul_overflow(a, b, &r)) throw_range(std::string(what) + ": size overflows size_t");
  return r;
}
inline size_t checked_add(size_t a, size_t b, const char* what) {
  size_t r;
  if (__builtin_add_overflow(a, b, &r)) throw_range(std::string(what) + ": size overflows size_t");
  return r;
}

}  // namespace moecap
