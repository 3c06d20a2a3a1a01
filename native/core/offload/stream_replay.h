// One config's replay by the rule SlotTable's passes follow rather than by SlotTable itself (the
// same counts at a fraction of the cost: no slots, candidate lists or pass protocol, only the
// resident set): static after its pins, and the capacities some pass exceeds, which no stack walk
// gives (stack_replay.h).
//
// The rule, for a pass needing the unpinned set M (m experts; h of them resident, q = m - h
// misses) with S slots for unpinned experts, R of them filled:
//  - m <= S (no waves): the misses take the free slots, then evict the earliest residents not
//    needed in cache_policy.h's order at that pass (lru, static: the least recent).
//  - m > S (waves): the hits go first, then the misses, each batch in ascending id; the first
//    S - h misses take the free slots and every resident not needed; after that each expert done
//    frees its slot for the next miss at once (it is the only candidate, whatever the policy),
//    so the experts done first leave first and the last S of (hits, misses) stay.
// In both, evictions = q - min(q, S - R). Pinned experts (static) are hits and take no stream slot.
// Each pass costs O(pass + R) without a branch on which expert hits (stream_replay.cc).
#pragma once
#include "offload/cache_replay.h"

namespace moecap {

struct SlotStats;
// The five counts of a SlotTable's statistics.
ReplayCounts counts_of(const SlotStats& s);

// Counts of `policy` at `capacity` (>= 1, else Error(Range)) over the passes: static's profile
// passes and the passes until every pinned expert has been loaded go through SlotTable (pins
// still loading share the slots), the rest by the rule above.
ReplayCounts replay_streaming(const PassSets& p, const ReplayLayer& layer, int capacity, CachePolicy policy);

}  // namespace moecap
