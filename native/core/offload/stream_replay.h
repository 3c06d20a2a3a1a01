// The replay of the caches whose unpinned slots are plain lru: static after its pins, and lru at
// capacities some pass exceeds (which no stack walk gives), at one capacity each, by the rule
// SlotTable's passes follow rather than by SlotTable itself (the same counts at a fraction of the
// cost: no slots, lists or pass protocol, only the order of the unpinned residents).
//
// The rule, for a pass needing the unpinned set M (m experts; h of them resident, q = m - h
// misses) with S slots for unpinned experts, R of them filled:
//  - m <= S (no waves): the misses take the free slots, then evict the least recent residents
//    not needed; M becomes the most recent, in the pass's order (ascending id, as its ticks).
//  - m > S (waves): the hits go first, then the misses, each batch in ascending id; the first
//    S - h misses take the free slots and every resident not needed; after that each expert done
//    frees its slot for the next miss at once (it is the only candidate), so the experts done
//    first leave first and the last S of (hits, misses) stay, least recent first by id.
// In both, evictions = q - min(q, S - R). Pinned experts are hits and take no stream slot.
#pragma once
#include "offload/cache_replay.h"

namespace moecap {

// Counts of `policy` (Static or LRU; else Error(Range)) at `capacity` over the passes: static's
// profile passes and the passes until every pinned expert has been loaded go through SlotTable
// (pins still loading share the slots), the rest by the rule above.
ReplayCounts replay_streaming(const PassSets& p, const ReplayLayer& layer, int capacity, CachePolicy policy);

}  // namespace moecap
