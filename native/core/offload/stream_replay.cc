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
template <CachePolicy P>
class StreamSlots {
  static constexpr bool kRecency = P == CachePolicy::LRU || P == CachePolicy::Static;

 public:
  // `residents`: the unpinned residents (lru, static: least recent first), at most `slots`;
  // `pinned`: [E] flags; `usage`, `tick`, `passes_done`: the counters so far (lfu, lfru).
  StreamSlots(int experts, int slots, std::vector<int32_t> residents, std::vector<char> pinned,
              std::vector<ExpertUsage> usage, int64_t tick, int64_t passes_done)
      : slots_(slots),
        residents_(std::move(residents)),
        resident_(size_t(experts), 0),
        needed_at_(size_t(experts), -1),
        pinned_(std::move(pinned)),
        usage_(std::move(usage)),
        hits_(size_t(experts) + 1),
        misses_(size_t(experts) + 1),
        tick_(tick),
        pass_(passes_done) {
    for (int32_t e : residents_) resident_[size_t(e)] = 1;
    next_.reserve(size_t(experts));
  }

  void pass(const int32_t* need, int n, ReplayCounts& r) {
    ++pass_;
    // Hits and misses of the unpinned, each ascending, without a branch on either (a replay's
    // hits and misses alternate at random): every id is written at the end of both lists and
    // only the one it belongs to grows.
    int h = 0, q = 0, pinned = 0;
    for (int j = 0; j < n; ++j) {
      const int32_t e = need[j];
      const int pin = pinned_[size_t(e)], res = resident_[size_t(e)];
      needed_at_[size_t(e)] = pass_;
      if (!kRecency) note_use(usage_[size_t(e)], ++tick_, pass_);
      hits_[size_t(h)] = e;
      misses_[size_t(q)] = e;
      pinned += pin;
      h += res & (pin ^ 1);
      q += (res | pin) ^ 1;
    }
    const int R = int(residents_.size());
    ++r.passes;
    r.hits += pinned + h;
    r.misses += q;
    r.loads += q;
    r.evictions += q - std::min(q, slots_ - R);
    next_.clear();
    if (h + q <= slots_) {
      keep_unneeded(std::max(0, R + q - slots_));
      // The pass's experts, ascending (the order of their ticks).
      std::merge(hits_.begin(), hits_.begin() + h, misses_.begin(), misses_.begin() + q, std::back_inserter(next_));
    } else {
      for (int32_t x : residents_) resident_[size_t(x)] = 0;
      // Waves: the last S of (hits, misses), ascending.
      const int from_hits = std::max(0, slots_ - q);
      std::merge(hits_.begin() + (h - from_hits), hits_.begin() + h, misses_.begin() + std::max(0, q - slots_),
                 misses_.begin() + q, std::back_inserter(next_));
    }
    for (int32_t x : next_) resident_[size_t(x)] = 1;
    residents_.swap(next_);
  }

 private:
  // The residents the pass does not need go to next_ (lru: in their order), but the `leave`
  // earliest of them in the policy's order, which are evicted.
  void keep_unneeded(int leave) {
    for (int32_t x : residents_)
      if (needed_at_[size_t(x)] != pass_) next_.push_back(x);
    if (leave == 0) return;
    auto first = next_.begin();
    if (!kRecency) {
      const int64_t now = pass_;
      const ExpertUsage* u = usage_.data();
      std::nth_element(next_.begin(), next_.begin() + (leave - 1), next_.end(), [u, now](int32_t a, int32_t b) {
        return evict_before(P, u[size_t(a)], a, u[size_t(b)], b, now);
      });
    }
    for (auto it = first; it != first + leave; ++it) resident_[size_t(*it)] = 0;
    next_.erase(first, first + leave);
  }

  const int slots_;
  std::vector<int32_t> residents_, next_;  // the unpinned residents; the next pass's
  std::vector<uint8_t> resident_;          // [E]: in residents_
  std::vector<int64_t> needed_at_;         // [E]: the last pass that needed e
  std::vector<char> pinned_;               // [E]
  std::vector<ExpertUsage> usage_;         // [E] (lfu, lfru)
  std::vector<int32_t> hits_, misses_;
  int64_t tick_, pass_;
};

template <CachePolicy P>
void stream(const PassSets& p, int64_t from, int slots, std::vector<int32_t> residents, std::vector<char> pinned,
            std::vector<ExpertUsage> usage, int64_t tick, ReplayCounts& r) {
  const int E = int(pinned.size());
  StreamSlots<P> s(E, slots, std::move(residents), std::move(pinned), std::move(usage), tick, from);
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
  stream<CachePolicy::Static>(p, i, cap - int(pin.size()), unpinned_by_recency(table), std::move(pinned), {}, 0, r);
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
