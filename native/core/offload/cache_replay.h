// Replays a routing trace through the expert cache's bookkeeping without loading or computing
// anything: per pass, the distinct experts of T consecutive tokens, with the counts SlotTable
// gives (the same eviction order, waves and static pins as the engines' caches), or Belády's
// optimal choice (after each pass the experts needed soonest stay), which bounds every online
// policy from above. replay_layer gives Belády at every capacity from one packing of reuse
// intervals (belady_replay.h), lru/lfu/lfru at the capacities no pass exceeds from one stack walk
// per policy (stack_replay.h), and every other config by SlotTable's rule (stream_replay.h);
// test/native/stack_replay_test.cc holds them to a SlotTable replay per config (Belády to a plain
// one).
#pragma once
#include <cstdint>
#include <vector>

#include "offload/offload_config.h"

namespace moecap {

struct ReplayConfig {
  int capacity = 0;     // resident slots (>= 1)
  bool belady = false;  // true: Belády's optimal; false: `policy`
  CachePolicy policy = CachePolicy::LRU;
};

struct ReplayCounts {
  int64_t passes = 0;
  int64_t hits = 0;    // needed experts resident when their pass began
  int64_t misses = 0;  // needed experts read from the slow tier by their own pass
  int64_t loads = 0;   // reads from the slow tier (= misses; no prefetch in a replay)
  int64_t evictions = 0;
};

struct ReplayLayer {
  int experts = 0;
  int top_k = 0;                  // ids per token; negative ids (dropped) are skipped
  int tokens_per_pass = 1;        // T
  int static_profile_passes = 0;  // static: pin after this many passes (the profile run)
};

// The passes of one layer as distinct-expert sets (CSR), built once and replayed per config.
struct PassSets {
  std::vector<int64_t> offsets;  // passes + 1
  std::vector<int32_t> experts;  // ascending within a pass
  int64_t passes() const { return int64_t(offsets.size()) - 1; }
};

// ids [tokens * top_k]; throws Error(Range) naming the first id outside [-1, experts).
PassSets build_pass_sets(const int32_t* ids, int64_t tokens, const ReplayLayer& layer);

// Every config over the same passes (built once), results in the order of `configs`; the jobs
// (a stack walk or a table replay each) run on up to `threads` threads (the caller's included).
std::vector<ReplayCounts> replay_layer(const int32_t* ids, int64_t tokens, const ReplayLayer& layer,
                                       const std::vector<ReplayConfig>& configs, int threads = 1);

}  // namespace moecap
