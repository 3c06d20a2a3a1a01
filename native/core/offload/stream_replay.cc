#include "offload/stream_replay.h"

#include <algorithm>
#include <string>
#include <utility>

#include "error.h"
#include "offload/cache_policy.h"
#include "offload/slot_table.h"

namespace moecap {
namespace {

// The unpinned residents and the rule of stream_replay.h per pass. lru (and static's stream
// slots) keep them least recent first, which is their eviction order; lfu and lfru keep them in
// any order with every expert's usage (counted as SlotTable counts it) and choose a pass's victims
// by cache_policy.h's order at that pass.
//
// A pass is three loops without a branch on the data (a replay's hits and misses alternate at
// random): the pass's ids are marked needed, counted and its unpinned ones collected; the
// residents not needed are compacted into the next list but the ones evicted; then the pass's
// unpinned experts that stay are appended in ascending id (the order of their ticks). Each id is
// written at the end of the next list and only a kept one moves the end, so the lists (at most
// `slots` ids, one spare for that write) are allocated once. The needed mark is the pass number
// in its own array: a plain store, where a flag in state_ would be a read-modify-write of the byte
// the next loops read (static16 at E = 256, k = 8, T = 1: 5.1 against 5.8 ns per use).
template <CachePolicy P>
class StreamSlots {
  static constexpr bool kRecency = P == CachePolicy::LRU || P == CachePolicy::Static;
  // state_ per expert: one byte read per id tells hit, miss or pinned.
  static constexpr uint8_t kResident = 1, kPinned = 4;

 public:
  // `residents`: the unpinned residents (lru, static: least recent first), at most `slots`;
  // `pinned`: [E] flags; `usage`, `tick`, `passes_done`: the counters so far (lfu, lfru).
  StreamSlots(int experts, int slots, const std::vector<int32_t>& residents, const std::vector<char>& pinned,
              std::vector<ExpertUsage> usage, int64_t tick, int64_t passes_done)
      : slots_(slots),
        count_(int(residents.size())),
        residents_(size_t(slots) + 1),
        next_(size_t(slots) + 1),
        pass_unpinned_(size_t(experts)),
        needed_at_(size_t(experts), -1),
        state_(size_t(experts), 0),
        usage_(std::move(usage)),
        tick_(tick),
        pass_(passes_done) {
    for (int e = 0; e < experts; ++e) state_[size_t(e)] = pinned[size_t(e)] ? kPinned : 0;
    std::copy(residents.begin(), residents.end(), residents_.begin());
    for (int32_t e : residents) state_[size_t(e)] |= kResident;
  }

  void pass(const int32_t* need, int n, ReplayCounts& r) {
    ++pass_;
    uint8_t* st = state_.data();
    int32_t* mine = pass_unpinned_.data();
    int h = 0, m = 0;
    for (int j = 0; j < n; ++j) {
      const int32_t e = need[j];
      const uint8_t s = st[e];
      const int unpinned = (s >> 2) ^ 1;
      if (!kRecency) note_use(usage_[size_t(e)], ++tick_, pass_);
      needed_at_[size_t(e)] = pass_;
      h += s & kResident;
      mine[m] = e;
      m += unpinned;
    }
    const int q = m - h, R = count_, S = slots_;
    ++r.passes;
    r.hits += n - q;
    r.misses += q;
    r.loads += q;
    r.evictions += q - std::min(q, S - R);
    const bool waves = m > S;
    // No waves: the R + q - S earliest unneeded leave; waves: every unneeded one.
    int c = keep_unneeded(waves ? R - h : std::max(0, R + q - S));
    // The pass's unpinned experts that stay: all of them without waves; with waves the last S of
    // (hits, misses), i.e. the misses from miss_from on and the hits from hit_from on.
    const int miss_from = std::max(0, q - S), hit_from = std::max(0, h - std::max(0, S - q));
    int32_t* out = next_.data();
    for (int j = 0, hr = 0, mr = 0; j < m; ++j) {
      const int32_t e = mine[j];
      const int hit = st[e] & kResident, miss = hit ^ 1;
      const int keep = (hit & int(hr >= hit_from)) | (miss & int(mr >= miss_from));
      hr += hit;
      mr += miss;
      out[c] = e;
      c += keep;
      st[e] = uint8_t(keep);
    }
    count_ = c;
    residents_.swap(next_);
  }

 private:
  // The residents the pass does not need go to next_ (lru: in their order), but the `leave`
  // earliest of them in the policy's order, which are evicted → how many stay.
  int keep_unneeded(int leave) {
    uint8_t* st = state_.data();
    const int32_t* res = residents_.data();
    int32_t* out = next_.data();
    int c = 0;
    if (kRecency) {
      for (int i = 0, unneeded = 0; i < count_; ++i) {
        const int32_t x = res[i];
        const uint8_t s = st[x];
        const int u = needed_at_[size_t(x)] != pass_, keep = u & int(unneeded >= leave);
        unneeded += u;
        out[c] = x;
        c += keep;
        st[x] = uint8_t(s - (u & (keep ^ 1)));  // an evicted one is no longer resident
      }
      return c;
    }
    for (int i = 0; i < count_; ++i) {
      out[c] = res[i];
      c += needed_at_[size_t(res[i])] != pass_;
    }
    if (leave == 0) return c;
    if (leave < c) {
      const int64_t now = pass_;
      const ExpertUsage* u = usage_.data();
      std::nth_element(out, out + (leave - 1), out + c, [u, now](int32_t a, int32_t b) {
        return evict_before(P, u[size_t(a)], a, u[size_t(b)], b, now);
      });
    }
    for (int i = 0; i < leave; ++i) st[out[i]] = 0;
    std::copy(out + leave, out + c, out);
    return c - leave;
  }

  const int slots_;
  int count_;                              // residents_ in use
  std::vector<int32_t> residents_, next_;  // the unpinned residents; the next pass's (slots + 1 each)
  std::vector<int32_t> pass_unpinned_;     // the pass's experts not pinned, ascending
  std::vector<int64_t> needed_at_;         // [E]: the last pass that needed e
  std::vector<uint8_t> state_;             // [E]: kResident or kPinned
  std::vector<ExpertUsage> usage_;         // [E] (lfu, lfru)
  int64_t tick_, pass_;
};

template <CachePolicy P>
void stream(const PassSets& p, int64_t from, int slots, const std::vector<int32_t>& residents,
            const std::vector<char>& pinned, std::vector<ExpertUsage> usage, int64_t tick, ReplayCounts& r) {
  const int E = int(pinned.size());
  StreamSlots<P> s(E, slots, residents, pinned, std::move(usage), tick, from);
  for (int64_t i = from; i < p.passes(); ++i)
    s.pass(p.experts.data() + p.offsets[size_t(i)], int(p.offsets[size_t(i + 1)] - p.offsets[size_t(i)]), r);
}

// The table's unpinned residents, least recent first (lru's and static's order is the last tick).
std::vector<int32_t> unpinned_by_recency(const SlotTable& t) {
  std::vector<int32_t> order;
  for (int e : t.resident())
    if (!t.pinned_static(e)) order.push_back(e);
  std::sort(order.begin(), order.end(),
            [&t](int32_t a, int32_t b) { return t.usage(a).last_tick < t.usage(b).last_tick; });
  return order;
}

// Static: the profile run, the pin, then SlotTable until every pinned expert is resident (a
// pinned miss takes a slot for good, so until then the stream slots change in number); the rest
// streams beside the pins.
ReplayCounts replay_static(const PassSets& p, const ReplayLayer& layer, int cap) {
  const int E = layer.experts;
  const int64_t P = p.passes();
  const int32_t* ids = p.experts.data();
  const int64_t* at = p.offsets.data();
  SlotTable table(E, cap, CachePolicy::Static, static_stream_slots(layer.top_k, cap));
  static_assert(sizeof(int32_t) == sizeof(int), "pass sets hand their ids to the table as int");
  const int* tids = reinterpret_cast<const int*>(ids);
  int64_t i = std::min(P, int64_t(layer.static_profile_passes));
  table.replay(tids, at, i);
  if (i == P) return counts_of(table.stats());
  const std::vector<int> pin = table.pin_static();
  std::vector<char> pinned(size_t(E), 0), waiting(size_t(E), 0);
  int missing = 0;
  for (int e : pin) {
    pinned[size_t(e)] = 1;
    if (table.slot_of(e) < 0) waiting[size_t(e)] = 1, ++missing;
  }
  for (; i < P && missing > 0; ++i) {
    for (int64_t j = at[i]; j < at[i + 1]; ++j) {
      char& w = waiting[size_t(ids[j])];
      missing -= w;
      w = 0;
    }
    table.replay(tids, at + i, 1);
  }
  ReplayCounts r = counts_of(table.stats());
  stream<CachePolicy::Static>(p, i, cap - int(pin.size()), unpinned_by_recency(table), pinned, {}, 0, r);
  return r;
}

}  // namespace

ReplayCounts counts_of(const SlotStats& s) {
  ReplayCounts r;
  r.passes = s.passes;
  r.hits = s.hits;
  r.misses = s.misses;
  r.loads = s.loads;
  r.evictions = s.evictions;
  return r;
}

ReplayCounts replay_streaming(const PassSets& p, const ReplayLayer& layer, int capacity, CachePolicy policy) {
  if (capacity < 1) throw_range("capacity must be >= 1, got " + std::to_string(capacity));
  const int E = layer.experts, cap = std::min(capacity, E);
  ReplayCounts r;
  const std::vector<char> none(size_t(E), 0);
  switch (policy) {
    case CachePolicy::Static: return replay_static(p, layer, cap);
    case CachePolicy::LRU: stream<CachePolicy::LRU>(p, 0, cap, {}, none, {}, 0, r); break;
    case CachePolicy::LFU:
      stream<CachePolicy::LFU>(p, 0, cap, {}, none, std::vector<ExpertUsage>(size_t(E)), 0, r);
      break;
    case CachePolicy::LFRU:
      stream<CachePolicy::LFRU>(p, 0, cap, {}, none, std::vector<ExpertUsage>(size_t(E)), 0, r);
      break;
  }
  return r;
}

}  // namespace moecap
