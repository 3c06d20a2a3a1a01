// CPU unit test of the offload slot table (native/core/offload/slot_table.{h,cc}) that the CUDA
// store drives: eviction order of each policy on a scripted sequence worked out by hand, capacity 1
// and waves, static pinning, prefetch, and a randomised check of the wave schedule against a model
// of the device slots. Built and run by test/cuda/cuda_host.test.ts with g++; exits non-zero on a failure.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "expect.h"
#include "offload/slot_table.h"

using moecap::CachePolicy;
using moecap::SlotTable;


// A model of the device: what each slot holds, kept from the load calls alone, and the event
// sequence ("L5@0" = load expert 5 into slot 0, "C5@0" = compute expert 5 from slot 0).
struct Device {
  std::vector<int> held;
  std::vector<int> evicted;  // per load: the expert the slot held before, or -1
  std::string log;
  explicit Device(int slots) : held(size_t(slots), -1) {}
  void pass(SlotTable& t, const std::vector<int>& needed) {
    evicted.clear();
    log.clear();
    moecap::stream_pass(
        t, needed,
        [&](int e, int s) {
          evicted.push_back(held[size_t(s)]);
          held[size_t(s)] = e;
          log += "L" + std::to_string(e) + "@" + std::to_string(s) + " ";
        },
        [&](int e, int s) {
          EXPECT(held[size_t(s)] == e, "compute %d from slot %d that holds %d", e, s, held[size_t(s)]);
          log += "C" + std::to_string(e) + "@" + std::to_string(s) + " ";
        });
  }
};

static const char* name(CachePolicy p) { return moecap::policy_name(p); }

// The script (capacity 3, experts A = 0, B = 1, C = 2): A used in passes 1..5, C in 4..5 after A,
// passes 6..7 empty, B in pass 8. At pass 9 (needs 3):
//   LRU  evicts A (last tick 6 < C's 7 < B's 8)
//   LFU  evicts B (1 use, vs C 2, A 5)
//   LFRU evicts C: uses / (1 + passes since last use) = A 5/5, B 1/2, C 2/5
//   static, pinned after pass 8 (1 streaming slot → the 2 most used, A and C): evicts B, the only candidate
// Pass 10 (needs 4): LRU evicts C (tick 7 < B 8 < 3's 9), LFU evicts 3 (1 use vs C 2, A 5),
// LFRU evicts B (1/3 < 3's 1/2 < A 5/6), static evicts 3 (A and C are pinned).
static void test_policy_order() {
  const std::vector<std::vector<int>> script = {{0}, {0}, {0}, {0, 2}, {0, 2}, {}, {}, {1}};
  struct Want {
    CachePolicy p;
    int pass9, pass10;
  };
  for (Want w : {Want{CachePolicy::LRU, 0, 2}, Want{CachePolicy::LFU, 1, 3}, Want{CachePolicy::LFRU, 2, 1},
                 Want{CachePolicy::Static, 1, 3}}) {
    SlotTable t(8, 3, w.p, 1);
    Device d(3);
    for (const auto& needed : script) d.pass(t, needed);
    EXPECT(t.resident() == std::vector<int>({0, 1, 2}), "%s: resident after the script", name(w.p));
    EXPECT(t.stats().evictions == 0 && t.stats().misses == 3 && t.stats().hits == 5, "%s: hits %lld misses %lld",
           name(w.p), (long long)t.stats().hits, (long long)t.stats().misses);
    if (w.p == CachePolicy::Static) {
      const std::vector<int> pinned = t.pin_static();
      EXPECT(pinned == std::vector<int>({0, 2}), "static pins A and C, got %zu experts", pinned.size());
    }
    d.pass(t, {3});
    EXPECT(d.evicted == std::vector<int>({w.pass9}), "%s pass 9 evicts %d, got %d", name(w.p), w.pass9,
           d.evicted.empty() ? -2 : d.evicted[0]);
    d.pass(t, {4});
    EXPECT(d.evicted == std::vector<int>({w.pass10}), "%s pass 10 evicts %d, got %d", name(w.p), w.pass10,
           d.evicted.empty() ? -2 : d.evicted[0]);
    EXPECT(t.stats().evictions == 2 && t.stats().passes == 10, "%s evictions", name(w.p));
  }
  std::printf("ok   eviction order on a scripted sequence: lru evicts 0 then 2, lfu 1 then 3, lfru 2 then 1, static 1 then 3\n");
}

static void test_capacity_one() {
  SlotTable t(8, 1, CachePolicy::LRU, 1);
  Device d(1);
  d.pass(t, {5, 1, 7});
  EXPECT(d.log == "L5@0 C5@0 L1@0 C1@0 L7@0 C7@0 ", "capacity 1 schedule: %s", d.log.c_str());
  EXPECT(t.stats().misses == 3 && t.stats().loads == 3 && t.stats().evictions == 2 && t.stats().waves == 3 &&
             t.stats().hits == 0,
         "capacity 1 counters: misses %lld loads %lld evictions %lld waves %lld", (long long)t.stats().misses,
         (long long)t.stats().loads, (long long)t.stats().evictions, (long long)t.stats().waves);
  // The resident expert computes first, then the miss takes its slot.
  d.pass(t, {2, 7});
  EXPECT(d.log == "C7@0 L2@0 C2@0 ", "hit first, then the miss: %s", d.log.c_str());
  EXPECT(t.stats().hits == 1 && t.stats().misses == 4 && t.stats().waves == 5 && t.stats().evictions == 3, "counters");
  // Capacity 2 with 3 misses: both slots fill, the third waits for the first expert's slot.
  SlotTable t2(8, 2, CachePolicy::LRU, 1);
  Device d2(2);
  d2.pass(t2, {3, 4, 6});
  EXPECT(d2.log == "L3@0 L4@1 C3@0 L6@0 C4@1 C6@0 ", "capacity 2 schedule: %s", d2.log.c_str());
  EXPECT(t2.stats().waves == 2, "capacity 2, 3 experts: 2 waves, got %lld", (long long)t2.stats().waves);
  bool threw = false;
  try {
    SlotTable bad(8, 0, CachePolicy::LRU, 1);
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  EXPECT(threw, "0 slots is refused");
  std::printf("ok   capacity 1 and 2: misses stream through in waves in a fixed order (L/C sequences), counters\n");
}

static void test_prefetch() {
  SlotTable t(8, 2, CachePolicy::LRU, 1);
  Device d(2);
  d.pass(t, {0, 1});
  // Two predicted experts: both loaded, neither evicts the other; a third would exceed the slots.
  const auto loads = t.prefetch({5, 6, 7});
  EXPECT(loads.size() == 2 && loads[0].first == 5 && loads[1].first == 6 && loads[0].second != loads[1].second,
         "prefetch loads 5 and 6 into distinct slots");
  EXPECT(t.resident() == std::vector<int>({5, 6}) && t.stats().prefetch_issued == 2 && t.stats().evictions == 2,
         "after prefetch");
  d.held[size_t(loads[0].second)] = 5, d.held[size_t(loads[1].second)] = 6;
  d.pass(t, {6, 2});
  EXPECT(t.stats().prefetch_used == 1 && t.stats().hits == 1 && t.stats().misses == 3,
         "prefetched 6 is a hit and used: used %lld hits %lld", (long long)t.stats().prefetch_used,
         (long long)t.stats().hits);
  EXPECT(d.evicted == std::vector<int>({5}), "the unused prefetch (5) makes room for 2");
  std::printf("ok   prefetch: at most `slots` loads, no self-eviction, a later hit counts as used\n");
}

// Random passes, policies, capacities, prefetches and static pins against the device model: every
// needed expert computed exactly once from a slot holding it, no load overwrites an expert the pass
// still needs, waves = the most needed experts through one slot (= ceil(n / slots) without pins).
static void test_random_schedules() {
  std::mt19937 rng(7);
  int passes = 0;
  for (int trial = 0; trial < 400; ++trial) {
    const int E = 1 + int(rng() % 24), slots = 1 + int(rng() % E);
    const CachePolicy p = CachePolicy(rng() % 4);
    const int stream = 1 + int(rng() % 3);
    SlotTable t(E, slots, p, stream);
    Device d(slots);
    bool pinned = false;
    for (int pass = 0; pass < 12; ++pass, ++passes) {
      if (rng() % 5 == 0) {
        std::vector<int> pred;
        for (int i = 0; i < 3; ++i) pred.push_back(int(rng() % E));
        for (auto l : t.prefetch(pred)) d.held[size_t(l.second)] = l.first;
      }
      if (pass == 6 && rng() % 2) {
        const std::vector<int> pins = t.pin_static();
        EXPECT((int)pins.size() <= slots - std::min(stream, slots), "static leaves the streaming slots");
        pinned = !pins.empty();
      }
      std::vector<int> needed;
      for (int e = 0; e < E; ++e)
        if (rng() % 3 == 0) needed.push_back(e);
      std::vector<char> need(size_t(E), 0);
      for (int e : needed) need[size_t(e)] = 1;
      std::vector<int> computed(size_t(E), 0), fills(size_t(slots), 0);
      for (int s = 0; s < slots; ++s)
        if (d.held[size_t(s)] >= 0 && need[size_t(d.held[size_t(s)])]) fills[size_t(s)] = 1;
      const int64_t waves0 = t.stats().waves;
      moecap::stream_pass(
          t, needed,
          [&](int e, int s) {
            const int old = d.held[size_t(s)];
            EXPECT(old < 0 || !need[size_t(old)] || computed[size_t(old)], "load %d overwrites %d before it computed", e, old);
            EXPECT(need[size_t(e)] && !computed[size_t(e)], "load of %d that the pass does not need", e);
            d.held[size_t(s)] = e;
            ++fills[size_t(s)];
          },
          [&](int e, int s) {
            EXPECT(d.held[size_t(s)] == e, "compute %d from slot %d holding %d", e, s, d.held[size_t(s)]);
            ++computed[size_t(e)];
          });
      for (int e = 0; e < E; ++e) EXPECT(computed[size_t(e)] == need[size_t(e)], "expert %d computed %d times", e, computed[size_t(e)]);
      int max_fill = 0;
      for (int f : fills) max_fill = std::max(max_fill, f);
      const int64_t waves = t.stats().waves - waves0;
      EXPECT(waves == max_fill, "waves %lld vs %d", (long long)waves, max_fill);
      if (!pinned && !needed.empty())
        EXPECT(waves == ((int)needed.size() + slots - 1) / slots, "waves %lld for %zu experts in %d slots", (long long)waves,
               needed.size(), slots);
      std::vector<int> held;
      for (int e : d.held)
        if (e >= 0) held.push_back(e);
      std::sort(held.begin(), held.end());
      EXPECT(t.resident() == held, "table and device model agree on the resident experts");
    }
  }
  std::printf("ok   random schedules (%d passes, 4 policies, capacity 1..E, prefetch, static pins) against a device model\n",
              passes);
}

int main() {
  test_policy_order();
  test_capacity_one();
  test_prefetch();
  test_random_schedules();
  std::printf("all %d checks passed\n", g_checks);
  return 0;
}
