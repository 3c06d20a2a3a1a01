// The slot table's victim choice as a plain scan of every slot (what SlotTable did before its
// tournament tree), kept only as the reference the randomized equivalence test compares against.
// Same public operations and the same counters; only the data structures differ.
#pragma once
#include <algorithm>
#include <vector>

#include "offload/cache_policy.h"
#include "offload/slot_table.h"

class ReferenceSlotTable {
 public:
  ReferenceSlotTable(int experts, int slots, moecap::CachePolicy policy, int stream_slots)
      : policy_(policy), stream_slots_(std::max(1, std::min(stream_slots, slots))) {
    slots_.resize(size_t(std::min(slots, experts)));
    slot_of_.assign(size_t(experts), -1);
    usage_.resize(size_t(experts));
    static_.assign(size_t(experts), 0);
  }
  int slots() const { return (int)slots_.size(); }
  int slot_of(int e) const { return slot_of_[size_t(e)]; }
  const moecap::SlotStats& stats() const { return stats_; }

  void begin_pass(const std::vector<int>& needed) {
    in_pass_ = true;
    ++pass_;
    ++stats_.passes;
    for (auto& s : slots_) s.needed = false, s.fills = 0;
    for (int e : needed) {
      moecap::note_use(usage_[size_t(e)], ++tick_, pass_);
      const int s = slot_of_[size_t(e)];
      if (s < 0) {
        ++stats_.misses;
        continue;
      }
      Slot& slot = slots_[size_t(s)];
      ++stats_.hits;
      slot.needed = true;
      slot.fills = 1;
      if (slot.prefetched) ++stats_.prefetch_used, slot.prefetched = false;
    }
  }
  int assign(int e, bool prefetch, const std::vector<char>* protect = nullptr, int* evicted = nullptr) {
    if (evicted) *evicted = -1;
    int best = -1;
    for (size_t s = 0; s < slots_.size() && best < 0; ++s)
      if (slots_[s].expert < 0) best = int(s);
    if (best < 0) {
      for (size_t s = 0; s < slots_.size(); ++s) {
        const Slot& c = slots_[s];
        if (c.needed || c.loading || static_[size_t(c.expert)] || (protect && (*protect)[size_t(c.expert)])) continue;
        if (best < 0 ||
            moecap::evict_before(policy_, usage_[size_t(c.expert)], c.expert,
                                 usage_[size_t(slots_[size_t(best)].expert)], slots_[size_t(best)].expert, pass_))
          best = int(s);
      }
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
    ++stats_.loads;
    if (prefetch) ++stats_.prefetch_issued;
    return best;
  }
  void drop(int e) {
    const int s = slot_of_[size_t(e)];
    if (s < 0) return;
    slots_[size_t(s)] = Slot();
    slot_of_[size_t(e)] = -1;
  }
  void done(int e) {
    const int s = slot_of_[size_t(e)];
    if (s >= 0) slots_[size_t(s)].needed = false;
  }
  void end_pass() {
    int waves = 0;
    for (auto& s : slots_) waves = std::max(waves, s.fills), s.needed = false, s.fills = 0;
    stats_.waves += waves;
    in_pass_ = false;
  }
  void set_loading(int s, bool loading) { slots_[size_t(s)].loading = loading; }
  std::vector<std::pair<int, int>> prefetch(const std::vector<int>& experts) {
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
  std::vector<int> pin_static() { return moecap::choose_static(usage_, std::max(0, slots() - stream_slots_), static_); }

 private:
  struct Slot {
    int expert = -1;
    bool needed = false, prefetched = false, loading = false;
    int fills = 0;
  };
  const moecap::CachePolicy policy_;
  const int stream_slots_;
  std::vector<Slot> slots_;
  std::vector<int> slot_of_;
  std::vector<moecap::ExpertUsage> usage_;
  std::vector<char> static_;
  int64_t tick_ = 0, pass_ = 0;
  bool in_pass_ = false;
  moecap::SlotStats stats_;
};
