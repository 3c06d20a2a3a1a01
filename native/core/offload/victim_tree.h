// The victim of a slot table in O(log slots): a kinetic tournament tree over the slots. Each inner
// node holds the earlier (to evict) of its two children's winners, and the first time at which that
// comparison flips (lfru's scores age with the pass; the other policies' order never changes while
// their keys do not). A query first redoes the nodes whose comparison has flipped by then, so the
// root is always the minimum of the candidates under the order at the query's time: the same
// victim as a scan of every slot.
#pragma once
#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

namespace moecap {

class VictimTree {
 public:
  static constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

  void reset(int leaves) {
    n_ = 1;
    while (n_ < leaves) n_ *= 2;
    win_.assign(size_t(2 * n_), -1);
    flip_.assign(size_t(2 * n_), kNever);
    sub_.assign(size_t(2 * n_), kNever);
  }
  bool present(int leaf) const { return win_[size_t(n_ + leaf)] >= 0; }

  // `order` has now(), before(a, b) (a is evicted before b now), flips(w, l) (the first time
  // after now at which w stops being before l, kNever when it never does) and kinetic() (false:
  // flips is always kNever, so the flip times need no upkeep). A candidate's key may only change
  // while it is out of the tree (or by setting it again).
  template <class Order>
  void set(int leaf, bool candidate, const Order& order) {
    win_[size_t(n_ + leaf)] = candidate ? leaf : -1;
    if (order.kinetic()) set_kinetic(leaf, order);
    else set_static(leaf, order);
  }

  // The candidate to evict now, or -1.
  template <class Order>
  int min(const Order& order) {
    if (order.kinetic()) advance(1, order);
    return win_[1];
  }

 private:
  // An order that never flips: only the winners along the leaf's path, up to the first node that
  // keeps its winner, another leaf (the nodes above compare the same keys as before).
  template <class Order>
  void set_static(int leaf, const Order& order) {
    for (size_t i = size_t(n_ + leaf) / 2; i >= 1; i /= 2) {
      const int w = win_[i];
      const int a = win_[2 * i], b = win_[2 * i + 1];
      const int x = a < 0 ? b : b < 0 ? a : order.before(b, a) ? b : a;
      if (x == w && w != leaf) return;
      win_[i] = x;
    }
  }
  // Up to the first node that stays as it was and whose winner is another leaf, flip times included.
  template <class Order>
  __attribute__((noinline)) void set_kinetic(int leaf, const Order& order) {
    for (size_t i = size_t(n_ + leaf) / 2; i >= 1; i /= 2) {
      const int w = win_[i];
      const int64_t f = flip_[i], u = sub_[i];
      recompute(i, order);
      if (w == win_[i] && w != leaf && f == flip_[i] && u == sub_[i]) break;
    }
  }
  template <class Order>
  void recompute(size_t i, const Order& order) {
    int a = win_[2 * i], b = win_[2 * i + 1];
    if (a >= 0 && b >= 0) {
      if (order.before(b, a)) std::swap(a, b);
      win_[i] = a;
      flip_[i] = order.flips(a, b);
    } else {
      win_[i] = a >= 0 ? a : b;
      flip_[i] = kNever;
    }
    sub_[i] = std::min(flip_[i], std::min(sub_[2 * i], sub_[2 * i + 1]));
  }
  template <class Order>
  void advance(size_t i, const Order& order) {
    if (i >= size_t(n_) || sub_[i] > order.now()) return;
    advance(2 * i, order);
    advance(2 * i + 1, order);
    recompute(i, order);
  }

  int n_ = 1;
  std::vector<int> win_;       // [2n]: leaves n..2n-1 (the leaf itself or -1), inner nodes 1..n-1
  std::vector<int64_t> flip_;  // inner nodes: when their comparison flips
  std::vector<int64_t> sub_;   // min of flip_ over the subtree
};

}  // namespace moecap
