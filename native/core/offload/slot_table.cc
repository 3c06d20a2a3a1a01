#include "offload/slot_table.h"

#include <algorithm>
#include <functional>
#include <stdexcept>
#include <string>

namespace moecap {

SlotTable::SlotTable(int experts, int slots, CachePolicy policy, int stream_slots)
    : policy_(policy),
      stream_slots_(std::max(1, std::min(stream_slots, slots))),
      store_(policy == CachePolicy::LRU || policy == CachePolicy::Static ? Store::List
             : std::min(slots, experts) <= kMaskSlots                    ? Store::Mask
             : policy == CachePolicy::LFU                                ? Store::List
                                                                         : Store::Tree) {
  if (experts < 1 || slots < 1)
    throw std::invalid_argument("slot table needs experts >= 1 and slots >= 1, got " + std::to_string(experts) +
                                " and " + std::to_string(slots));
  slots_.resize(size_t(std::min(slots, experts)));
  nslots_ = int(slots_.size());
  slot_of_.assign(size_t(experts), -1);
  usage_.resize(size_t(experts));
  static_.assign(size_t(experts), 0);
  masked_.assign(slots_.size(), 0);
  if (store_ == Store::List) {
    const size_t H = slots_.size();
    prev_.assign(H + 1, -1);
    next_.assign(H + 1, -1);
    prev_[H] = next_[H] = int(H);  // the empty list: the sentinel alone
  } else if (store_ == Store::Tree) {
    tree_.reset(int(slots_.size()));
  }
  for (int i = int(slots_.size()) - 1; i >= 0; --i) free_.push_back(i);
  std::make_heap(free_.begin(), free_.end(), std::greater<int>());
}

// The policy's earliest candidate that is not needed and not protected: the list is walked past
// protected slots; the tree has them taken out while the call looks further.
int SlotTable::victim(const std::vector<char>* protect) {
  if (store_ == Store::Mask) {  // the earliest by a scan, the best so far held in locals
    const Slot* slot = slots_.data();
    const CachePolicy p = policy_;
    const int64_t now = pass_;
    int v = -1;
    ExpertUsage vu;
    int ve = -1;
    for (uint64_t m = mask_; m; m &= m - 1) {
      const int s = __builtin_ctzll(m);
      const Slot& c = slot[s];
      if (protect && (*protect)[size_t(c.expert)]) continue;
      if (v < 0 || evict_before(p, c.use, c.expert, vu, ve, now)) v = s, vu = c.use, ve = c.expert;
    }
    return v;
  }
  if (store_ == Store::List) {
    const int H = slots();
    int v = next_[size_t(H)];
    if (protect)
      while (v != H && (*protect)[size_t(slots_[size_t(v)].expert)]) v = next_[size_t(v)];
    return v == H ? -1 : v;
  }
  int v = tree_.min(Order{this});
  if (!protect || v < 0) return v;  // needed slots are out of the tree: the minimum is the victim
  std::vector<int> masked;
  for (;;) {
    if (v < 0 || !(*protect)[size_t(slots_[size_t(v)].expert)]) break;
    masked_[size_t(v)] = 1;
    refresh(v);
    masked.push_back(v);
    v = tree_.min(Order{this});
  }
  for (int s : masked) {
    masked_[size_t(s)] = 0;
    refresh(s);
  }
  return v;
}

// Walks from the back and from the front at once, so the cost is the distance to the nearer end
// (the back first: a slot just used is usually the latest, one comparison for lru and static).
// Out of line, so refresh() stays small enough to inline where it only unlinks.
void SlotTable::link_sorted(int s) {
  const int H = nslots_;
  const Order o{this};
  int f = next_[size_t(H)], b = prev_[size_t(H)], at;  // s goes before `at`
  for (;;) {
    if (b == H || o.before(b, s)) {  // every slot after b is evicted after s, b before it
      at = next_[size_t(b)];
      break;
    }
    if (f == H || !o.before(f, s)) {  // every slot before f is evicted before s, f after it
      at = f;
      break;
    }
    f = next_[size_t(f)];
    b = prev_[size_t(b)];
  }
  const int p = prev_[size_t(at)];
  prev_[size_t(s)] = p;
  next_[size_t(s)] = at;
  next_[size_t(p)] = s;
  prev_[size_t(at)] = s;
  ++listed_;
}

// The list's back: for a key later than every listed one.
void SlotTable::link_last(int s) {
  const int H = nslots_, p = prev_[size_t(H)];
  prev_[size_t(s)] = p;
  next_[size_t(s)] = H;
  next_[size_t(p)] = s;
  prev_[size_t(H)] = s;
  ++listed_;
}

void SlotTable::set_loading(int s, bool loading) {
  slots_[size_t(s)].loading = loading;
  refresh(s);
}

void SlotTable::drop(int e) {
  const int s = slot_of_[size_t(e)];
  if (s < 0) return;
  slots_[size_t(s)] = Slot();
  slot_of_[size_t(e)] = -1;
  refresh(s);
  free_.push_back(s);
  std::push_heap(free_.begin(), free_.end(), std::greater<int>());
}

std::vector<std::pair<int, int>> SlotTable::prefetch(const std::vector<int>& experts) {
  std::vector<char> protect(slot_of_.size(), 0);
  for (int e : experts) protect[size_t(e)] = 1;
  std::vector<std::pair<int, int>> loads;
  for (int e : experts) {
    if ((int)loads.size() >= slots()) break;
    if (slot_of_[size_t(e)] >= 0) continue;
    const int s = assign(e, true, &protect);
    if (s < 0) break;
    loads.emplace_back(e, s);
  }
  return loads;
}

std::vector<int> SlotTable::pin_static() {
  std::vector<int> pinned = choose_static(usage_, std::max(0, slots() - stream_slots_), static_);
  for (int s = 0; s < slots(); ++s) refresh(s);
  return pinned;
}

std::vector<int> SlotTable::resident() const {
  std::vector<int> r;
  for (const Slot& s : slots_)
    if (s.expert >= 0) r.push_back(s.expert);
  std::sort(r.begin(), r.end());
  return r;
}

void SlotTable::replay(const int* ids, const int64_t* offsets, int64_t passes) {
  switch (policy_) {
    case CachePolicy::LRU: return replay_as<CachePolicy::LRU>(ids, offsets, passes);
    case CachePolicy::LFU: return replay_as<CachePolicy::LFU>(ids, offsets, passes);
    case CachePolicy::LFRU: return replay_as<CachePolicy::LFRU>(ids, offsets, passes);
    case CachePolicy::Static: return replay_as<CachePolicy::Static>(ids, offsets, passes);
  }
}

// The policy a template argument, so evict_before's branches on it fold away in the short path.
template <CachePolicy P>
void SlotTable::replay_as(const int* ids, const int64_t* offsets, int64_t passes) {
  const auto noop = [](int, int) {};
  // A slot loading is never a candidate: such a table (never a replay's own) takes stream_pass.
  bool loading = false;
  for (const Slot& s : slots_) loading |= s.loading;
  const bool short_path = store_ != Store::Tree && !in_pass_ && !loading;
  const bool pins = std::find(static_.begin(), static_.end(), 1) != static_.end();
  SlotStats st;  // the short path's counts, in locals until the end
  for (int64_t i = 0; i < passes; ++i) {
    const int* needed = ids + offsets[i];
    const size_t n = size_t(offsets[i + 1] - offsets[i]);
    const bool done = short_path && (store_ == Store::List ? replay_pass<P, true>(needed, n, pins, st)
                                                           : replay_pass<P, false>(needed, n, pins, st));
    if (!done) stream_pass(*this, needed, n, noop, noop);
  }
  stats_.passes += st.passes;
  stats_.hits += st.hits;
  stats_.misses += st.misses;
  stats_.loads += st.loads;
  stats_.evictions += st.evictions;
  stats_.prefetch_used += st.prefetch_used;
  stats_.waves += st.waves;
}

// One pass without waves, or false (nothing changed) when its misses do not all fit. `list`: the
// store is the list (else the mask). `pins`: some expert is statically pinned (its slot never goes
// back among the candidates).
template <CachePolicy P, bool list>
bool SlotTable::replay_pass(const int* needed, size_t n, bool pins, SlotStats& st) {
  // Fits when misses <= free slots + candidates that are not hits of this pass; misses + such hits
  // <= n, so only a pass larger than free + candidates needs counting (no branch per id: hit or
  // miss is random in a replay).
  const size_t room = free_.size() + (list ? size_t(listed_) : size_t(__builtin_popcountll(mask_)));
  if (n > room) {
    size_t misses = 0, listed_hits = 0;
    for (size_t j = 0; j < n; ++j) {
      const int s = slot_of_[size_t(needed[j])];
      const bool hit = s >= 0;
      misses += !hit;
      listed_hits += hit & (list ? prev_[size_t(hit ? s : 0)] >= 0 : (mask_ >> (hit ? s : 0)) & 1);
    }
    if (misses > room - listed_hits) return false;
  }
  std::vector<int>& order = pass_order_;
  if (order.size() < 2 * n + 1) order.resize(2 * n + 1);
  int* const slot_at = order.data();  // [j]: the slot of needed[j], -1 until a miss has one
  int* const victims = slot_at + n;

  // begin_pass: usage counted, hits out of the candidates.
  ++pass_;
  size_t misses = 0;
  uint64_t hit_bits = 0;
  for (size_t j = 0; j < n; ++j) {
    const int e = needed[j];
    ExpertUsage& u = usage_[size_t(e)];
    note_use(u, ++tick_, pass_);
    const int s = slot_of_[size_t(e)];
    slot_at[j] = s;
    if (s < 0) {
      ++misses;
      continue;
    }
    Slot& slot = slots_[size_t(s)];
    slot.use = u;
    if (!list) hit_bits |= uint64_t(1) << s;
    else if (prev_[size_t(s)] >= 0) unlink(s);
    if (slot.prefetched) {
      ++st.prefetch_used;
      slot.prefetched = false;
    }
  }
  mask_ &= ~hit_bits;

  // The misses in order: free slots (lowest first), then the earliest candidates.
  const size_t from_free = std::min(misses, free_.size()), evict = misses - from_free;
  if (!list && evict > 0) earliest_in_mask<P>(victims, int(evict));
  uint64_t pass_bits = hit_bits;
  for (size_t j = 0, taken = 0; j < n; ++j) {
    if (slot_at[j] >= 0) continue;
    const int e = needed[j];
    int s;
    if (taken < from_free) {
      std::pop_heap(free_.begin(), free_.end(), std::greater<int>());
      s = free_.back();
      free_.pop_back();
    } else {
      s = list ? next_[size_t(nslots_)] : victims[taken - from_free];
      if (list) unlink(s);
      slot_of_[size_t(slots_[size_t(s)].expert)] = -1;
    }
    ++taken;
    Slot& slot = slots_[size_t(s)];
    slot.expert = e;
    slot.use = usage_[size_t(e)];
    slot.prefetched = false;
    slot_of_[size_t(e)] = s;
    slot_at[j] = s;
    if (!list) pass_bits |= uint64_t(1) << s;
  }

  // done() of every slot: back among the candidates with its new key, unless statically pinned.
  if (!list) {  // the victims' bits were left set: each victim is a slot of this pass
    uint64_t back = pass_bits;
    if (pins)
      for (size_t j = 0; j < n; ++j)
        if (static_[size_t(slots_[size_t(slot_at[j])].expert)]) back &= ~(uint64_t(1) << slot_at[j]);
    mask_ = (mask_ & ~pass_bits) | back;
  } else {
    for (size_t j = 0; j < n; ++j) {
      const int s = slot_at[j];
      if (pins && static_[size_t(slots_[size_t(s)].expert)]) continue;
      if (P == CachePolicy::LFU) link_sorted(s);  // above kMaskSlots slots
      else link_last(s);  // lru, static: this pass's ticks are the newest, in the order of `needed`
    }
  }
  ++st.passes;
  st.hits += int64_t(n - misses);
  st.misses += int64_t(misses);
  st.loads += int64_t(misses);
  st.evictions += int64_t(evict);
  st.waves += n > 0;
  return true;
}

// One scan: the first `count` candidates in order, then each later one that goes before the last held.
template <CachePolicy P>
void SlotTable::earliest_in_mask(int* out, int count) const {
  const Slot* slot = slots_.data();
  const int64_t now = pass_;
  const auto before = [&](const Slot& a, const Slot& b) {
    return evict_before(P, a.use, a.expert, b.use, b.expert, now);
  };
  const auto insert = [&](int s, int at) {  // out[at] is free; s goes at or before it
    for (; at > 0 && before(slot[s], slot[out[at - 1]]); --at) out[at] = out[at - 1];
    out[at] = s;
  };
  uint64_t m = mask_;
  int held = 0;
  for (; m && held < count; m &= m - 1, ++held) insert(__builtin_ctzll(m), held);
  for (; m; m &= m - 1) {
    const int s = __builtin_ctzll(m);
    if (before(slot[s], slot[out[count - 1]])) insert(s, count - 1);
  }
}

void throw_no_stream_slot(int expert, size_t done) {
  throw std::logic_error("slot table: no slot for expert " + std::to_string(expert) + " although " +
                         std::to_string(done) + " experts of the pass are done");
}

}  // namespace moecap
