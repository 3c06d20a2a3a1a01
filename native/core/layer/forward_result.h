// What a pass of a layer returns (every backend fills the same structs).
#pragma once
#include <cstdint>
#include <vector>

#include "offload/offload_stats.h"

namespace moecap {

struct ForwardStats {
  int tokens = 0;
  int distinct_experts = 0;  // experts with ≥1 kept assignment (A in MoE-CAP)
  int64_t assignments = 0;   // kept (token, expert) pairs
  int64_t dropped = 0;       // assignments dropped by the capacity limit
  int64_t capacity = -1;     // per-expert capacity, -1 when unlimited
  double expert_bytes = 0;   // packed bytes of the distinct routed experts read
  double shared_bytes = 0;   // packed bytes of the shared expert (0 if none)
  double router_bytes = 0;   // fp32 router bytes
  double flops = 0;          // 2·H·E·T + 2·3·H·F·assignments + 2·3·H·Fs·T
  int64_t total_ns = 0, route_ns = 0, experts_ns = 0, combine_ns = 0;
  std::vector<int32_t> expert_counts;  // [E] kept rows per expert
  // Offload (when on): this pass's cache counters, and the time spent computing (route, experts,
  // combine) as opposed to waiting, for overlap = max(io, compute) / total.
  bool offloaded = false;
  OffloadStats offload;
  int64_t compute_ns = 0;
  std::vector<int> resident;  // experts resident after the pass
};

struct ForwardResult {
  std::vector<float> output;   // [T, H]  (empty for route-only)
  std::vector<int32_t> ids;    // [T, k]
  std::vector<float> weights;  // [T, k]
  ForwardStats stats;
};

struct ReferenceResult {
  std::vector<double> output;   // [n_sample, H]
  std::vector<int32_t> ids;     // [T, k] fp64 routing of every token
  std::vector<double> weights;  // [T, k]
  int64_t dropped = 0;
};

}  // namespace moecap
