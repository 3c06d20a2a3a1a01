#include "trace/canonical_trace_line.h"

#include <cstring>

namespace moecap {
namespace {

// Digits accepted per number: 15 keep every value exact in a double (the checks compare doubles,
// as JSON.parse's values would be).
constexpr int kMaxDigits = 15;

inline const char* skip_blanks(const char* p, const char* end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\r')) ++p;
  return p;
}

// `"key"`, blanks, colon, blanks → past them, or nullptr.
template <size_t N>
inline const char* key_colon(const char* p, const char* end, const char (&key)[N]) {
  constexpr size_t n = N - 1;
  if (size_t(end - p) < n || std::memcmp(p, key, n) != 0) return nullptr;
  p = skip_blanks(p + n, end);
  if (p == end || *p != ':') return nullptr;
  return skip_blanks(p + 1, end);
}

// A JSON integer >= 0 (no sign, fraction or exponent, no leading zero) → past it and its blanks,
// or nullptr.
inline const char* read_int(const char* p, const char* end, double& v) {
  const char* s = p;
  int64_t x = 0;
  for (; p < end && unsigned(*p - '0') < 10; ++p) {
    if (p - s == kMaxDigits) return nullptr;  // before x can overflow
    x = x * 10 + (*p - '0');
  }
  const ptrdiff_t digits = p - s;
  if (digits == 0 || (digits > 1 && *s == '0')) return nullptr;
  if (p < end && (*p == '.' || *p == 'e' || *p == 'E')) return nullptr;
  v = double(x);
  return skip_blanks(p, end);
}

}  // namespace

TraceLineShape parse_canonical_trace_line(const char* b, const char* end, CanonicalTraceLine& out) {
  constexpr TraceLineShape odd = TraceLineShape::NotCanonical;
  const char* p = skip_blanks(b, end);
  if (p == end) return TraceLineShape::Blank;
  if (*p != '{') return odd;
  if (!(p = key_colon(skip_blanks(p + 1, end), end, "\"layer\""))) return odd;
  if (!(p = read_int(p, end, out.layer)) || p == end || *p != ',') return odd;
  if (!(p = key_colon(skip_blanks(p + 1, end), end, "\"token\""))) return odd;
  if (!(p = read_int(p, end, out.token)) || p == end || *p != ',') return odd;
  if (!(p = key_colon(skip_blanks(p + 1, end), end, "\"experts\"")) || p == end || *p != '[') return odd;
  p = skip_blanks(p + 1, end);
  out.ids.clear();
  if (p < end && *p == ']') {
    ++p;
  } else {
    for (;;) {
      double e;
      if (!(p = read_int(p, end, e)) || p == end) return odd;
      out.ids.push_back(e);
      const char c = *p++;
      if (c == ']') break;
      if (c != ',') return odd;
      p = skip_blanks(p, end);
    }
  }
  p = skip_blanks(p, end);
  if (p == end || *p != '}') return odd;
  return skip_blanks(p + 1, end) == end ? TraceLineShape::Canonical : odd;
}

}  // namespace moecap
