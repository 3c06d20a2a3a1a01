// Eviction scores of the resident-expert cache: the candidate with the lowest score is evicted,
// ties go to the least recently used (then the lower expert id), so every policy is deterministic.
//   lru    last access tick
//   lfu    passes that used the expert (all time), then recency
//   lfru   frequency / (1 + passes since last use): frequent experts survive a short absence, old
//          popularity fades
//   static the profiled hot set is never a candidate; the rest is LRU
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "offload/offload_config.h"

namespace moecap {

struct ExpertUsage {
  int64_t uses = 0;       // passes that needed the expert
  int64_t last_tick = 0;  // access tick of the last use
  int64_t last_pass = 0;  // pass number of the last use
};

// Records that a pass needed the expert (both caches count uses the same way).
inline void note_use(ExpertUsage& u, int64_t tick, int64_t pass) {
  ++u.uses;
  u.last_tick = tick;
  u.last_pass = pass;
}

// True when `a` should be evicted before `b`.
inline bool evict_before(CachePolicy p, const ExpertUsage& a, int ea, const ExpertUsage& b, int eb, int64_t pass) {
  if (p == CachePolicy::LFU && a.uses != b.uses) return a.uses < b.uses;
  if (p == CachePolicy::LFRU) {
    // Compare uses_a / (1 + age_a) < uses_b / (1 + age_b) exactly, in integers.
    const int64_t sa = a.uses * (1 + pass - b.last_pass), sb = b.uses * (1 + pass - a.last_pass);
    if (sa != sb) return sa < sb;
  }
  if (a.last_tick != b.last_tick) return a.last_tick < b.last_tick;
  return ea < eb;
}

// Given evict_before(p, a, ea, b, eb, pass): the first pass after `pass` at which it is false, or
// INT64_MAX when it stays true while both keys are unchanged. Only lfru's order moves with the pass:
// d(P) = b.uses*(1+P-a.last) - a.uses*(1+P-b.last) is linear in P, so it changes sign at most once,
// and only when a has more uses than b.
inline int64_t evict_order_flips(CachePolicy p, const ExpertUsage& a, int ea, const ExpertUsage& b, int eb,
                                 int64_t pass) {
  constexpr int64_t never = INT64_MAX;
  if (p != CachePolicy::LFRU || b.uses >= a.uses) return never;
  const int64_t D = a.uses - b.uses;  // d(P) = B - D*P
  const int64_t B = b.uses * (1 - a.last_pass) - a.uses * (1 - b.last_pass);
  const auto floor_div = [](int64_t x, int64_t y) { return x / y - ((x % y != 0) && ((x < 0) != (y < 0))); };
  const bool tie_to_a = a.last_tick != b.last_tick ? a.last_tick < b.last_tick : ea < eb;
  // a stays first while d > 0, and at d == 0 when the tie goes to a.
  const int64_t at = tie_to_a ? floor_div(B, D) + 1 : -floor_div(-B, D);
  return std::max(at, pass + 1);
}

// Static policy: the slots kept beside `slots` resident ones for the experts outside the hot set,
// a pass's worth (top_k) where half the slots allow it, never none. The CPU layer, the CUDA store
// and the cache replay all size them here.
inline int static_stream_slots(int top_k, int slots) { return std::max(1, std::min(top_k, slots / 2)); }

// Static policy: the `n` most used experts so far (the profile run; ties to the lower id, never an
// unused one), marked in `is_static` [E] and returned ascending. Shared by the CPU cache and the
// CUDA slot table.
inline std::vector<int> choose_static(const std::vector<ExpertUsage>& usage, int n, std::vector<char>& is_static) {
  const int E = (int)usage.size();
  std::vector<int> order(size_t(E), 0);
  for (int e = 0; e < E; ++e) order[size_t(e)] = e;
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return usage[size_t(a)].uses > usage[size_t(b)].uses; });
  std::fill(is_static.begin(), is_static.end(), 0);
  std::vector<int> pinned;
  for (int i = 0; i < n && i < E; ++i) {
    if (usage[size_t(order[size_t(i)])].uses == 0) break;
    is_static[size_t(order[size_t(i)])] = 1;
    pinned.push_back(order[size_t(i)]);
  }
  std::sort(pinned.begin(), pinned.end());
  return pinned;
}

}  // namespace moecap
