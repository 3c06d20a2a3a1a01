// Index arithmetic shared by the CUDA kernels and their host code (and unit-tested on the CPU by
// test/cuda/cuda_host.test.ts through cuda/test/host_index_test.cc): padded per-expert segments, the
// tile → segment lookup of the grouped GEMM, expert capacity; the GPU weight layout lives on the
// core side (backend/gpu_weight_layout.h), which the CPU loader reads too.
// Plain integer code only, so it compiles with g++ as well as nvcc.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "backend/gpu_weight_layout.h"
#include "int_math.h"

namespace moecap_cuda {

// Expert capacity C = ceil(cf·T·k/E) (at least 1), or INT32_MAX without a limit: the same
// formula as moecap::expert_capacity in the CPU core.
MOECAP_HD int64_t capacity_for(double cf, int64_t tokens, int k, int experts) {
  if (cf <= 0) return 2147483647;
  double v = cf * double(tokens) * k / experts - 1e-9;
  int64_t c = int64_t(v);
  if (double(c) < v) ++c;  // ceil without <cmath> (works in device code too)
  return c < 1 ? 1 : c;
}

// Kept rows of an expert with `count` assignments under capacity `cap`.
MOECAP_HD int kept_rows(int count, int64_t cap) { return int64_t(count) < cap ? count : int(cap); }

// Exclusive scan of segment sizes padded to `block` rows: offsets[0..n], offsets[n] = total.
// `block` = 1 gives dense segments (decode); the GEMM tile height gives tile-aligned segments.
MOECAP_HD void padded_offsets(const int* counts, int n, int block, int* offsets) {
  int acc = 0;
  for (int i = 0; i < n; ++i) {
    offsets[i] = acc;
    acc += round_up(counts[i], block);
  }
  offsets[n] = acc;
}

// Upper bound of padded rows for n_assign assignments over `segments` non-empty segments:
// every segment wastes at most block-1 rows.
MOECAP_HD int64_t padded_rows_bound(int64_t n_assign, int segments, int block) {
  return n_assign + int64_t(segments) * (block - 1);
}

// Segment holding row `row` of the padded layout (offsets ascending, offsets[n] = total), or -1
// past the end. Empty segments (offsets[i] == offsets[i+1]) are skipped: the last segment whose
// start is ≤ row and which is non-empty.
MOECAP_HD int segment_of(const int* offsets, int n, int row) {
  if (row < 0 || row >= offsets[n]) return -1;
  int lo = 0, hi = n - 1;  // find the largest i with offsets[i] <= row
  while (lo < hi) {
    int mid = (lo + hi + 1) / 2;
    if (offsets[mid] <= row) lo = mid;
    else hi = mid - 1;
  }
  // Several empty segments can share the start; the non-empty one is the last with that start.
  while (lo + 1 < n && offsets[lo + 1] <= row) ++lo;
  return lo;
}

}  // namespace moecap_cuda
