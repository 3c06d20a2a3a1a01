// Hit counts of one policy at every capacity from a single walk over a layer's passes, by a
// stack algorithm (Mattson, Gecsei, Slutz and Traiger, 1970): the caches of all capacities are
// nested, the cache of capacity C being the first C entries of one stack, so a use is a hit at
// capacity C exactly when its expert stands at depth < C when its pass begins. One walk then
// replaces one replay per capacity.
//
// Why the caches nest, for a pass needing the set N (n experts): lru, lfu, lfru without waves
// (C >= n, so every miss takes a free slot or a candidate): SlotTable leaves
// N ∪ best_{C-n}(S_C \ N), "best" by cache_policy.h's evict_before at that pass. Its keys (ticks,
// all-time uses, the pass) are the same for every capacity, so with S_C ⊆ S_{C+1} ⊆ S_C ∪ {u} the
// result at C+1 holds the one at C.
// Each pass rewrites the stack, N on top. lru: the old entries not in N follow in their order (a
// compaction down to the deepest expert of N found; the entries below it keep their order and
// move down as one). lfu, lfru: down the old stack each entry not in N joins a small
// pool from which the best goes to the next depth; once every needed expert found in the stack has
// been passed and the pool is empty, the rest of the stack is unchanged, so a pass of hits costs
// its deepest hit. (Belády's counts come from belady_replay.h.)
#pragma once
#include <cstdint>
#include <vector>

#include "offload/cache_replay.h"

namespace moecap {

// The largest pass (distinct experts) of a layer: online policies at capacities >= this replay
// without waves, so replay_online_stack gives their counts.
int largest_pass(const PassSets& p);

// Counts of lru, lfu or lfru at each of `capacities` (each in [largest_pass, experts], else
// Error(Range)), results in the order given. Static is not a stack policy (its pins depend on the
// capacity) and is refused.
std::vector<ReplayCounts> replay_online_stack(const PassSets& p, const ReplayLayer& layer, CachePolicy policy,
                                              const std::vector<int>& capacities);

// Shared with belady_replay.cc. Each capacity in [lo, experts], else Error(Range) naming `what`.
void check_capacities(const std::vector<int>& capacities, int lo, int experts, const char* what);

// The five counts of a replay whose loads fill free slots until the cache is full (nothing leaves
// before), from its hits at `capacity` over `uses` uses of `distinct` experts.
ReplayCounts counts_from_hits(int64_t passes, int64_t uses, int64_t hits, int capacity, int distinct);

}  // namespace moecap
