// What one expert-parallel pass measured on this rank, and every rank's expert compute time
// (gathered after the pass) for the imbalance figure.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "error.h"

#include "offload/offload_stats.h"

namespace moecap {

struct EpPassStats {
  int rank = 0, ranks = 0;
  int64_t route_ns = 0;     // activations, router, routing plan
  int64_t dispatch_ns = 0;  // pack rows, exchange counts, exchange rows
  int64_t compute_ns = 0;   // the received rows through their experts
  int64_t combine_ns = 0;   // results back, shared expert, weighted combine
  int64_t shared_ns = 0;    // of combine_ns: the shared expert over this rank's tokens
  int64_t total_ns = 0;
  int64_t rows_sent = 0, rows_received = 0;   // routed rows out to experts / in from origins
  int64_t dropped = 0;                        // this rank's tokens' assignments over the capacity
  double bytes_sent = 0, bytes_received = 0;  // counts, rows and results, both directions
  // What this rank's expert compute read, for its S-MBU and S-MFU (lib/ep_run.ts does the arithmetic):
  int64_t rows_computed = 0;     // rows its experts computed (its own tokens' and received ones)
  int64_t experts_computed = 0;  // distinct held experts with at least one row this pass
  int64_t shared_rows = 0;       // its tokens through the shared expert (0 without one)
  double expert_bytes = 0;       // one routed expert's packed weights at the run's dtype
  double shared_bytes = 0;       // the shared expert's packed weights (0 without one)
  double row_bytes = 0;          // a computed row's activations: its input as the kernels read it + its fp32 result
  std::vector<int64_t> rank_compute_ns;  // [ranks]
  bool offloaded = false;                // this rank's experts stream from its weights file
  OffloadStats offload;                  // this rank's cache, this pass (the experts it computed)
};

// The bytes of a per-rank list that leave (or reach) rank `me`: its own block stays in memory.
inline double off_rank(const std::vector<int64_t>& bytes, int me) {
  double b = 0;
  for (size_t p = 0; p < bytes.size(); ++p)
    if (int(p) != me) b += double(bytes[p]);
  return b;
}

// After the counts exchange: how many rows each origin rank p sends this rank (recv_counts is
// [ranks][experts]); a row for an expert this rank does not hold means the ranks' placements differ.
// Returns the total.
template <class Holds>
int64_t rows_from_origins(const std::vector<int32_t>& recv_counts, int P, int E, int me, Holds holds,
                          std::vector<int64_t>& rows_from) {
  int64_t total = 0;
  for (int p = 0; p < P; ++p) {
    for (int e = 0; e < E; ++e) {
      const int32_t n = recv_counts[size_t(p) * E + e];
      if (n > 0 && !holds(e))
        throw_runtime("rank " + std::to_string(p) + " sent rows of expert " + std::to_string(e) + " to rank " +
                      std::to_string(me) + ", which does not hold it (placements differ between ranks?)");
      rows_from[size_t(p)] += n;
    }
    total += rows_from[size_t(p)];
  }
  return total;
}

// Bytes to send to and receive from each rank, `rec` bytes a row.
inline void row_bytes_per_rank(const std::vector<int64_t>& rows_to, const std::vector<int64_t>& rows_from, size_t rec,
                               std::vector<int64_t>& sb, std::vector<int64_t>& rb) {
  sb.resize(rows_to.size());
  rb.resize(rows_from.size());
  for (size_t p = 0; p < rows_to.size(); ++p) sb[p] = rows_to[p] * int64_t(rec);
  for (size_t p = 0; p < rows_from.size(); ++p) rb[p] = rows_from[p] * int64_t(rec);
}

}  // namespace moecap
