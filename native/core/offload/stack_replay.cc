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
// at each depth.
class Stack {
 public:
  // Room for lru's rewrite output (every old entry after a top of up to E experts) before it is
  // cut to `depth`, and one unused place past it; pos_ has one unused place past the experts.
  Stack(int experts, int depth)
      : depth_(depth),
        entry_(size_t(depth) + size_t(experts) + 1),
        spare_(entry_.size()),
        pos_(size_t(experts) + 1, -1),
        hits_at_(size_t(depth) + 1, 0) {}

  // Counts where the pass's experts stand (a use at depth d is a hit at every capacity > d) and
  // empties their places (kVacant), so the rewrite tells them apart without a look-up → how many
  // were in the stack.
  int find(const int32_t* need, int n) {
    int found = 0;
    const size_t unused = entry_.size() - 1;
    for (int j = 0; j < n; ++j) {
      const int32_t d = pos_[size_t(need[j])];
      ++hits_at_[size_t(d + 1)];  // [0]: not in the stack
      found += d >= 0;
      entry_[d >= 0 ? size_t(d) : unused] = kVacant;
    }
    uses_ += n;
    return found;
  }

  // lru: below the pass's experts (on top, the latest first) the old entries not needed keep their
  // order, so the new stack is a compaction, written to the spare buffer without a branch per
  // entry; the ones pushed past the deepest capacity leave.
  void rewrite_recency(const int32_t* top, int n) {
    int32_t* out = spare_.data();
    std::copy(top, top + n, out);
    int w = n;
    for (int j = 0; j < size_; ++j) {
      const int32_t x = entry_[size_t(j)];
      out[w] = x;
      w += x != kVacant;
    }
    size_ = std::min(depth_, w);
    for (int j = 0; j < size_; ++j) pos_[size_t(out[j])] = j;
    for (int j = size_; j < w; ++j) pos_[size_t(out[j])] = -1;
    entry_.swap(spare_);
  }

  // Any order: depths [0, n) take `top` (the pass's n experts), each later depth the better of
  // its old entry and the pool's best, the pool holding the old entries pushed down so far (those
  // of the top's depths first). An old entry that beats the pool stays where it is; one that loses
  // trades places with the pool's best; an emptied place takes the pool's best. Stops as soon as
  // the pool is empty past the top (every needed expert in the stack has been met, so the rest
  // stays where it is); what the pool still holds at the bottom leaves the stack.
  template <class Pool>
  void rewrite(const int32_t* top, int n, int found, Pool& pool) {
    const int old_size = size_;
    const int new_size = std::min(depth_, old_size + n - found);
    const auto put = [this](int j, int32_t y) {
      entry_[size_t(j)] = y;
      pos_[size_t(y)] = j;
    };
    int j = 0;
    for (; j < std::min(n, new_size); ++j) {
      if (j < old_size && entry_[size_t(j)] != kVacant) pool.push(entry_[size_t(j)]);
      put(j, top[j]);
    }
    for (; j < new_size && !pool.empty(); ++j) {
      const int32_t x = j < old_size ? entry_[size_t(j)] : kVacant;
      if (x == kVacant) put(j, pool.pop());
      else if (pool.beats_best(x)) put(j, pool.swap_best(x));
      // else the old entry beats the pool: it stays
    }
    for (; !pool.empty();) pos_[size_t(pool.pop())] = -1;
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
  static constexpr int32_t kVacant = -1;  // the place of an expert the current pass needs
  const int depth_;
  std::vector<int32_t> entry_, spare_;  // entry_[0, size_): the stack, the top first
  std::vector<int32_t> pos_;            // [E]: depth of e, -1 below the deepest capacity
  std::vector<int64_t> hits_at_;        // [1 + d]: uses found at depth d, [0]: not found
  int size_ = 0;
  int64_t uses_ = 0;
};

// The pool, sorted from the first evicted to the last: a pop takes the back (the best). An entry
// better than everything held costs one comparison: the common case, as the pool holds the
// entries that lost to the ones above them.
template <class Before>
class SortedPool {
 public:
  SortedPool(int room, Before before) : held_(size_t(room)), before_(before) {}
  void push(int32_t x) {
    size_t i = n_++;
    for (; i > 0 && before_(x, held_[i - 1]); --i) held_[i] = held_[i - 1];
    held_[i] = x;
  }
  int32_t pop() { return held_[--n_]; }
  bool empty() const { return n_ == 0; }
  // True when the pool's best goes after x (x would be evicted first). Not empty.
  bool beats_best(int32_t x) const { return before_(x, held_[n_ - 1]); }
  // The best leaves, x comes in → the best.
  int32_t swap_best(int32_t x) {
    const int32_t best = pop();
    push(x);
    return best;
  }

 private:
  std::vector<int32_t> held_;
  Before before_;
  size_t n_ = 0;
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

// Each pass's experts, the latest first: ticks rise along a pass's ids in SlotTable.
void latest_first(const int32_t* need, int n, std::vector<int32_t>& top) {
  top.assign(need, need + n);
  std::reverse(top.begin(), top.end());
}

// lru's walk: recency alone decides, nothing else is kept.
void walk_recency(const PassSets& p, Stack& s) {
  std::vector<int32_t> top;
  for (int64_t i = 0; i < p.passes(); ++i) {
    const int32_t* need = p.experts.data() + p.offsets[size_t(i)];
    const int n = int(p.offsets[size_t(i + 1)] - p.offsets[size_t(i)]);
    s.find(need, n);
    latest_first(need, n, top);
    s.rewrite_recency(top.data(), n);
  }
}

// lfu's and lfru's walk: uses counted the way SlotTable counts them (the pass number, then one
// tick per needed expert in the pass's order), the pass's experts on top (the latest first), the
// rest in cache_policy.h's order at the current pass (lfru's scores age with it).
template <CachePolicy P>
void walk_usage(const PassSets& p, Stack& s, int experts, int depth) {
  std::vector<ExpertUsage> usage(static_cast<size_t>(experts));
  int64_t pass = 0;
  const auto before = [&usage, &pass](int32_t a, int32_t b) {
    return evict_before(P, usage[size_t(a)], a, usage[size_t(b)], b, pass);
  };
  SortedPool<decltype(before)> pool(depth + experts + 1, before);
  std::vector<int32_t> top;
  int64_t tick = 0;
  for (int64_t i = 0; i < p.passes(); ++i) {
    const int32_t* need = p.experts.data() + p.offsets[size_t(i)];
    const int n = int(p.offsets[size_t(i + 1)] - p.offsets[size_t(i)]);
    const int found = s.find(need, n);
    ++pass;
    for (int j = 0; j < n; ++j) note_use(usage[size_t(need[j])], ++tick, pass);
    latest_first(need, n, top);
    s.rewrite(top.data(), n, found, pool);
  }
}

}  // namespace

std::vector<ReplayCounts> replay_online_stack(const PassSets& p, const ReplayLayer& layer, CachePolicy policy,
                                              const std::vector<int>& capacities) {
  if (policy == CachePolicy::Static)
    throw_range("the static policy has no stack replay (its pins depend on the capacity)");
  check_capacities(capacities, std::max(1, largest_pass(p)), layer.experts, policy_name(policy));
  const int E = layer.experts, depth = deepest(capacities);
  Stack s(E, depth);
  if (policy == CachePolicy::LRU) walk_recency(p, s);
  else if (policy == CachePolicy::LFU) walk_usage<CachePolicy::LFU>(p, s, E, depth);
  else walk_usage<CachePolicy::LFRU>(p, s, E, depth);
  return s.counts(p.passes(), distinct_experts(p, E), capacities);
}

}  // namespace moecap
