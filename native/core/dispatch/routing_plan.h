// The routing plan of one pass: a counting sort of the T·k (token, choice) assignments by
// expert (histogram → prefix sums → stable scatter), so each expert's rows are contiguous and in
// token order. With a capacity C, an expert keeps its first C assignments in token order and the
// rest are dropped (the token then gets nothing from that expert). Deterministic.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace moecap {

struct RoutingPlan {
  int experts = 0;
  std::vector<int32_t> counts;       // [E] kept assignments per expert
  std::vector<int32_t> offsets;      // [E+1] first slot of each expert
  std::vector<int32_t> slot_token;   // [kept] token of each slot
  std::vector<int32_t> slot_choice;  // [kept] index j of the token's choice
  std::vector<int32_t> token_slot;   // [T·k] slot of (t, j), or -1 when dropped
  int64_t dropped = 0;
  int distinct = 0;  // experts with at least one kept assignment

  int kept() const { return offsets.empty() ? 0 : offsets.back(); }
};

// ids: [T·k] expert ids in [0, E). capacity: max kept assignments per expert.
void build_routing_plan(const int32_t* ids, int tokens, int k, int experts, int64_t capacity, RoutingPlan& plan);
// The same with a capacity of its own per expert ([E]): an expert-parallel rank keeps what the
// ranks before it left of each expert's capacity.
void build_routing_plan(const int32_t* ids, int tokens, int k, int experts, const std::vector<int64_t>& capacity,
                        RoutingPlan& plan);

}  // namespace moecap
