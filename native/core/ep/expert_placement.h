// Which ranks hold which routed experts. contiguous: expert e on rank floor(e·P/E) (blocks in order).
// balanced: longest-processing-time greedy over per-expert loads (from a routing trace), at most
// ceil(E/P) experts a rank. Redundant R: the R hottest experts get one more copy each, on the
// least loaded rank not holding them yet. A row goes to the token's own rank when it holds the
// expert, else to holder (token mod holders) — deterministic, so every rank agrees.
#pragma once
#include <string>
#include <vector>

namespace moecap {

struct ExpertPlacement {
  int ranks = 0, experts = 0;
  std::string kind;  // "contiguous" | "balanced"
  int redundant = 0;
  std::vector<std::vector<int>> holders;  // [E] ranks holding expert e, ascending

  std::vector<bool> held_by(int rank) const;  // [E]
  int rank_for(int expert, int origin, int token) const;
};

// Throws (RangeError, ERR_INVALID_OPTION) naming the option: ranks < 1, a bad kind, loads of the
// wrong length or negative, redundant outside [0, E], balanced or redundant without loads.
ExpertPlacement place_experts(int experts, int ranks, const std::string& kind, int redundant,
                              const std::vector<double>& loads);

}  // namespace moecap
