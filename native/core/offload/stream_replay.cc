#include "offload/stream_replay.h"

#include <algorithm>
#include <string>
#include <utility>

#include "error.h"
#include "offload/slot_table.h"

namespace moecap {
namespace {

// The unpinned residents, least recent first, and the rule of stream_replay.h per pass.
class StreamSlots {
 public:
  // `order`: the unpinned residents, least recent first (at most `slots`); `pinned`: [E] flags.
  StreamSlots(int experts, int slots, std::vector<int32_t> order, std::vector<char> pinned)
      : slots_(slots),
        order_(std::move(order)),
        resident_(size_t(experts), 0),
        needed_at_(size_t(experts), -1),
        pinned_(std::move(pinned)),
        hits_(size_t(experts) + 1),
        misses_(size_t(experts) + 1) {
    for (int32_t e : order_) resident_[size_t(e)] = 1;
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
      hits_[size_t(h)] = e;
      misses_[size_t(q)] = e;
      pinned += pin;
      h += res & (pin ^ 1);
      q += (res | pin) ^ 1;
    }
    const int R = int(order_.size()), m = h + q;
    ++r.passes;
    r.hits += pinned + h;
    r.misses += q;
    r.loads += q;
    r.evictions += q - std::min(q, slots_ - R);
    next_.clear();
    if (m <= slots_) {
      // The residents not needed keep their order; the first R + q − S of them leave.
      int leave = std::max(0, R + q - slots_);
      for (int32_t x : order_) {
        if (needed_at_[size_t(x)] == pass_) continue;
        if (leave > 0) {
          --leave;
          resident_[size_t(x)] = 0;
          continue;
        }
        next_.push_back(x);
      }
      std::merge(hits_.begin(), hits_.begin() + h, misses_.begin(), misses_.begin() + q, std::back_inserter(next_));
    } else {
      for (int32_t x : order_) resident_[size_t(x)] = 0;
      // The last S of (hits, misses), ascending.
      const int from_hits = std::max(0, slots_ - q);
      std::merge(hits_.begin() + (h - from_hits), hits_.begin() + h, misses_.begin() + std::max(0, q - slots_),
                 misses_.begin() + q, std::back_inserter(next_));
    }
    for (int32_t x : next_) resident_[size_t(x)] = 1;
    order_.swap(next_);
  }

 private:
  const int slots_;
  std::vector<int32_t> order_, next_;  // unpinned residents, least recent first; the next pass's
  std::vector<uint8_t> resident_;      // [E]: in order_
  std::vector<int64_t> needed_at_;     // [E]: the last pass that needed e
  std::vector<char> pinned_;           // [E]
  std::vector<int32_t> hits_, misses_;
  int64_t pass_ = 0;
};

ReplayCounts to_counts(const SlotStats& s) {
  ReplayCounts r;
  r.passes = s.passes;
  r.hits = s.hits;
  r.misses = s.misses;
  r.loads = s.loads;
  r.evictions = s.evictions;
  return r;
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

}  // namespace

ReplayCounts replay_streaming(const PassSets& p, const ReplayLayer& layer, int capacity, CachePolicy policy) {
  if (policy != CachePolicy::Static && policy != CachePolicy::LRU)
    throw_range(std::string("streaming replay is for static and lru, not ") + policy_name(policy));
  if (capacity < 1) throw_range("capacity must be >= 1, got " + std::to_string(capacity));
  const int E = layer.experts, cap = std::min(capacity, E);
  const int64_t P = p.passes();
  const int32_t* ids = p.experts.data();
  const int64_t* at = p.offsets.data();
  ReplayCounts r;
  int64_t i = 0;
  std::vector<int32_t> order;
  std::vector<char> pinned(size_t(E), 0);
  int pins = 0;
  if (policy == CachePolicy::Static) {
    // The stream slots the engine's layer keeps beside a static hot set (moe_layer.cc).
    SlotTable table(E, cap, policy, std::max(1, std::min(layer.top_k, cap / 2)));
    static_assert(sizeof(int32_t) == sizeof(int), "pass sets hand their ids to the table as int");
    const int* tids = reinterpret_cast<const int*>(ids);
    // The profile run, the pin, then the table until every pinned expert is resident (a pinned
    // miss takes a slot for good, so until then the stream slots change in number).
    i = std::min(P, int64_t(layer.static_profile_passes));
    table.replay(tids, at, i);
    if (i < P) {
      const std::vector<int> pin = table.pin_static();
      pins = int(pin.size());
      std::vector<char> waiting(size_t(E), 0);
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
    }
    r = to_counts(table.stats());
    order = unpinned_by_recency(table);
  }
  StreamSlots stream(E, cap - pins, std::move(order), std::move(pinned));
  for (; i < P; ++i) stream.pass(ids + at[i], int(at[i + 1] - at[i]), r);
  return r;
}

}  // namespace moecap
