// Belády's counts (after each pass the C experts needed soonest stay, the pass's own among them;
// the rest leave) at every capacity, as a packing of reuse intervals: a use at pass i of an expert
// last used at pass q is a hit exactly when the expert stayed through the gaps q .. i-1 (gap g lies
// between passes g and g + 1). A gap holds at most C experts, so the hits are a largest set of
// intervals with at most C over any gap. Taking the intervals by their end (the trace's order) and
// keeping each one that still fits finds a largest such set (the greedy of interval scheduling on
// C machines), and Belády's hits are one too: the counts are equal, the sets need not be.
// test/native/stack_replay_test.cc holds them to a plain Belády per capacity.
//
// Per capacity one byte per gap (four above 255; none when every expert fits): a use reads the
// first 16 gaps of its interval as two 64-bit words and finds a full gap, or adds one to each,
// without a branch; only an interval longer than 16 passes with room in its first 16 gaps is
// scanned on, a word at a time. No next uses are needed. The cost is one such step per capacity
// asked (a stack walk's hardly grew with them): faster at the few capacities a plan asks
// (3 to 6), slower from about a dozen.
#pragma once
#include <vector>

#include "offload/cache_replay.h"

namespace moecap {

// Belády's counts at each of `capacities` (each in [1, experts], else Error(Range)), in the order given.
std::vector<ReplayCounts> replay_belady(const PassSets& p, const ReplayLayer& layer,
                                        const std::vector<int>& capacities);

}  // namespace moecap
