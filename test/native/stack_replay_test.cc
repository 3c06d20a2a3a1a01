// The stack replays (native/core/offload/stack_replay.cc), Belády's interval packing
// (belady_replay.cc) and the streaming replays (stream_replay.cc) against one SlotTable replay per
// config (replay_policy below; for Belády the plain reference below), on seeded routings of many
// shapes, all five counts equal:
//  - stacks: every capacity from the largest pass (lru/lfu/lfru) up to E; Belády from 1 up to E
//    (above 16 experts at every fifth capacity and E: its reference scans; 255 and 256 take the
//    byte and the wide gap counts);
//  - streaming: all four policies at every capacity up to twice the largest pass (waves, pins
//    crowding the stream slots), then every fifth, and E + 1; static with profile runs of 0, 1, 10
//    passes and one longer than the trace.
// Shapes: E from 1 to 256 (lfru's candidates in the bit mask up to 64 slots, in the tree above), k
// up to 8, T = 1..5 (passes of varying size), skew 0 to 2, dropped ids (-1), long runs (lfru's
// scores age with the pass). Also through replay_layer (the configs split between stacks and
// streaming), build_pass_sets against sort + unique per pass, and the refusals. Built and run by
// test/interop/trace_cache.test.ts with g++ (and by scripts/sanitize.sh under ASan + UBSan);
// exits non-zero on a failure.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "../../cuda/test/expect.h"
#include "error.h"
#include "offload/belady_replay.h"
#include "offload/cache_replay.h"
#include "offload/slot_table.h"
#include "offload/stack_replay.h"
#include "offload/stream_replay.h"

using namespace moecap;

// k distinct ids per token from a Zipf(skew) over a seeded permutation of the experts; with `drop`,
// about one id in 20 is -1 (a dropped token slot).
static std::vector<int32_t> routing(uint64_t seed, int tokens, int E, int k, double skew, bool drop) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  const auto next = [&s] {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    return double(s >> 11) / 9007199254740992.0;
  };
  std::vector<int> perm(static_cast<size_t>(E));
  for (int e = 0; e < E; ++e) perm[size_t(e)] = e;
  for (int i = E - 1; i > 0; --i) std::swap(perm[size_t(i)], perm[size_t(int(next() * (i + 1)))]);
  std::vector<double> cdf(static_cast<size_t>(E));
  double sum = 0;
  for (int r = 0; r < E; ++r) cdf[size_t(r)] = (sum += 1.0 / std::pow(r + 1.0, skew));
  std::vector<int32_t> ids;
  std::vector<char> taken(static_cast<size_t>(E));
  for (int t = 0; t < tokens; ++t) {
    std::fill(taken.begin(), taken.end(), 0);
    for (int j = 0; j < k; ++j) {
      int e;
      do {
        const double u = next() * sum;
        int r = 0;
        while (r < E - 1 && cdf[size_t(r)] < u) ++r;
        e = perm[size_t(r)];
      } while (taken[size_t(e)]);
      taken[size_t(e)] = 1;
      ids.push_back(drop && next() < 0.05 ? -1 : e);
    }
  }
  return ids;
}

static bool same(const ReplayCounts& a, const ReplayCounts& b) {
  return a.passes == b.passes && a.hits == b.hits && a.misses == b.misses && a.loads == b.loads &&
         a.evictions == b.evictions;
}

static std::string str(const ReplayCounts& r) {
  return std::to_string(r.passes) + "/" + std::to_string(r.hits) + "/" + std::to_string(r.misses) + "/" +
         std::to_string(r.loads) + "/" + std::to_string(r.evictions);
}

// One config through SlotTable, pass by pass as the engines' caches keep their books: static
// replays its profile passes, pins, then the rest.
static ReplayCounts replay_policy(const PassSets& p, const ReplayLayer& layer, int capacity, CachePolicy policy) {
  const int cap = std::min(capacity, layer.experts);
  SlotTable table(layer.experts, cap, policy, static_stream_slots(layer.top_k, cap));
  const int64_t P = p.passes();
  const int* ids = reinterpret_cast<const int*>(p.experts.data());
  const int64_t pin_at = policy == CachePolicy::Static ? std::min(P, int64_t(layer.static_profile_passes)) : P;
  table.replay(ids, p.offsets.data(), pin_at);
  if (pin_at < P) {
    table.pin_static();
    table.replay(ids, p.offsets.data() + pin_at, P - pin_at);
  }
  return counts_of(table.stats());
}

// Belády at one capacity, written plainly: after each pass, of the resident and needed experts the
// `capacity` needed soonest stay (the latest next use leaves first, found by a scan; never again
// counts as the latest). Hits are the needed experts resident when the pass begins.
static ReplayCounts belady_reference(const PassSets& p, int experts, int capacity) {
  const int64_t P = p.passes();
  // next_at[j]: the next pass needing entry j's expert, P when none.
  std::vector<int64_t> next_at(p.experts.size()), upcoming(size_t(experts), P);
  for (int64_t i = P - 1; i >= 0; --i)
    for (int64_t j = p.offsets[size_t(i)]; j < p.offsets[size_t(i + 1)]; ++j) {
      next_at[size_t(j)] = upcoming[size_t(p.experts[size_t(j)])];
      upcoming[size_t(p.experts[size_t(j)])] = i;
    }
  std::vector<int> held;                          // resident experts
  std::vector<int64_t> next(size_t(experts), P);  // next use of each expert after the current pass
  ReplayCounts r;
  for (int64_t i = 0; i < P; ++i) {
    ++r.passes;
    for (int64_t j = p.offsets[size_t(i)]; j < p.offsets[size_t(i + 1)]; ++j) {
      const int e = p.experts[size_t(j)];
      const bool hit = std::find(held.begin(), held.end(), e) != held.end();
      r.hits += hit;
      if (!hit) held.push_back(e);
      next[size_t(e)] = next_at[size_t(j)];
    }
    while (int(held.size()) > capacity) {
      size_t latest = 0;
      for (size_t x = 1; x < held.size(); ++x)
        if (next[size_t(held[x])] > next[size_t(held[latest])]) latest = x;
      held.erase(held.begin() + std::ptrdiff_t(latest));
      ++r.evictions;
    }
  }
  r.misses = int64_t(p.experts.size()) - r.hits;
  r.loads = r.misses;
  return r;
}

struct Shape {
  int E, k, T, tokens;
  double skew;
  bool drop;
};

static int compared = 0, streamed = 0;

static void check_shape(uint64_t seed, const Shape& sh) {
  const std::vector<int32_t> ids = routing(seed, sh.tokens, sh.E, sh.k, sh.skew, sh.drop);
  ReplayLayer layer;
  layer.experts = sh.E, layer.top_k = sh.k, layer.tokens_per_pass = sh.T, layer.static_profile_passes = 10;
  const PassSets p = build_pass_sets(ids.data(), sh.tokens, layer);
  const int largest = std::max(1, largest_pass(p));
  std::vector<int> online, all;
  for (int c = 1; c <= sh.E; ++c) {
    if (sh.E <= 16 || c % 5 == 0 || c == 1 || c == sh.E) all.push_back(c);
    if (c >= largest) online.push_back(c);
  }
  for (CachePolicy pol : {CachePolicy::LRU, CachePolicy::LFU, CachePolicy::LFRU}) {
    const std::vector<ReplayCounts> st = replay_online_stack(p, layer, pol, online);
    for (size_t i = 0; i < online.size(); ++i) {
      const ReplayCounts t = replay_policy(p, layer, online[i], pol);
      EXPECT(same(st[i], t), "seed %llu E %d k %d T %d %s capacity %d: stack %s, table %s", (unsigned long long)seed,
             sh.E, sh.k, sh.T, policy_name(pol), online[i], str(st[i]).c_str(), str(t).c_str());
      ++compared;
    }
  }
  // Streaming: lru, lfu, lfru at every capacity (waves below the largest pass), static after profiles of
  // several lengths (0: nothing pinned; past the end: the pin never comes); every capacity up to
  // twice the largest pass, then those of `all`, and E + 1.
  for (int profile : {0, 1, 10, sh.tokens + 1}) {
    ReplayLayer with = layer;
    with.static_profile_passes = profile;
    for (int c = 1; c <= sh.E + 1; ++c)
      for (CachePolicy pol : {CachePolicy::Static, CachePolicy::LRU, CachePolicy::LFU, CachePolicy::LFRU}) {
        // Every capacity where passes wave or pins crowd the stream slots, above that as `all`.
        if (c > 2 * largest + 2 && c <= sh.E && std::find(all.begin(), all.end(), c) == all.end()) continue;
        if (pol != CachePolicy::Static && profile != 10) continue;  // only static has a profile
        const ReplayCounts s = replay_streaming(p, with, c, pol), t = replay_policy(p, with, c, pol);
        EXPECT(same(s, t), "seed %llu E %d k %d T %d %s profile %d capacity %d: streaming %s, table %s",
               (unsigned long long)seed, sh.E, sh.k, sh.T, policy_name(pol), profile, c, str(s).c_str(),
               str(t).c_str());
        ++streamed;
      }
  }
  const std::vector<ReplayCounts> bs = replay_belady(p, layer, all);
  for (size_t i = 0; i < all.size(); ++i) {
    const ReplayCounts b = belady_reference(p, sh.E, all[i]);
    EXPECT(same(bs[i], b), "seed %llu E %d k %d T %d belady capacity %d: intervals %s, reference %s",
           (unsigned long long)seed, sh.E, sh.k, sh.T, all[i], str(bs[i]).c_str(), str(b).c_str());
    ++compared;
  }
}

// build_pass_sets against sort + unique per pass: every shape's routing, and by hand passes with
// repeats and dropped ids at T * k from 1 to 64.
static void check_pass_sets(const std::vector<Shape>& shapes) {
  const auto check = [](const std::vector<int32_t>& ids, int E, int k, int T, int tokens) {
    ReplayLayer layer;
    layer.experts = E, layer.top_k = k, layer.tokens_per_pass = T;
    const PassSets p = build_pass_sets(ids.data(), tokens, layer);
    PassSets want;
    want.offsets.push_back(0);
    for (int t0 = 0; t0 < tokens; t0 += T) {
      std::vector<int32_t> pass;
      for (int i = t0 * k; i < std::min(tokens, t0 + T) * k; ++i)
        if (ids[size_t(i)] >= 0) pass.push_back(ids[size_t(i)]);
      std::sort(pass.begin(), pass.end());
      pass.erase(std::unique(pass.begin(), pass.end()), pass.end());
      want.experts.insert(want.experts.end(), pass.begin(), pass.end());
      want.offsets.push_back(int64_t(want.experts.size()));
    }
    EXPECT(p.offsets == want.offsets && p.experts == want.experts, "pass sets of E %d k %d T %d tokens %d", E, k, T,
           tokens);
  };
  uint64_t seed = 500;
  for (const Shape& sh : shapes)
    check(routing(seed++, sh.tokens, sh.E, sh.k, sh.skew, sh.drop), sh.E, sh.k, sh.T, sh.tokens);
  uint64_t s = 7;
  for (int E : {1, 2, 9, 300})
    for (int k = 1; k <= 8 && k <= E; ++k)
      for (int T : {1, 2, 3, 8})
        for (int tokens : {0, 1, 5, 200}) {
          std::vector<int32_t> ids;
          for (int i = 0; i < tokens * k; ++i) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            ids.push_back(s % 10 == 0 ? -1 : int32_t((s >> 8) % uint64_t(s % 3 == 0 ? std::min(E, 3) : E)));
          }
          check(ids, E, k, T, tokens);
        }
  std::printf("ok   pass sets == sort + unique per pass\n");
}

// replay_layer splits the configs (stacks for Belády and the capacities no pass exceeds, streaming
// for the rest and static) and puts each result back in the order asked.
static void check_layer_split() {
  const Shape sh{40, 4, 2, 3000, 1.0, false};
  const std::vector<int32_t> ids = routing(77, sh.tokens, sh.E, sh.k, sh.skew, sh.drop);
  ReplayLayer layer;
  layer.experts = sh.E, layer.top_k = sh.k, layer.tokens_per_pass = sh.T, layer.static_profile_passes = 20;
  const PassSets p = build_pass_sets(ids.data(), sh.tokens, layer);
  std::vector<ReplayConfig> configs;
  for (int c : {33, 1, 8, 3, 50, 20, 5})
    for (int b = 0; b < 5; ++b) {
      ReplayConfig cfg;
      cfg.capacity = c;
      cfg.belady = b == 4;
      cfg.policy = b < 4 ? CachePolicy(b) : CachePolicy::LRU;
      configs.push_back(cfg);
    }
  for (int threads : {1, 3}) {
    const std::vector<ReplayCounts> r = replay_layer(ids.data(), sh.tokens, layer, configs, threads);
    for (size_t i = 0; i < configs.size(); ++i) {
      const ReplayConfig& c = configs[i];
      const ReplayCounts want = c.belady ? belady_reference(p, sh.E, std::min(c.capacity, sh.E))
                                         : replay_policy(p, layer, c.capacity, c.policy);
      EXPECT(same(r[i], want), "replay_layer config %zu (capacity %d, %s), %d threads: %s, want %s", i, c.capacity,
             c.belady ? "belady" : policy_name(c.policy), threads, str(r[i]).c_str(), str(want).c_str());
    }
  }
  std::printf("ok   replay_layer: %zu configs in the order asked, stacks and streaming, 1 and 3 threads\n",
              configs.size());
}

static void check_refusals() {
  const std::vector<int32_t> ids = routing(5, 50, 16, 4, 1.0, false);
  ReplayLayer layer;
  layer.experts = 16, layer.top_k = 4, layer.tokens_per_pass = 1;
  const PassSets p = build_pass_sets(ids.data(), 50, layer);
  const auto refused = [&](auto&& call, const char* want) {
    try {
      call();
    } catch (const Error& e) {
      EXPECT(std::string(e.what()).find(want) != std::string::npos, "message '%s' lacks '%s'", e.what(), want);
      return;
    }
    EXPECT(false, "no error (wanted '%s')", want);
  };
  refused([&] { replay_online_stack(p, layer, CachePolicy::LRU, {3}); }, "lru: capacity 3 outside [4, 16]");
  refused([&] { replay_online_stack(p, layer, CachePolicy::LFU, {17}); }, "lfu: capacity 17 outside [4, 16]");
  refused([&] { replay_online_stack(p, layer, CachePolicy::Static, {8}); }, "static policy has no stack replay");
  refused([&] { replay_belady(p, layer, {0}); }, "belady: capacity 0 outside [1, 16]");
  refused([&] { replay_belady(p, layer, {17}); }, "belady: capacity 17 outside [1, 16]");
  refused([&] { replay_streaming(p, layer, 0, CachePolicy::Static); }, "capacity must be >= 1, got 0");
  for (int T : {1, 3}) {
    std::vector<int32_t> bad = ids;
    bad[29] = 16;
    layer.tokens_per_pass = T;
    refused([&] { build_pass_sets(bad.data(), 50, layer); }, "expert id 16 at token 7 is out of range [0, 16)");
  }
  std::printf(
      "ok   refusals: capacities below the largest pass or above E, static, Belády outside [1, E], ids above E\n");
}

// Belády above 255 slots (four-byte gap counts) and at E (no gap counts): 300 experts.
static void check_belady_wide() {
  const Shape sh{300, 8, 1, 3000, 0.5, false};
  for (uint64_t seed : {101, 102}) {
    const std::vector<int32_t> ids = routing(seed, sh.tokens, sh.E, sh.k, sh.skew, sh.drop);
    ReplayLayer layer;
    layer.experts = sh.E, layer.top_k = sh.k, layer.tokens_per_pass = sh.T;
    const PassSets p = build_pass_sets(ids.data(), sh.tokens, layer);
    const std::vector<int> caps = {255, 256, 270, 299, 300};
    const std::vector<ReplayCounts> bs = replay_belady(p, layer, caps);
    for (size_t i = 0; i < caps.size(); ++i) {
      const ReplayCounts b = belady_reference(p, sh.E, caps[i]);
      EXPECT(same(bs[i], b), "seed %llu E 300 belady capacity %d: intervals %s, reference %s", (unsigned long long)seed,
             caps[i], str(bs[i]).c_str(), str(b).c_str());
    }
  }
  std::printf("ok   belady at 255..300 slots of 300 experts == the plain reference\n");
}

int main() {
  const std::vector<Shape> shapes = {
      {1, 1, 1, 200, 1.0, false},    {2, 1, 3, 300, 0.5, false},     {5, 2, 1, 500, 1.2, false},
      {8, 2, 4, 800, 2.0, true},     {16, 4, 1, 2000, 1.0, false},   {37, 3, 5, 1500, 0.0, true},
      {64, 8, 1, 2500, 0.8, false},  {65, 6, 2, 2000, 1.0, false},   {100, 8, 3, 1500, 1.1, true},
      {256, 8, 1, 3000, 1.0, false}, {200, 2, 1, 20000, 1.5, false}, {50, 3, 2, 12, 1.0, false},
  };
  check_pass_sets(shapes);  // first: every other check replays these sets
  uint64_t seed = 1;
  for (const Shape& sh : shapes)
    for (int rep = 0; rep < 3; ++rep) check_shape(seed++, sh);
  std::printf(
      "ok   stack == one replay per capacity: %d (routing, policy, capacity) counts over %zu shapes x 3 seeds\n",
      compared, shapes.size());
  std::printf("ok   streaming == SlotTable: %d (routing, policy, profile, capacity) counts\n", streamed);
  check_belady_wide();
  check_layer_split();
  check_refusals();
  std::printf("all %d checks passed\n", g_checks);
  return 0;
}
