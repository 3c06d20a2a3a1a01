// The bookkeeping of a bounded expert cache without the loading itself: which expert sits in which
// slot, which slot a load takes (a free one, else the victim of cache_policy.h's order), which
// slots a pass still needs, usage counters, static pins, statistics. Both caches keep their books
// with it, so there is one victim selection: the CPU ExpertCache (offload/expert_cache.cc, reads
// from a file) and the CUDA store (cuda/offload.cu, device copies). It has no I/O and no CUDA in
// it, so the eviction order and the wave schedule are unit-tested on the CPU
// (cuda/test/slot_table_test.cc). lru and static keep the candidate slots in a list sorted by
// their (fixed while listed) keys, so the victim is the first one; lfu and lfru mark their
// candidates in a bit mask up to 64 slots and scan them for the victim (a few dozen comparisons,
// cheaper than keeping an order up to date on every use: lfru's scores age with the pass); above
// that lfu keeps the sorted list and lfru a kinetic tournament tree (victim_tree.h). A pass touches
// only the slots it uses, so a miss costs O(1) victim + a sorted insertion that walks from both
// ends (a used slot goes back among the most recent: a step or two for lru); with the mask
// O(candidates) up to 64 slots, with the tree O(log slots). replay() runs a trace's passes with
// the same results and a shorter path for passes without waves.
#pragma once
#include <cstdint>
#include <cstddef>
#include <vector>

#include "offload/cache_policy.h"
#include "offload/offload_config.h"
#include "offload/victim_tree.h"

namespace moecap {

// Same meanings as OffloadStats (expert_cache.h) for the fields both have.
struct SlotStats {
  int64_t passes = 0;
  int64_t hits = 0;    // needed experts resident (or on their way) at begin_pass
  int64_t misses = 0;  // needed experts loaded by their own pass
  int64_t evictions = 0;
  int64_t loads = 0;  // demand + prefetch
  int64_t prefetch_issued = 0;
  int64_t prefetch_used = 0;  // prefetched experts a later pass needed while still resident
  int64_t waves = 0;          // per pass: the most needed experts that went through one slot
};

class SlotTable;
template <class Load, class Compute>
void stream_pass(SlotTable& t, const int* needed, size_t n, Load&& load, Compute&& compute);

class SlotTable {
 public:
  // stream_slots: for static pins, slots kept for the experts outside the hot set (clamped to
  // [1, slots]). Throws std::invalid_argument for slots < 1 or experts < 1.
  SlotTable(int experts, int slots, CachePolicy policy, int stream_slots);

  int experts() const { return (int)slot_of_.size(); }
  int slots() const { return nslots_; }
  CachePolicy policy() const { return policy_; }
  int slot_of(int e) const { return slot_of_[size_t(e)]; }  // -1: not resident
  int owner(int s) const { return slots_[size_t(s)].expert; }
  bool needed(int s) const { return slots_[size_t(s)].needed; }
  bool prefetched(int s) const { return slots_[size_t(s)].prefetched; }
  bool loading(int s) const { return slots_[size_t(s)].loading; }
  bool pinned_static(int e) const { return static_[size_t(e)] != 0; }
  const ExpertUsage& usage(int e) const { return usage_[size_t(e)]; }

  // `needed`: the pass's distinct experts. Counts uses and hits/misses; resident ones are marked
  // needed so no load of this pass evicts them before done().
  void begin_pass(const int* needed, size_t n);
  void begin_pass(const std::vector<int>& needed) { begin_pass(needed.data(), needed.size()); }
  // A slot for e (not resident): a free one, else the policy's victim among slots not needed, not
  // statically pinned and whose expert is not in `protect` ([E] flags, may be null); -1 when there
  // is none. The slot then holds e: needed when `prefetch` is false. *evicted: the expert it held or -1.
  int assign(int e, bool prefetch, const std::vector<char>* protect = nullptr, int* evicted = nullptr);
  // The load into e's slot failed or never started: the slot is empty again (no eviction counted).
  void drop(int e);
  // The pass's reads of e are issued: its slot may take a later load (it is a victim candidate again).
  void done(int e);
  void end_pass();
  // A slot whose load is still in flight is never a victim (a cache that loads asynchronously marks
  // it from the start of the read to its end; drop() clears it too).
  void set_loading(int s, bool loading);

  // Loads for a future pass, in the order given, into slots nobody is using; at most slots() of
  // them, never evicting one of `experts` → the (expert, slot) pairs to load.
  std::vector<std::pair<int, int>> prefetch(const std::vector<int>& experts);
  // Static policy: pin the most used experts so far (the profile run) → the experts pinned, ascending.
  std::vector<int> pin_static();
  std::vector<int> resident() const;  // ascending
  // Runs passes [0, passes) of a replay, pass i needing ids[offsets[i] .. offsets[i + 1]) (distinct),
  // with nothing loaded or computed: after each pass the slots, candidates, usage and counters are
  // exactly what stream_pass with no-op callbacks leaves. A pass whose misses all fit into the free
  // slots and the candidates it does not need itself (no waves) takes a short path: its hits leave
  // the candidates, its misses take free slots then the earliest candidates in order, and its slots
  // go back with their new keys (lru and static: at the back, their ticks are the newest). Any
  // other pass, an lfru table on the tree, or a call inside a pass, goes through stream_pass.
  void replay(const int* ids, const int64_t* offsets, int64_t passes);
  const SlotStats& stats() const { return stats_; }
  void reset_stats() { stats_ = SlotStats(); }

 private:
  template <class Load, class Compute>
  friend void stream_pass(SlotTable& t, const int* needed, size_t n, Load&& load, Compute&& compute);
  struct Slot {
    int expert = -1;
    bool needed = false;
    bool prefetched = false;  // loaded by prefetch(), not used by a pass yet
    bool loading = false;     // a load in flight (set_loading)
    int fills = 0;            // needed experts that went through this slot in the current pass
    ExpertUsage use;          // usage_[expert], mirrored so a tree comparison reads one slot, not two arrays
  };
  // The order evict_before gives at the current pass, between the experts of two slots.
  struct Order {
    const SlotTable* t;
    int64_t now() const { return t->pass_; }
    bool kinetic() const { return t->policy_ == CachePolicy::LFRU; }  // only lfru's order moves with time
    bool before(int a, int b) const;
    int64_t flips(int w, int l) const;
  };
  bool candidate(int s) const;
  // Puts slot s among the candidates or takes it out as its flags say; `rekey`: its key changed.
  void refresh(int s, bool rekey = false);
  bool listed(int s) const {
    return store_ == Store::List ? prev_[size_t(s)] >= 0 : store_ == Store::Mask ? (mask_ >> s) & 1 : tree_.present(s);
  }
  void link_sorted(int s);
  void link_last(int s);
  void unlink(int s);
  template <CachePolicy P>
  void replay_as(const int* ids, const int64_t* offsets, int64_t passes);
  template <CachePolicy P, bool list>
  bool replay_pass(const int* needed, size_t n, bool pins, SlotStats& st);
  // The mask's (lfu, lfru) `count` earliest candidates at the current pass, in order, into `out`.
  template <CachePolicy P>
  void earliest_in_mask(int* out, int count) const;
  int victim(const std::vector<char>* protect);
  // Slots whose needed/fills the current pass may have set (cleared by begin_pass and end_pass).
  void touch(int s) { touched_.push_back(s); }

  const CachePolicy policy_;
  const int stream_slots_;
  int nslots_ = 0;  // slots_.size(), kept as an int: read on every list insertion
  std::vector<Slot> slots_;
  std::vector<int> slot_of_;
  std::vector<ExpertUsage> usage_;
  std::vector<char> static_;
  // Candidates in eviction order: a list for the orders that never change while keys are fixed
  // (prev_/next_ over slots, sentinel at index slots(); prev_ -1: not listed); for lfu and lfru a
  // bit per slot up to kMaskSlots slots (victim() scans the candidates: cheaper than an order kept
  // up to date on every use when there are few), else lfu the list and lfru the tree.
  enum class Store { List, Mask, Tree };
  static constexpr int kMaskSlots = 64;
  const Store store_;
  uint64_t mask_ = 0;
  std::vector<int> prev_, next_;
  int listed_ = 0;  // slots in the list
  VictimTree tree_;
  std::vector<int> free_;  // empty slots, a min-heap (the lowest index is taken first)
  std::vector<int> touched_;
  std::vector<int> pass_order_;  // stream_pass's hits-then-misses order, reused pass after pass
  std::vector<char> masked_;     // [slots] protected during one victim() call
  int64_t tick_ = 0, pass_ = 0;
  bool in_pass_ = false;
  SlotStats stats_;
};

inline bool SlotTable::Order::before(int a, int b) const {
  const Slot &sa = t->slots_[size_t(a)], &sb = t->slots_[size_t(b)];
  return evict_before(t->policy_, sa.use, sa.expert, sb.use, sb.expert, t->pass_);
}

inline int64_t SlotTable::Order::flips(int w, int l) const {
  if (t->policy_ != CachePolicy::LFRU) return VictimTree::kNever;
  const Slot &sw = t->slots_[size_t(w)], &sl = t->slots_[size_t(l)];
  return evict_order_flips(t->policy_, sw.use, sw.expert, sl.use, sl.expert, t->pass_);
}

inline bool SlotTable::candidate(int s) const {
  const Slot& c = slots_[size_t(s)];
  // A needed slot is out of the candidates (not merely skipped by victim()): a pass's own slots, the
  // freshly loaded ones especially, are often the policy's earliest, and skipping them one by one
  // made every miss cost O(k log slots).
  return c.expert >= 0 && !c.needed && !c.loading && !static_[size_t(c.expert)] && !masked_[size_t(s)];
}

inline void SlotTable::refresh(int s, bool rekey) {
  const bool want = candidate(s);
  if (store_ == Store::List) {
    const bool in = prev_[size_t(s)] >= 0;
    if (want == in && !(want && rekey)) return;
    if (in) unlink(s);
    if (want) link_sorted(s);
  } else if (store_ == Store::Mask) {  // victim() reads the keys when it runs: nothing to keep sorted
    const uint64_t bit = uint64_t(1) << s;
    mask_ = want ? mask_ | bit : mask_ & ~bit;
  } else if (want != tree_.present(s) || (want && rekey)) {
    tree_.set(s, want, Order{this});
  }
}

inline void SlotTable::unlink(int s) {
  const int p = prev_[size_t(s)], n = next_[size_t(s)];
  next_[size_t(p)] = n;
  prev_[size_t(n)] = p;
  prev_[size_t(s)] = -1;
  --listed_;
}

// The per-pass operations are inline: stream_pass runs them for every expert of every pass, and
// inlined there the constant arguments (no prefetch, nothing protected) fold away.
inline void SlotTable::begin_pass(const int* needed, size_t n) {
  in_pass_ = true;
  ++pass_;
  ++stats_.passes;
  for (int s : touched_) {
    slots_[size_t(s)].needed = false, slots_[size_t(s)].fills = 0;
    refresh(s);
  }
  touched_.clear();
  for (size_t i = 0; i < n; ++i) {
    const int e = needed[i];
    note_use(usage_[size_t(e)], ++tick_, pass_);
    const int s = slot_of_[size_t(e)];
    if (s < 0) {
      ++stats_.misses;
      continue;
    }
    Slot& slot = slots_[size_t(s)];
    slot.use = usage_[size_t(e)];
    ++stats_.hits;
    slot.needed = true;
    slot.fills = 1;
    refresh(s);  // out of the tree while needed (its key changed: done() puts it back rekeyed)
    touch(s);
    if (slot.prefetched) {
      ++stats_.prefetch_used;
      slot.prefetched = false;
    }
  }
}

inline int SlotTable::assign(int e, bool prefetch, const std::vector<char>* protect, int* evicted) {
  if (evicted) *evicted = -1;
  int best = -1;
  if (!free_.empty()) {
    std::pop_heap(free_.begin(), free_.end(), std::greater<int>());
    best = free_.back();
    free_.pop_back();
  } else {
    best = victim(protect);
    if (best < 0) return -1;
    Slot& v = slots_[size_t(best)];
    if (evicted) *evicted = v.expert;
    slot_of_[size_t(v.expert)] = -1;
    ++stats_.evictions;
  }
  Slot& s = slots_[size_t(best)];
  s.expert = e;
  s.use = usage_[size_t(e)];
  s.needed = !prefetch;
  s.prefetched = prefetch;
  if (!prefetch && in_pass_) ++s.fills;
  slot_of_[size_t(e)] = best;
  if (!prefetch) touch(best);
  refresh(best, /*rekey=*/true);
  ++stats_.loads;
  if (prefetch) ++stats_.prefetch_issued;
  return best;
}

inline void SlotTable::done(int e) {
  const int s = slot_of_[size_t(e)];
  if (s < 0 || !slots_[size_t(s)].needed) return;
  slots_[size_t(s)].needed = false;
  refresh(s);
}

inline void SlotTable::end_pass() {
  int waves = 0;
  for (int i : touched_) {
    Slot& s = slots_[size_t(i)];
    waves = std::max(waves, s.fills);
    s.fills = 0;
    if (s.needed) {
      s.needed = false;
      refresh(i);
    }
  }
  touched_.clear();
  stats_.waves += waves;
  in_pass_ = false;
}

[[noreturn]] void throw_no_stream_slot(int expert, size_t done);

// One pass in waves: begin_pass, then the resident experts first and the misses after them (each
// group in the order of `needed`). Loads are started as far ahead as free or reusable slots allow
// (load(e, slot)); each expert is computed once its turn comes (compute(e, slot)) and then done(),
// so its slot can take a later miss. Any capacity >= 1 completes: when the loads stop for want of
// a slot, every expert before the next one to compute is done, so a slot is free for it.
// end_pass always runs (also when a callback throws). A template so that a replay's no-op
// callbacks cost nothing (cache_replay.cc runs billions of passes).
template <class Load, class Compute>
void stream_pass(SlotTable& t, const int* needed, size_t n, Load&& load, Compute&& compute) {
  struct EndPass {
    SlotTable& t;
    ~EndPass() { t.end_pass(); }
  };
  t.begin_pass(needed, n);
  EndPass guard{t};
  // Hits first: they compute while the misses' loads are on their way. The order is kept in the
  // table so a pass allocates nothing (not per thread: thread_local costs a call per pass in a
  // shared library).
  // Both groups are written without a branch on hit or miss (a replay's hits and misses alternate
  // at random, and each mispredicted branch cost more than the pass's bookkeeping): each id is
  // stored at the end of both, only the group it belongs to advances; the misses, gathered after
  // room for n, then move down behind the hits.
  std::vector<int>& order = t.pass_order_;
  if (order.size() < 2 * n + 1) order.resize(2 * n + 1);
  int* const o = order.data();
  size_t hits = 0, misses = 0;
  for (size_t j = 0; j < n; ++j) {
    const int e = needed[j];
    const bool hit = t.slot_of(e) >= 0;
    o[hits] = e;
    o[n + misses] = e;
    hits += hit;
    misses += !hit;
  }
  std::copy(o + n, o + n + misses, o + hits);
  size_t next = hits;  // the next miss to load
  for (size_t i = 0; i < n; ++i) {
    for (; next < n; ++next) {
      const int s = t.assign(o[next], false);
      if (s < 0) break;  // every slot is still needed: the rest waits for the next done()
      try {
        load(o[next], s);
      } catch (...) {
        t.drop(o[next]);
        throw;
      }
    }
    // Cannot fail: experts [0, i) are done, and static pins leave at least one slot streaming.
    if (next <= i) throw_no_stream_slot(o[i], i);
    const int e = o[i];
    compute(e, t.slot_of(e));
    t.done(e);
  }
}

template <class Load, class Compute>
void stream_pass(SlotTable& t, const std::vector<int>& needed, Load&& load, Compute&& compute) {
  stream_pass(t, needed.data(), needed.size(), load, compute);
}

}  // namespace moecap
