// The check macro of the host-side CUDA tests (plain C++, no framework): counts checks, and on a
// failure prints the condition and a printf-style message, then exits 1.
#pragma once
#include <cstdio>
#include <cstdlib>

static int g_checks = 0;
#define EXPECT(cond, ...)                                         \
  do {                                                            \
    ++g_checks;                                                   \
    if (!(cond)) {                                                \
      std::printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      std::printf(__VA_ARGS__);                                   \
      std::printf("\n");                                          \
      std::exit(1);                                               \
    }                                                             \
  } while (0)
