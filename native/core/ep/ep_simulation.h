// Expert parallelism simulated in one process: P ranks (a layer holding its placement's experts
// and a thread each) over the loopback transport. Rank r routes tokens [T·r/P, T·(r+1)/P) of x —
// the split a real run uses — and the outputs are concatenated back in token order.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "ep/ep_pass_stats.h"
#include "ep/expert_placement.h"
#include "layer/forward_result.h"
#include "layer_config.h"
#include "offload/offload_config.h"
#include "weights/weight_source.h"

namespace moecap {

struct EpSimulationResult {
  std::vector<float> output;           // [T, H]
  std::vector<int32_t> ids;            // [T, k]
  std::vector<EpPassStats> ranks;      // [P]
  std::vector<std::vector<int>> held;  // [P] experts each rank holds
};

// First token of rank r's share of T tokens over P ranks.
inline int ep_first_token(int T, int P, int r) { return int(int64_t(T) * r / P); }

// `offload`: each rank's experts stream from its own weights file (rank_offload), as in a real run.
EpSimulationResult simulate_ep(const LayerConfig& config, std::shared_ptr<const WeightSource> weights,
                               const std::string& isa, const ExpertPlacement& placement, const float* x, int tokens,
                               const OffloadConfig& offload = OffloadConfig());

}  // namespace moecap
