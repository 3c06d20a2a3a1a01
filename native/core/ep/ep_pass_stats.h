// What one expert-parallel pass measured on this rank, and every rank's expert compute time
// (gathered after the pass) for the imbalance figure.
#pragma once
#include <cstdint>
#include <vector>

#include "offload/offload_stats.h"

namespace moecap {

struct EpPassStats {
  int rank = 0, ranks = 0;
  int64_t route_ns = 0;     // activations, router, routing plan
  int64_t dispatch_ns = 0;  // pack rows, exchange counts, exchange rows
  int64_t compute_ns = 0;   // the received rows through their experts
  int64_t combine_ns = 0;   // results back, shared expert, weighted combine
  int64_t total_ns = 0;
  int64_t rows_sent = 0, rows_received = 0;   // routed rows out to experts / in from origins
  double bytes_sent = 0, bytes_received = 0;  // counts, rows and results, both directions
  std::vector<int64_t> rank_compute_ns;       // [ranks]
  bool offloaded = false;                     // this rank's experts stream from its weights file
  OffloadStats offload;                       // this rank's cache, this pass (the experts it computed)
};

// The bytes of a per-rank list that leave (or reach) rank `me`: its own block stays in memory.
inline double off_rank(const std::vector<int64_t>& bytes, int me) {
  double b = 0;
  for (size_t p = 0; p < bytes.size(); ++p)
    if (int(p) != me) b += double(bytes[p]);
  return b;
}

}  // namespace moecap
