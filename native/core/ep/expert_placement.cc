#include "ep/expert_placement.h"

#include <algorithm>
#include <numeric>

#include "error.h"

namespace moecap {

std::vector<bool> ExpertPlacement::held_by(int rank) const {
  std::vector<bool> h(size_t(experts), false);
  for (int e = 0; e < experts; ++e)
    for (int r : holders[size_t(e)]) h[size_t(e)] = h[size_t(e)] || r == rank;
  return h;
}

int ExpertPlacement::rank_for(int e, int origin, int token) const {
  const std::vector<int>& h = holders[size_t(e)];
  if (std::find(h.begin(), h.end(), origin) != h.end()) return origin;
  return h[size_t(token) % h.size()];
}

namespace {

// Experts by load, heaviest first (ties: lower id first).
std::vector<int> by_load(const std::vector<double>& loads) {
  std::vector<int> order(loads.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return loads[size_t(a)] > loads[size_t(b)]; });
  return order;
}

void place_balanced(ExpertPlacement& p, const std::vector<double>& loads) {
  const int cap = (p.experts + p.ranks - 1) / p.ranks;
  std::vector<double> rank_load(size_t(p.ranks), 0);
  std::vector<int> rank_count(size_t(p.ranks), 0);
  for (int e : by_load(loads)) {
    int best = -1;
    for (int r = 0; r < p.ranks; ++r)
      if (rank_count[size_t(r)] < cap && (best < 0 || rank_load[size_t(r)] < rank_load[size_t(best)])) best = r;
    p.holders[size_t(e)].push_back(best);
    rank_load[size_t(best)] += loads[size_t(e)];
    ++rank_count[size_t(best)];
  }
}

void add_replicas(ExpertPlacement& p, const std::vector<double>& loads, int R) {
  // Each holder serves an equal share of its expert's load.
  std::vector<double> rank_load(size_t(p.ranks), 0);
  for (int e = 0; e < p.experts; ++e)
    for (int r : p.holders[size_t(e)]) rank_load[size_t(r)] += loads[size_t(e)] / double(p.holders[size_t(e)].size());
  const std::vector<int> order = by_load(loads);
  for (int i = 0; i < R; ++i) {
    const int e = order[size_t(i)];
    std::vector<int>& h = p.holders[size_t(e)];
    if (int(h.size()) >= p.ranks) continue;
    int best = -1;
    for (int r = 0; r < p.ranks; ++r)
      if (std::find(h.begin(), h.end(), r) == h.end() && (best < 0 || rank_load[size_t(r)] < rank_load[size_t(best)]))
        best = r;
    const double before = loads[size_t(e)] / double(h.size()), after = loads[size_t(e)] / double(h.size() + 1);
    for (int r : h) rank_load[size_t(r)] += after - before;
    rank_load[size_t(best)] += after;
    h.push_back(best);
    std::sort(h.begin(), h.end());
  }
}

}  // namespace

ExpertPlacement place_experts(int E, int P, const std::string& kind, int R, const std::vector<double>& loads) {
  if (P < 1) throw_option("ep.ranks must be an integer >= 1, got " + std::to_string(P));
  if (kind != "contiguous" && kind != "balanced")
    throw_option("ep.placement must be 'contiguous' or 'balanced', got '" + kind + "'");
  if (R < 0 || R > E)
    throw_option("ep.redundant must be an integer in [0, " + std::to_string(E) + "] (the experts), got " +
                 std::to_string(R));
  if (!loads.empty() && loads.size() != size_t(E))
    throw_option("ep.loads must hold one load per expert (" + std::to_string(E) + "), got " +
                 std::to_string(loads.size()));
  for (double l : loads)
    if (!(l >= 0)) throw_option("ep.loads must be finite and >= 0");
  if (loads.empty() && (kind == "balanced" || R > 0))
    throw_option(std::string(kind == "balanced" ? "ep.placement 'balanced'" : "ep.redundant > 0") +
                 " needs per-expert loads (ep.loads, or a routing trace)");
  ExpertPlacement p;
  p.ranks = P;
  p.experts = E;
  p.kind = kind;
  p.redundant = R;
  p.holders.assign(size_t(E), {});
  if (kind == "balanced") place_balanced(p, loads);
  else
    for (int e = 0; e < E; ++e) p.holders[size_t(e)].push_back(int(int64_t(e) * P / E));
  if (R > 0) add_replicas(p, loads, R);
  return p;
}

}  // namespace moecap
