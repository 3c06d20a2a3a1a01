// CPU unit test of the offload slot table (native/core/offload/slot_table.{h,cc}) that the CUDA
// store drives: eviction order of each policy on a scripted sequence worked out by hand, capacity 1
// and waves, static pinning, prefetch, and a randomised check of the wave schedule against a model
// of the device slots, and the tree-based victim choice against a scan of every slot
// (slot_table_reference.h) under the same random operations. Built and run by test/cuda/cuda_host.test.ts with g++;
// exits non-zero on a failure.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "expect.h"
#include "offload/slot_table.h"
#include "slot_table_reference.h"

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
  std::printf(
      "ok   eviction order on a scripted sequence: lru evicts 0 then 2, lfu 1 then 3, lfru 2 then 1, static 1 then "
      "3\n");
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
            EXPECT(old < 0 || !need[size_t(old)] || computed[size_t(old)], "load %d overwrites %d before it computed",
                   e, old);
            EXPECT(need[size_t(e)] && !computed[size_t(e)], "load of %d that the pass does not need", e);
            d.held[size_t(s)] = e;
            ++fills[size_t(s)];
          },
          [&](int e, int s) {
            EXPECT(d.held[size_t(s)] == e, "compute %d from slot %d holding %d", e, s, d.held[size_t(s)]);
            ++computed[size_t(e)];
          });
      for (int e = 0; e < E; ++e)
        EXPECT(computed[size_t(e)] == need[size_t(e)], "expert %d computed %d times", e, computed[size_t(e)]);
      int max_fill = 0;
      for (int f : fills) max_fill = std::max(max_fill, f);
      const int64_t waves = t.stats().waves - waves0;
      EXPECT(waves == max_fill, "waves %lld vs %d", (long long)waves, max_fill);
      if (!pinned && !needed.empty())
        EXPECT(waves == ((int)needed.size() + slots - 1) / slots, "waves %lld for %zu experts in %d slots",
               (long long)waves, needed.size(), slots);
      std::vector<int> held;
      for (int e : d.held)
        if (e >= 0) held.push_back(e);
      std::sort(held.begin(), held.end());
      EXPECT(t.resident() == held, "table and device model agree on the resident experts");
    }
  }
  std::printf(
      "ok   random schedules (%d passes, 4 policies, capacity 1..E, prefetch, static pins) against a device model\n",
      passes);
}

// evict_order_flips against evict_before evaluated pass by pass, on small counts so that exact
// score ties (decided by recency, then id) are frequent.
static void test_lfru_flip_times() {
  std::mt19937 rng(5);
  int pairs = 0, flipping = 0;
  for (int i = 0; i < 20000; ++i) {
    moecap::ExpertUsage a, b;
    const int64_t pass = 1 + int64_t(rng() % 30);
    a.uses = int64_t(rng() % 8), b.uses = int64_t(rng() % 8);
    a.last_pass = a.uses ? 1 + int64_t(rng() % pass) : 0, b.last_pass = b.uses ? 1 + int64_t(rng() % pass) : 0;
    a.last_tick = a.last_pass * 4 + int64_t(rng() % 4), b.last_tick = b.last_pass * 4 + int64_t(rng() % 4);
    const int ea = int(rng() % 3), eb = ea + 1;
    const CachePolicy pol = CachePolicy::LFRU;
    for (int swap = 0; swap < 2; ++swap) {
      const moecap::ExpertUsage& x = swap ? b : a;
      const moecap::ExpertUsage& y = swap ? a : b;
      const int ex = swap ? eb : ea, ey = swap ? ea : eb;
      if (!moecap::evict_before(pol, x, ex, y, ey, pass)) continue;
      ++pairs;
      const int64_t f = moecap::evict_order_flips(pol, x, ex, y, ey, pass);
      EXPECT(f > pass, "flip after now");
      const int64_t until = f == INT64_MAX ? pass + 200 : f;
      for (int64_t q = pass; q < until && q < pass + 200; ++q)
        EXPECT(moecap::evict_before(pol, x, ex, y, ey, q), "order holds before the flip at %lld (pass %lld)",
               (long long)f, (long long)q);
      if (f != INT64_MAX) {
        ++flipping;
        EXPECT(!moecap::evict_before(pol, x, ex, y, ey, f), "order flipped at %lld", (long long)f);
      }
    }
  }
  std::printf("ok   lfru flip times exact (%d ordered pairs, %d that flip)\n", pairs, flipping);
}

// The same random operations on SlotTable and on the reference scan: every assign must return the
// same slot and evict the same expert, for every policy, with needed, loading, protected and static
// slots excluded, over histories long enough for lfru's scores to reorder as passes go by.
static void test_victims_match_linear_scan() {
  std::mt19937 rng(11);
  int64_t assigns = 0, evictions = 0;
  int trials = 0;
  for (int trial = 0; trial < 960; ++trial, ++trials) {
    const bool big = trial % 6 == 0;
    const int E = big ? 64 + int(rng() % 257) : 1 + int(rng() % 40);
    // The edges too: one slot (every miss evicts), and as many slots as experts (none does).
    const int slots = trial % 8 == 1 ? 1 : trial % 8 == 2 ? E : 1 + int(rng() % E);
    const CachePolicy p = CachePolicy(trial % 4);
    const int stream = 1 + int(rng() % 4);
    const int passes = big ? 1500 : 200;
    SlotTable t(E, slots, p, stream);
    ReferenceSlotTable r(E, slots, p, stream);
    // Skewed routing whose hot set drifts, so frequencies and ages both matter.
    std::vector<double> w(static_cast<size_t>(E));
    int shift = 0;
    std::vector<int> loading;
    const auto same_slots = [&](const char* when, int pass) {
      for (int e = 0; e < E; ++e)
        EXPECT(t.slot_of(e) == r.slot_of(e), "%s trial %d pass %d (%s): expert %d in slot %d, reference %d", name(p),
               trial, pass, when, e, t.slot_of(e), r.slot_of(e));
    };
    const auto assign_both = [&](int e, bool prefetch, const std::vector<char>* protect, int pass) {
      int ev = -2, rev = -2;
      const int s = t.assign(e, prefetch, protect, &ev), rs = r.assign(e, prefetch, protect, &rev);
      EXPECT(s == rs && ev == rev,
             "%s trial %d pass %d: assign %d → slot %d evicting %d, reference slot %d evicting %d", name(p), trial,
             pass, e, s, ev, rs, rev);
      ++assigns;
      if (ev >= 0) ++evictions;
      return s;
    };
    for (int pass = 0; pass < passes; ++pass) {
      if (pass % 97 == 0) shift = int(rng() % E);
      for (int e = 0; e < E; ++e) w[size_t((e + shift) % E)] = 1.0 / (1 + e);
      std::discrete_distribution<int> pick(w.begin(), w.end());
      std::vector<char> in(size_t(E), 0);
      std::vector<int> needed;
      const int n = rng() % 9 == 0 ? 0 : 1 + int(rng() % std::min(E, 12));
      for (int i = 0; i < n; ++i) {
        const int e = pick(rng);
        if (!in[size_t(e)]) in[size_t(e)] = 1, needed.push_back(e);
      }
      t.begin_pass(needed);
      r.begin_pass(needed);
      std::shuffle(needed.begin(), needed.end(), rng);
      std::vector<int> todo;  // needed and not yet done
      for (int e : needed) todo.push_back(e);
      while (!todo.empty()) {
        const size_t i = rng() % todo.size();
        const int e = todo[i];
        if (t.slot_of(e) < 0) {
          std::vector<char> protect;
          const bool prot = rng() % 4 == 0;
          if (prot) {
            protect.assign(size_t(E), 0);
            for (int j = 0; j < E; ++j) protect[size_t(j)] = rng() % 3 == 0;
          }
          const int s = assign_both(e, false, prot ? &protect : nullptr, pass);
          if (s < 0) {  // no candidate: finish another expert of the pass, or the loads in flight
            bool freed = false;
            for (size_t j = 0; j < todo.size() && !freed; ++j)
              if (t.slot_of(todo[j]) >= 0) {
                t.done(todo[j]), r.done(todo[j]);
                todo.erase(todo.begin() + long(j));
                freed = true;
              }
            if (!freed && !loading.empty()) {
              for (int ls : loading) t.set_loading(ls, false), r.set_loading(ls, false);
              loading.clear();
              freed = true;
            }
            if (!freed) {  // only protection was in the way: retry without it
              EXPECT(prot, "%s trial %d: no slot for %d although nothing blocks", name(p), trial, e);
            }
            continue;
          }
          if (rng() % 5 == 0) t.set_loading(s, true), r.set_loading(s, true), loading.push_back(s);
          if (rng() % 40 == 0) {  // a failed load: the slot is empty again
            t.drop(e), r.drop(e);
            loading.erase(std::remove(loading.begin(), loading.end(), s), loading.end());
            continue;
          }
        }
        if (rng() % 3 == 0 && !loading.empty()) {
          const size_t j = rng() % loading.size();
          t.set_loading(loading[j], false), r.set_loading(loading[j], false);
          loading.erase(loading.begin() + long(j));
        }
        t.done(e), r.done(e);
        todo.erase(todo.begin() + long(i));
      }
      t.end_pass();
      r.end_pass();
      same_slots("after the pass", pass);
      if (rng() % 6 == 0) {
        std::vector<int> pred;
        for (int i = 0; i < 1 + int(rng() % 4); ++i) pred.push_back(pick(rng));
        EXPECT(t.prefetch(pred) == r.prefetch(pred), "%s trial %d pass %d: same prefetch loads", name(p), trial, pass);
      }
      if (rng() % 10 == 0) {  // a load between passes (prefetch=true) with some experts protected
        const int e = int(rng() % E);
        if (t.slot_of(e) < 0) {
          std::vector<char> protect(size_t(E), 0);
          for (int j = 0; j < E; ++j) protect[size_t(j)] = rng() % 2 == 0;
          assign_both(e, true, &protect, pass);
        }
      }
      if (p == CachePolicy::Static && (pass == passes / 3 || (big && pass == 2 * passes / 3)))
        EXPECT(t.pin_static() == r.pin_static(), "%s trial %d: same static pins", name(p), trial);
      same_slots("between passes", pass);
    }
    const auto& a = t.stats();
    const auto& b = r.stats();
    EXPECT(a.passes == b.passes && a.hits == b.hits && a.misses == b.misses && a.evictions == b.evictions &&
               a.loads == b.loads && a.prefetch_issued == b.prefetch_issued && a.prefetch_used == b.prefetch_used &&
               a.waves == b.waves,
           "%s trial %d: same counters", name(p), trial);
  }
  std::printf("ok   victims identical to a scan of every slot (%d tables, 4 policies, %lld assigns, %lld evictions)\n",
              trials, (long long)assigns, (long long)evictions);
}

// SlotTable::replay (the trace replay's entry point, with a short path for passes without waves)
// against stream_pass with no-op callbacks, pass by pass, on twin tables: after every batch of
// passes the slots, usage, flags and every counter agree, and so do the victims of the batches
// after it. Passes up to E experts (waves, so the stream_pass fallback) and empty ones, needed in
// any order, capacity 1 and E, mask, list and tree, static pins taken between batches (on any
// policy), prefetches and slots loading between batches.
static void test_replay_matches_stream_pass() {
  std::mt19937 rng(23);
  int64_t passes_run = 0;
  int tables = 0;
  for (int trial = 0; trial < 1200; ++trial, ++tables) {
    const bool big = trial % 6 == 0;
    const int E = big ? 64 + int(rng() % 257) : 1 + int(rng() % 40);
    const int slots = trial % 8 == 1 ? 1 : trial % 8 == 2 ? E : 1 + int(rng() % E);
    const CachePolicy p = CachePolicy(trial % 4);
    const int stream = 1 + int(rng() % 4);
    SlotTable a(E, slots, p, stream), b(E, slots, p, stream);
    const auto noop = [](int, int) {};
    std::vector<double> w(static_cast<size_t>(E));
    const int batches = big ? 40 : 25;
    const int wide = int(rng() % 3);  // 0: passes of up to 12 experts, 1: up to E, 2: up to the slots
    int loading = -1;
    bool pinned = false;
    for (int batch = 0; batch < batches; ++batch) {
      const int shift = int(rng() % E);
      for (int e = 0; e < E; ++e) w[size_t((e + shift) % E)] = 1.0 / (1 + e);
      std::discrete_distribution<int> pick(w.begin(), w.end());
      std::vector<int> ids;
      std::vector<int64_t> offsets{0};
      const int count = 1 + int(rng() % 30);
      for (int i = 0; i < count; ++i) {
        const int most = wide == 0 ? std::min(E, 12) : wide == 1 ? E : slots;
        const int n = rng() % 9 == 0 ? 0 : 1 + int(rng() % most);
        std::vector<char> in(size_t(E), 0);
        std::vector<int> pass;
        for (int j = 0; j < n; ++j) {
          const int e = pick(rng);
          if (!in[size_t(e)]) in[size_t(e)] = 1, pass.push_back(e);
        }
        if (rng() % 2) std::sort(pass.begin(), pass.end());
        ids.insert(ids.end(), pass.begin(), pass.end());
        offsets.push_back(int64_t(ids.size()));
      }
      a.replay(ids.data(), offsets.data(), count);
      for (int i = 0; i < count; ++i)
        moecap::stream_pass(b, ids.data() + offsets[size_t(i)], size_t(offsets[size_t(i) + 1] - offsets[size_t(i)]),
                            noop, noop);
      passes_run += count;
      for (int e = 0; e < E; ++e) {
        const moecap::ExpertUsage &ua = a.usage(e), &ub = b.usage(e);
        EXPECT(a.slot_of(e) == b.slot_of(e) && ua.uses == ub.uses && ua.last_tick == ub.last_tick &&
                   ua.last_pass == ub.last_pass,
               "%s trial %d batch %d: expert %d in slot %d (replay) vs %d (stream_pass), or its usage differs", name(p),
               trial, batch, e, a.slot_of(e), b.slot_of(e));
      }
      for (int s = 0; s < a.slots(); ++s)
        EXPECT(a.owner(s) == b.owner(s) && a.needed(s) == b.needed(s) && a.prefetched(s) == b.prefetched(s) &&
                   a.loading(s) == b.loading(s),
               "%s trial %d batch %d: slot %d", name(p), trial, batch, s);
      const auto &x = a.stats(), &y = b.stats();
      EXPECT(x.passes == y.passes && x.hits == y.hits && x.misses == y.misses && x.evictions == y.evictions &&
                 x.loads == y.loads && x.prefetch_issued == y.prefetch_issued && x.prefetch_used == y.prefetch_used &&
                 x.waves == y.waves,
             "%s trial %d batch %d: counters (hits %lld/%lld evictions %lld/%lld waves %lld/%lld)", name(p), trial,
             batch, (long long)x.hits, (long long)y.hits, (long long)x.evictions, (long long)y.evictions,
             (long long)x.waves, (long long)y.waves);
      // Between batches, as an engine's cache might: a static pin, a prefetch, a slot loading.
      if (batch == batches / 3 && (p == CachePolicy::Static || rng() % 4 == 0)) {
        const std::vector<int> pins = a.pin_static();
        EXPECT(pins == b.pin_static(), "%s trial %d: same static pins", name(p), trial);
        pinned = !pins.empty();
      }
      if (rng() % 5 == 0) {
        std::vector<int> pred;
        for (int i = 0; i < 1 + int(rng() % 4); ++i) pred.push_back(pick(rng));
        EXPECT(a.prefetch(pred) == b.prefetch(pred), "%s trial %d batch %d: same prefetch loads", name(p), trial,
               batch);
      }
      if (loading >= 0) {
        a.set_loading(loading, false), b.set_loading(loading, false);
        loading = -1;
      } else if (rng() % 8 == 0 && slots >= 2 && !pinned) {  // another slot still streams
        const int s = int(rng() % slots);
        if (a.owner(s) >= 0) a.set_loading(s, true), b.set_loading(s, true), loading = s;
      }
    }
  }
  std::printf("ok   replay() identical to stream_pass pass by pass (%d tables, %lld passes, waves, pins, prefetch)\n",
              tables, (long long)passes_run);
}

int main() {
  test_policy_order();
  test_capacity_one();
  test_prefetch();
  test_random_schedules();
  test_lfru_flip_times();
  test_victims_match_linear_scan();
  test_replay_matches_stream_pass();
  std::printf("all %d checks passed\n", g_checks);
  return 0;
}
