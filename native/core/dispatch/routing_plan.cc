#include "dispatch/routing_plan.h"

namespace moecap {

void build_routing_plan(const int32_t* ids, int T, int k, int E, int64_t capacity, RoutingPlan& plan) {
  build_routing_plan(ids, T, k, E, std::vector<int64_t>(size_t(E), capacity), plan);
}

void build_routing_plan(const int32_t* ids, int T, int k, int E, const std::vector<int64_t>& capacity,
                        RoutingPlan& plan) {
  plan.experts = E;
  plan.counts.assign(size_t(E), 0);
  plan.offsets.assign(size_t(E) + 1, 0);
  plan.token_slot.assign(size_t(T) * k, -1);
  plan.dropped = 0;
  // Histogram with capacity: assignment order is token order, so drops hit the latest tokens.
  for (int64_t a = 0; a < int64_t(T) * k; ++a) {
    int32_t& c = plan.counts[ids[a]];
    if (c < capacity[size_t(ids[a])]) {
      plan.token_slot[a] = c;  // rank within the expert for now
      ++c;
    } else {
      ++plan.dropped;
    }
  }
  plan.distinct = 0;
  for (int e = 0; e < E; ++e) {
    plan.offsets[e + 1] = plan.offsets[e] + plan.counts[e];
    plan.distinct += plan.counts[e] > 0;
  }
  const int kept = plan.offsets[E];
  plan.slot_token.resize(size_t(kept));
  plan.slot_choice.resize(size_t(kept));
  for (int64_t a = 0; a < int64_t(T) * k; ++a) {
    if (plan.token_slot[a] < 0) continue;
    int32_t slot = plan.offsets[ids[a]] + plan.token_slot[a];
    plan.token_slot[a] = slot;
    plan.slot_token[slot] = int32_t(a / k);
    plan.slot_choice[slot] = int32_t(a % k);
  }
}

}  // namespace moecap
