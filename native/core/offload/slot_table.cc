#include "offload/slot_table.h"

#include <algorithm>
#include <functional>
#include <stdexcept>
#include <string>

namespace moecap {

SlotTable::SlotTable(int experts, int slots, CachePolicy policy, int stream_slots)
    : policy_(policy),
      stream_slots_(std::max(1, std::min(stream_slots, slots))),
      store_(policy != CachePolicy::LFRU              ? Store::List
             : std::min(slots, experts) <= kMaskSlots ? Store::Mask
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

void throw_no_stream_slot(int expert, size_t done) {
  throw std::logic_error("slot table: no slot for expert " + std::to_string(expert) + " although " +
                         std::to_string(done) + " experts of the pass are done");
}

}  // namespace moecap
