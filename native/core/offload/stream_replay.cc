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
// A pass builds the next list in place, with no loop that branches on which expert hits (a
// replay's hits and misses alternate at random) and no copy: as its ids are marked needed, each is
// written at the end of three lists (its unpinned experts, which sit at `1 + R` in the other
// buffer; its misses, further on in that buffer; its hits), only the ones it belongs to growing.
// The residents that stay, whose number is known by then, are compacted right before the
// unpinned ones, most recent first from the end; with waves the last S misses are the next list
// where they lie, or the last S of (hits, misses) are merged into the front. The needed mark is
// the pass number in its own array: a plain store, where a flag in state_ was a read-modify-write
// of the byte the next loops read (static16 at E = 256, k = 8, T = 1: 5.1 against 5.8 ns per use).
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
        misses_at_(slots + experts + 2),
        residents_(size_t(misses_at_) + size_t(experts) + 1),
        next_(residents_.size()),
        hits_(size_t(experts) + 1),
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
    // Members read in the loops are copied first: a store through uint8_t* may alias any of them.
    const int64_t now = ++pass_;
    const int R = count_, S = slots_;
    uint8_t* st = state_.data();
    int64_t* needed_at = needed_at_.data();
    int32_t* mine = next_.data() + 1 + R;  // room before it for every resident
    int32_t *hits = hits_.data(), *misses = next_.data() + misses_at_;
    int h = 0, q = 0;
    for (int j = 0; j < n; ++j) {
      const int32_t e = need[j];
      const uint8_t s = st[e];
      if (!kRecency) note_use(usage_[size_t(e)], ++tick_, now);
      needed_at[e] = now;
      mine[h + q] = hits[h] = misses[q] = e;
      h += s & kResident;
      q += s == 0;
    }
    const int m = h + q;
    ++r.passes;
    r.hits += n - q;
    r.misses += q;
    r.loads += q;
    r.evictions += q - std::min(q, S - R);
    if (m <= S) {
      // No waves: the R + q - S earliest unneeded leave, the pass's experts follow.
      const int kept = keep_unneeded(R - h, std::max(0, R + q - S), mine);
      for (int j = 0; j < m; ++j) st[mine[j]] = kResident;
      first_ = int(mine - next_.data()) - kept;
      count_ = kept + m;
    } else {
      // Waves: every unneeded one leaves; the last S of (hits, misses) stay: the last S misses
      // where the misses fill the slots (they are the next list as they lie), else every miss
      // and the last hits merged ascending (INT32_MAX ends each list, so the merge runs S steps
      // without a bound check; it waits on its loads each step, so it runs only when needed).
      keep_unneeded(R - h, R - h, mine);
      if (q >= S) {
        first_ = int(misses - next_.data()) + q - S;
        for (int j = q - S; j < q; ++j) st[misses[j]] = kResident;
      } else {
        hits[h] = misses[q] = INT32_MAX;
        const int32_t *a = hits + h - (S - q), *b = misses;
        int32_t* out = next_.data();
        for (int j = 0; j < S; ++j) {
          const int32_t x = *a, y = *b, first = int(x < y);
          const int32_t e = first ? x : y;
          a += first;
          b += first ^ 1;
          st[out[j] = e] = kResident;
        }
        first_ = 0;
      }
      count_ = S;
    }
    residents_.swap(next_);
  }

 private:
  // The `unneeded` residents the pass does not need, but the `leave` earliest of them in the
  // policy's order (evicted), go right before `end` in the next buffer (lru: in their order) → how
  // many. Each is written, most recent first, one place before the last one kept (so at worst at
  // the buffer's first slot, which no list uses). Only the ones kept stay resident in state_ (the
  // pass's own experts are marked after it).
  int keep_unneeded(int unneeded, int leave, int32_t* end) {
    uint8_t* st = state_.data();
    const int32_t* res = residents_.data() + first_;
    const int64_t* needed_at = needed_at_.data();
    const int64_t now = pass_;
    const int R = count_;
    int32_t* out = end - 1;
    if (kRecency) {
      // From the most recent: the first `kept` unneeded stay.
      const int kept = unneeded - leave;
      for (int i = R - 1, seen = 0; i >= 0; --i) {
        const int32_t x = res[i];
        const int u = needed_at[x] != now, keep = u & int(seen < kept);
        seen += u;
        *out = x;
        out -= keep;
        st[x] = uint8_t(keep);
      }
      return kept;
    }
    // When all leave (waves) they are marked here: reading them back from the list just written
    // (at addresses known late) stalls (lfru at 4 slots, E = 256, k = 8, T = 1: 6.2 ns per use
    // that way, 4.6 this way).
    const int some_stay = int(leave < unneeded);
    for (int i = R - 1; i >= 0; --i) {
      const int32_t x = res[i];
      const int u = needed_at[x] != now;
      *out = x;
      out -= u;
      st[x] = uint8_t(u & some_stay);
    }
    if (leave == 0 || !some_stay) return unneeded - leave;
    int32_t* from = end - unneeded;
    const ExpertUsage* u = usage_.data();
    std::nth_element(from, from + (leave - 1), end,
                     [u, now](int32_t a, int32_t b) { return evict_before(P, u[size_t(a)], a, u[size_t(b)], b, now); });
    for (int i = 0; i < leave; ++i) st[from[i]] = 0;
    return unneeded - leave;
  }

  const int slots_;
  int first_ = 0, count_;  // residents_[first_, first_ + count_) in use
  // The unpinned residents; the next pass's. Each buffer: a spare slot, room for the residents kept,
  // the pass's unpinned experts, then from misses_at_ its misses (+ a sentinel).
  const int misses_at_;
  std::vector<int32_t> residents_, next_;
  std::vector<int32_t> hits_;       // the pass's hits, ascending (+ a sentinel)
  std::vector<int64_t> needed_at_;  // [E]: the last pass that needed e
  std::vector<uint8_t> state_;      // [E]: kResident or kPinned
  std::vector<ExpertUsage> usage_;  // [E] (lfu, lfru)
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
