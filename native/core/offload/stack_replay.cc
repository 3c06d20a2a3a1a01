#include "offload/stack_replay.h"

#include <algorithm>
#include <string>

#include "error.h"
#include "offload/cache_policy.h"

namespace moecap {

int largest_pass(const PassSets& p) {
  int64_t m = 0;
  for (int64_t i = 0; i < p.passes(); ++i) m = std::max(m, p.offsets[size_t(i + 1)] - p.offsets[size_t(i)]);
  return int(m);
}

void check_capacities(const std::vector<int>& capacities, int lo, int experts, const char* what) {
  for (int c : capacities)
    if (c < lo || c > experts)
      throw_range(std::string(what) + ": capacity " + std::to_string(c) + " outside [" + std::to_string(lo) + ", " +
                  std::to_string(experts) + "]");
}

ReplayCounts counts_from_hits(int64_t passes, int64_t uses, int64_t hits, int capacity, int distinct) {
  ReplayCounts r;
  r.passes = passes;
  r.hits = hits;
  r.misses = uses - hits;
  r.loads = r.misses;
  // Every load fills a free slot until the cache is full (nothing leaves a cache before), so the
  // loads past the first min(capacity, distinct) evict.
  r.evictions = r.misses - std::min<int64_t>(capacity, distinct);
  return r;
}

namespace {

// The stack down to the deepest capacity asked for, where each expert stands, and the hits found
// at each depth. Depth d lives at slot_[base_ + d] of a buffer with room above the top: lru puts a
// pass's experts on top by moving base_ up the buffer (down in index), so the entries below the
// deepest one the pass needed keep their places and only the part above it is rewritten. When the
// room is used up, the stack moves back to the end of the buffer (every few hundred passes).
class Stack {
 public:
  Stack(int experts, int depth, int largest)
      : depth_(depth),
        vacant_(experts),
        room_(std::max<int64_t>(4096, 64 * int64_t(largest))),
        slot_(size_t(1 + room_ + depth), 0),
        where_(size_t(experts) + 1, kOut),
        hits_at_(size_t(depth) + 1, 0),
        base_(1 + room_) {}

  // Counts where the pass's experts stand (a use at depth d is a hit at every capacity > d) and
  // empties their places (vacant_), so the rewrite tells them apart without a look-up → how many
  // were in the stack. Without a branch on found or not (a replay's hits and misses alternate at
  // random): a miss counts at [0] and empties slot_[0], which is never part of the stack.
  int find(const int32_t* need, int n) {
    int found = 0;
    int64_t deepest = 0;
    for (int j = 0; j < n; ++j) {
      const int64_t at = where_[size_t(need[j])];
      const uint64_t d = uint64_t(at - base_);
      const int64_t in = d < uint64_t(size_);
      const int64_t below = int64_t(d + 1) & -in;  // 1 + depth, 0 when not in the stack
      ++hits_at_[size_t(below)];
      found += int(in);
      slot_[size_t(at & -in)] = vacant_;
      deepest = std::max(deepest, below);
    }
    uses_ += n;
    needed_to_ = int(deepest);
    return found;
  }

  // lru: the pass's experts on top (need ascending, the order of their ticks: the latest first on
  // the stack), below them the old entries not needed in their order. Only the depths down to the
  // deepest needed expert change places (compacted downwards, from the bottom up); the ones below
  // move down as one by base_'s move. Those pushed past the deepest capacity leave: their places
  // count as below the stack.
  void rewrite_recency(const int32_t* need, int n, int found) {
    if (base_ - (n - found) < 1) move_to_end();
    int64_t w = base_ + needed_to_ - 1;
    for (int64_t j = w; j >= base_; --j) {
      const int32_t x = slot_[size_t(j)];
      slot_[size_t(w)] = x;
      where_[size_t(x)] = w;
      w -= x != vacant_;
    }
    base_ -= n - found;
    for (int j = 0; j < n; ++j) {
      const int32_t e = need[n - 1 - j];
      slot_[size_t(base_ + j)] = e;
      where_[size_t(e)] = base_ + j;
    }
    size_ = std::min(depth_, size_ + n - found);
  }

  // Any order: depths [0, n) take the pass's n experts (the latest first), each later depth the
  // better of its old entry and the pool's best, the pool holding the old entries pushed down so
  // far (first those of the top's depths; an emptied or unfilled place counts as an entry worse
  // than any). An old entry that beats the pool stays where it is; one that loses trades places
  // with the pool's best (an emptied place takes the best). Stops as soon as the pool holds no
  // expert (every needed expert in the stack has been met, so the rest stays where it is); the
  // experts the pool still holds at the bottom leave the stack.
  template <class Pool>
  void rewrite(const int32_t* need, int n, int found, Pool& pool) {
    const int old_size = size_;
    const int new_size = std::min(depth_, old_size + n - found);
    int32_t* at = slot_.data() + base_;
    const auto put = [this, at](int j, int32_t y) {
      at[j] = y;
      where_[size_t(y)] = base_ + j;
    };
    pool.reset();
    for (int j = 0; j < n; ++j) {
      if (j < old_size && at[j] != vacant_) pool.push(at[j]);
      put(j, need[n - 1 - j]);
    }
    for (int j = n; j < new_size && !pool.empty(); ++j) {
      const int32_t x = j < old_size ? at[j] : vacant_;
      if (x == vacant_) put(j, pool.pop());
      else if (pool.beats_best(x)) put(j, pool.swap_best(x));
      // else the old entry beats the pool: it stays
    }
    for (; !pool.empty();) where_[size_t(pool.pop())] = kOut;
    size_ = new_size;
  }

  // Counts at each capacity from the hits at each depth.
  std::vector<ReplayCounts> counts(int64_t passes, int distinct, const std::vector<int>& capacities) const {
    std::vector<int64_t> hits_within(hits_at_.size(), 0);  // [c]: hits at depths < c
    for (size_t d = 1; d < hits_at_.size(); ++d) hits_within[d] = hits_within[d - 1] + hits_at_[d];
    std::vector<ReplayCounts> out;
    for (int c : capacities) out.push_back(counts_from_hits(passes, uses_, hits_within[size_t(c)], c, distinct));
    return out;
  }

 private:
  static constexpr int64_t kOut = -1;  // where_ of an expert not in the stack

  // The stack back to the end of the buffer; the experts it no longer holds are marked out (their
  // old places would otherwise fall inside the stack's new ones).
  void move_to_end() {
    const int64_t to = 1 + room_;
    std::copy(slot_.begin() + base_, slot_.begin() + base_ + size_, slot_.begin() + to);
    std::fill(where_.begin(), where_.end(), kOut);
    for (int d = 0; d < size_; ++d) where_[size_t(slot_[size_t(to + d)])] = to + d;
    base_ = to;
  }

  const int depth_;
  const int32_t vacant_;          // the place of an expert the current pass needs (one past the experts)
  const int64_t room_;            // places above the top before the stack moves back
  std::vector<int32_t> slot_;     // [1 + room + depth]: [0] scratch, the stack at [base_, base_ + size_)
  std::vector<int64_t> where_;    // [E + 1]: the place of e, kOut when not in the stack
  std::vector<int64_t> hits_at_;  // [1 + d]: uses found at depth d, [0]: not found
  int64_t base_;
  int size_ = 0;
  int needed_to_ = 0;  // 1 + the deepest depth the current pass found
  int64_t uses_ = 0;
};

// The pool, sorted from the first evicted (front) to the best (back): a pop takes the back. An
// entry pushed from the top's depths is placed from the back (those are often better than
// everything held); an old entry that lost to the best is placed from the front (it is often
// worse than everything held), the front moving down into room kept below it. Either costs one
// comparison in its common case.
template <class Order>
class SortedPool {
 public:
  SortedPool(int room, const Order& order) : held_(size_t(2 * room + 2)), mid_(room + 1), order_(order) {}

  // Before a pass's rewrite (the pool is empty after each).
  void reset() { lo_ = hi_ = mid_; }
  void push(int32_t x) {
    int i = hi_++;
    for (; i > lo_ && order_.before(x, held_[size_t(i - 1)]); --i) held_[size_t(i)] = held_[size_t(i - 1)];
    held_[size_t(i)] = x;
  }
  int32_t pop() { return held_[size_t(--hi_)]; }
  bool empty() const { return lo_ == hi_; }
  // True when the pool's best goes after x (x would be evicted first). Not empty.
  bool beats_best(int32_t x) const { return order_.before(x, held_[size_t(hi_ - 1)]); }
  // The best leaves, x (which it beats) comes in → the best.
  int32_t swap_best(int32_t x) {
    const int32_t best = pop();
    int i = lo_--;
    for (; i < hi_ && order_.before(held_[size_t(i)], x); ++i) held_[size_t(i - 1)] = held_[size_t(i)];
    held_[size_t(i - 1)] = x;
    return best;
  }

 private:
  std::vector<int32_t> held_;
  const int mid_;
  const Order& order_;
  int lo_ = 0, hi_ = 0;
};

int deepest(const std::vector<int>& capacities) {
  return capacities.empty() ? 0 : *std::max_element(capacities.begin(), capacities.end());
}

// The distinct experts of the whole layer (its pass sets' union).
int distinct_experts(const PassSets& p, int experts) {
  std::vector<uint8_t> seen(size_t(experts), 0);
  for (int32_t e : p.experts) seen[size_t(e)] = 1;
  return int(std::count(seen.begin(), seen.end(), uint8_t(1)));
}

// lru's walk: recency alone decides, nothing else is kept.
void walk_recency(const PassSets& p, Stack& s) {
  for (int64_t i = 0; i < p.passes(); ++i) {
    const int32_t* need = p.experts.data() + p.offsets[size_t(i)];
    const int n = int(p.offsets[size_t(i + 1)] - p.offsets[size_t(i)]);
    s.rewrite_recency(need, n, s.find(need, n));
  }
}

// cache_policy.h's order at the current pass between two stack entries; the empty place (one past
// the experts, never used) goes before every expert.
template <CachePolicy P>
class UsageOrder {
 public:
  explicit UsageOrder(int experts) : usage_(size_t(experts) + 1) {}
  void use(int32_t e, int64_t tick) { note_use(usage_[size_t(e)], tick, pass_); }
  void next_pass() { ++pass_; }
  bool before(int32_t a, int32_t b) const { return evict_before(P, usage_[size_t(a)], a, usage_[size_t(b)], b, pass_); }

 private:
  std::vector<ExpertUsage> usage_;
  int64_t pass_ = 0;
};

// lfu's and lfru's walk: uses counted the way SlotTable counts them (the pass number, then one
// tick per needed expert in the pass's order), the pass's experts on top (the latest first), the
// rest in cache_policy.h's order at the current pass (lfru's scores age with it).
template <CachePolicy P>
void walk_usage(const PassSets& p, Stack& s, int experts, int depth) {
  UsageOrder<P> order(experts);
  SortedPool<UsageOrder<P>> pool(depth, order);
  int64_t tick = 0;
  for (int64_t i = 0; i < p.passes(); ++i) {
    const int32_t* need = p.experts.data() + p.offsets[size_t(i)];
    const int n = int(p.offsets[size_t(i + 1)] - p.offsets[size_t(i)]);
    const int found = s.find(need, n);
    order.next_pass();
    for (int j = 0; j < n; ++j) order.use(need[j], ++tick);
    s.rewrite(need, n, found, pool);
  }
}

}  // namespace

std::vector<ReplayCounts> replay_online_stack(const PassSets& p, const ReplayLayer& layer, CachePolicy policy,
                                              const std::vector<int>& capacities) {
  if (policy == CachePolicy::Static)
    throw_range("the static policy has no stack replay (its pins depend on the capacity)");
  const int E = layer.experts, largest = std::max(1, largest_pass(p));
  check_capacities(capacities, largest, E, policy_name(policy));
  const int depth = deepest(capacities);
  Stack s(E, depth, largest);
  if (policy == CachePolicy::LRU) walk_recency(p, s);
  else if (policy == CachePolicy::LFU) walk_usage<CachePolicy::LFU>(p, s, E, depth);
  else walk_usage<CachePolicy::LFRU>(p, s, E, depth);
  return s.counts(p.passes(), distinct_experts(p, E), capacities);
}

}  // namespace moecap
