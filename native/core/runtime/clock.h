#pragma once
#include <chrono>
#include <cstdint>

namespace moecap {
// Monotonic nanoseconds for phase timings.
inline int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace moecap
