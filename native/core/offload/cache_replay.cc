#include "offload/cache_replay.h"

#include <algorithm>
#include <limits>
#include <set>
#include <string>
#include <utility>

#include "error.h"
#include "offload/slot_table.h"

namespace moecap {

static void check_layer(const ReplayLayer& l) {
  if (l.experts < 1) throw_range("experts must be >= 1, got " + std::to_string(l.experts));
  if (l.top_k < 1 || l.top_k > l.experts)
    throw_range("topK must be in [1, experts], got " + std::to_string(l.top_k));
  if (l.tokens_per_pass < 1) throw_range("tokensPerPass must be >= 1, got " + std::to_string(l.tokens_per_pass));
  if (l.static_profile_passes < 0) throw_range("staticProfilePasses must be >= 0");
}

PassSets build_pass_sets(const int32_t* ids, int64_t tokens, const ReplayLayer& layer) {
  check_layer(layer);
  if (tokens < 0) throw_range("tokens must be >= 0");
  const int k = layer.top_k, T = layer.tokens_per_pass;
  PassSets p;
  p.offsets.reserve(size_t(tokens / T + 2));
  p.offsets.push_back(0);
  std::vector<int64_t> seen(size_t(layer.experts), -1);  // pass that last added the expert
  int64_t pass = 0;
  for (int64_t t0 = 0; t0 < tokens; t0 += T, ++pass) {
    const int64_t t1 = std::min(tokens, t0 + T);
    const size_t begin = p.experts.size();
    for (int64_t i = t0 * k; i < t1 * k; ++i) {
      const int32_t e = ids[i];
      if (e < 0) continue;
      if (e >= layer.experts)
        throw_range("expert id " + std::to_string(e) + " at token " + std::to_string(i / k) + " is out of range [0, " +
                    std::to_string(layer.experts) + ")");
      if (seen[size_t(e)] == pass) continue;
      seen[size_t(e)] = pass;
      p.experts.push_back(e);
    }
    std::sort(p.experts.begin() + long(begin), p.experts.end());
    p.offsets.push_back(int64_t(p.experts.size()));
  }
  return p;
}

ReplayCounts replay_policy(const PassSets& p, const ReplayLayer& layer, int capacity, CachePolicy policy) {
  check_layer(layer);
  if (capacity < 1) throw_range("capacity must be >= 1, got " + std::to_string(capacity));
  // The stream slots the engine's layer keeps beside a static hot set (moe_layer.cc).
  const int cap = std::min(capacity, layer.experts);
  const int stream = std::max(1, std::min(layer.top_k, cap / 2));
  SlotTable table(layer.experts, cap, policy, stream);
  std::vector<int> needed;
  const auto noop = [](int, int) {};
  const int64_t P = p.passes();
  for (int64_t i = 0; i < P; ++i) {
    if (policy == CachePolicy::Static && i == layer.static_profile_passes) table.pin_static();
    needed.assign(p.experts.begin() + long(p.offsets[size_t(i)]), p.experts.begin() + long(p.offsets[size_t(i + 1)]));
    stream_pass(table, needed, noop, noop);
  }
  const SlotStats& s = table.stats();
  ReplayCounts r;
  r.passes = s.passes;
  r.hits = s.hits;
  r.misses = s.misses;
  r.loads = s.loads;
  r.evictions = s.evictions;
  return r;
}

ReplayCounts replay_belady(const PassSets& p, const ReplayLayer& layer, int capacity) {
  check_layer(layer);
  if (capacity < 1) throw_range("capacity must be >= 1, got " + std::to_string(capacity));
  const int64_t P = p.passes();
  const size_t n = p.experts.size();
  // next[j]: the pass that next needs the expert of entry j (never again: past the end, by id).
  std::vector<int64_t> next(n);
  std::vector<int64_t> upcoming(size_t(layer.experts));
  for (int e = 0; e < layer.experts; ++e) upcoming[size_t(e)] = P + 1 + e;
  for (int64_t i = P - 1; i >= 0; --i)
    for (int64_t j = p.offsets[size_t(i)]; j < p.offsets[size_t(i + 1)]; ++j) {
      const int e = p.experts[size_t(j)];
      next[size_t(j)] = upcoming[size_t(e)];
      upcoming[size_t(e)] = i;
    }
  // Resident set ordered by next use; after each pass keep the `capacity` needed soonest. Keeping
  // any subset of (resident ∪ needed) is at least as free as an online cache, so this bounds them.
  std::set<std::pair<int64_t, int>> resident;
  std::vector<int64_t> key(size_t(layer.experts), -1);  // -1: not resident
  ReplayCounts r;
  for (int64_t i = 0; i < P; ++i) {
    ++r.passes;
    for (int64_t j = p.offsets[size_t(i)]; j < p.offsets[size_t(i + 1)]; ++j) {
      const int e = p.experts[size_t(j)];
      if (key[size_t(e)] >= 0) {
        ++r.hits;
        resident.erase({key[size_t(e)], e});
      } else {
        ++r.misses;
        ++r.loads;
      }
      key[size_t(e)] = next[size_t(j)];
      resident.insert({key[size_t(e)], e});
    }
    while ((int64_t)resident.size() > capacity) {
      auto last = std::prev(resident.end());
      key[size_t(last->second)] = -1;
      resident.erase(last);
      ++r.evictions;
    }
  }
  return r;
}

std::vector<ReplayCounts> replay_layer(const int32_t* ids, int64_t tokens, const ReplayLayer& layer,
                                       const std::vector<ReplayConfig>& configs) {
  const PassSets p = build_pass_sets(ids, tokens, layer);
  std::vector<ReplayCounts> out;
  out.reserve(configs.size());
  for (const ReplayConfig& c : configs)
    out.push_back(c.belady ? replay_belady(p, layer, c.capacity) : replay_policy(p, layer, c.capacity, c.policy));
  return out;
}

}  // namespace moecap
