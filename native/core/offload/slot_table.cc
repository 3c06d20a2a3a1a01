#include "offload/slot_table.h"

#include <algorithm>
#include <functional>
#include <stdexcept>
#include <string>

namespace moecap {

SlotTable::SlotTable(int experts, int slots, CachePolicy policy, int stream_slots)
    : policy_(policy), stream_slots_(std::max(1, std::min(stream_slots, slots))) {
  if (experts < 1 || slots < 1)
    throw std::invalid_argument("slot table needs experts >= 1 and slots >= 1, got " + std::to_string(experts) +
                                " and " + std::to_string(slots));
  slots_.resize(size_t(std::min(slots, experts)));
  slot_of_.assign(size_t(experts), -1);
  usage_.resize(size_t(experts));
  static_.assign(size_t(experts), 0);
  masked_.assign(slots_.size(), 0);
  tree_.reset(int(slots_.size()));
  for (int i = int(slots_.size()) - 1; i >= 0; --i) free_.push_back(i);
  std::make_heap(free_.begin(), free_.end(), std::greater<int>());
}

bool SlotTable::candidate(int s) const {
  const Slot& c = slots_[size_t(s)];
  return c.expert >= 0 && !c.loading && !static_[size_t(c.expert)] && !masked_[size_t(s)];
}

void SlotTable::refresh(int s, bool rekey) {
  const bool want = candidate(s);
  if (want == tree_.present(s) && !(want && rekey)) return;
  tree_.set(s, want, Order{this});
}

// The policy's earliest candidate that is not needed and not protected: those are taken out of
// the tree while the call looks further.
int SlotTable::victim(const std::vector<char>* protect) {
  std::vector<int> masked;
  int v;
  for (;;) {
    v = tree_.min(Order{this});
    if (v < 0 || (!slots_[size_t(v)].needed && !(protect && (*protect)[size_t(slots_[size_t(v)].expert)]))) break;
    masked_[size_t(v)] = 1;
    refresh(v);
    masked.push_back(v);
  }
  for (int s : masked) {
    masked_[size_t(s)] = 0;
    refresh(s);
  }
  return v;
}

void SlotTable::set_loading(int s, bool loading) {
  slots_[size_t(s)].loading = loading;
  refresh(s);
}

void SlotTable::begin_pass(const std::vector<int>& needed) {
  in_pass_ = true;
  ++pass_;
  ++stats_.passes;
  for (int s : touched_) slots_[size_t(s)].needed = false, slots_[size_t(s)].fills = 0;
  touched_.clear();
  for (int e : needed) {
    note_use(usage_[size_t(e)], ++tick_, pass_);
    const int s = slot_of_[size_t(e)];
    if (s < 0) {
      ++stats_.misses;
      continue;
    }
    refresh(s, /*rekey=*/true);
    Slot& slot = slots_[size_t(s)];
    ++stats_.hits;
    slot.needed = true;
    slot.fills = 1;
    touch(s);
    if (slot.prefetched) {
      ++stats_.prefetch_used;
      slot.prefetched = false;
    }
  }
}

int SlotTable::assign(int e, bool prefetch, const std::vector<char>* protect, int* evicted) {
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

void SlotTable::drop(int e) {
  const int s = slot_of_[size_t(e)];
  if (s < 0) return;
  slots_[size_t(s)] = Slot();
  slot_of_[size_t(e)] = -1;
  refresh(s);
  free_.push_back(s);
  std::push_heap(free_.begin(), free_.end(), std::greater<int>());
}

void SlotTable::done(int e) {
  const int s = slot_of_[size_t(e)];
  if (s >= 0) slots_[size_t(s)].needed = false;
}

void SlotTable::end_pass() {
  int waves = 0;
  for (int i : touched_) {
    Slot& s = slots_[size_t(i)];
    waves = std::max(waves, s.fills);
    s.needed = false;
    s.fills = 0;
  }
  touched_.clear();
  stats_.waves += waves;
  in_pass_ = false;
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

void stream_pass(SlotTable& t, const std::vector<int>& needed, const std::function<void(int, int)>& load,
                 const std::function<void(int, int)>& compute) {
  struct EndPass {
    SlotTable& t;
    ~EndPass() { t.end_pass(); }
  };
  t.begin_pass(needed);
  EndPass guard{t};
  // Hits first: they compute while the misses' loads are on their way.
  std::vector<int> order;
  order.reserve(needed.size());
  for (int e : needed)
    if (t.slot_of(e) >= 0) order.push_back(e);
  const size_t hits = order.size();
  for (int e : needed)
    if (t.slot_of(e) < 0) order.push_back(e);
  size_t next = hits;  // the next miss to load
  for (size_t i = 0; i < order.size(); ++i) {
    for (; next < order.size(); ++next) {
      const int s = t.assign(order[next], false);
      if (s < 0) break;  // every slot is still needed: the rest waits for the next done()
      try {
        load(order[next], s);
      } catch (...) {
        t.drop(order[next]);
        throw;
      }
    }
    // Cannot fail: experts [0, i) are done, and static pins leave at least one slot streaming.
    if (next <= i)
      throw std::logic_error("slot table: no slot for expert " + std::to_string(order[i]) + " although " +
                             std::to_string(i) + " experts of the pass are done");
    const int e = order[i];
    compute(e, t.slot_of(e));
    t.done(e);
  }
}

}  // namespace moecap
