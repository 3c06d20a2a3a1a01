// Integer rounding shared by the CPU core and the CUDA kernels (host and device: plain integer
// code, so it compiles with g++ as well as nvcc).
#pragma once
#include <stddef.h>
#include <stdint.h>

#if !defined(MOECAP_HD)
#if defined(__CUDACC__)
#define MOECAP_HD __host__ __device__ __forceinline__
#else
#define MOECAP_HD inline
#endif
#endif

namespace moecap {

MOECAP_HD int round_up(int v, int m) { return (v + m - 1) / m * m; }
MOECAP_HD int64_t round_up64(int64_t v, int64_t m) { return (v + m - 1) / m * m; }
MOECAP_HD int ceil_div(int a, int b) { return (a + b - 1) / b; }
// The same for sizes (non-negative shapes widened to size_t), so v + m - 1 cannot wrap near 2^31.
MOECAP_HD size_t ceil_div_size(size_t v, size_t m) { return (v + m - 1) / m; }
MOECAP_HD size_t round_up_size(size_t v, size_t m) { return ceil_div_size(v, m) * m; }

}  // namespace moecap
