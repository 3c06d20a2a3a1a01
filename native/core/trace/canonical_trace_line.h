// The routing-trace line as our writers print it (lib/cap/routing.ts):
// {"layer":L,"token":T,"experts":[e0,...]} with the keys in that order, ASCII blanks (space, tab,
// CR) where JSON allows them, and plain non-negative integers of at most 15 digits. Read straight
// from the bytes: this runs once per byte of a multi-GB trace. Anything else is "not canonical"
// and goes to the caller's general JSON path, so an odd but valid line is never misread.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace moecap {

enum class TraceLineShape { Blank, Canonical, NotCanonical };

struct CanonicalTraceLine {
  // Integers of at most 15 digits, exact as doubles (the values the checks take).
  double layer = 0;
  double token = 0;
  std::vector<double> ids;  // reused from line to line
};

// The line [b, end) (without its newline). Canonical: `out` holds its values.
TraceLineShape parse_canonical_trace_line(const char* b, const char* end, CanonicalTraceLine& out);

}  // namespace moecap
