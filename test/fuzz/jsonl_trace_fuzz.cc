// libFuzzer target: the core's JSONL routing-trace reader (native/core/trace) on hostile bytes.
// The input is written to a file and read in one pass into spill files, lines the canonical
// parser does not read skipped (JS parses those); any input must end in a moecap::Error or a
// finished spill, and every canonical line must hold what its bytes say (checked against a
// straightforward re-parse). A crash, a sanitizer report or any other exception is a finding.
//
// Input: one mode byte, then the file. Mode bit 0: the model's experts are given (16), else
// unknown; bit 1: k = 2 is given, else taken from the first line; bits 2-7: the line cap is
// (that + 1) × 8 bytes, so lines longer than the cap are reached too.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "error.h"
#include "trace/canonical_trace_line.h"
#include "trace/jsonl_trace_reader.h"

namespace {

// The digits of a canonical line re-read the slow way: every number in order.
std::vector<double> numbers_in(const char* b, const char* e) {
  std::vector<double> v;
  for (const char* p = b; p < e;) {
    if (*p >= '0' && *p <= '9') {
      double x = 0;
      while (p < e && *p >= '0' && *p <= '9') x = x * 10 + (*p++ - '0');
      v.push_back(x);
    } else {
      ++p;
    }
  }
  return v;
}

void check_canonical_lines(const uint8_t* data, size_t size) {
  const char* b = reinterpret_cast<const char*>(data);
  const char* end = b + size;
  moecap::CanonicalTraceLine line;
  while (b < end) {
    const char* nl = b;
    while (nl < end && *nl != '\n') ++nl;
    if (moecap::parse_canonical_trace_line(b, nl, line) == moecap::TraceLineShape::Canonical) {
      std::vector<double> want = numbers_in(b, nl);
      std::vector<double> got{line.layer, line.token};
      got.insert(got.end(), line.ids.begin(), line.ids.end());
      if (want != got) std::abort();
    }
    b = nl + 1;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  check_canonical_lines(data + 1, size - 1);
  char dir[] = "/tmp/moecap-trace-fuzz-XXXXXX";
  if (!mkdtemp(dir)) return 0;
  const std::string file = std::string(dir) + "/trace.jsonl";
  if (FILE* f = std::fopen(file.c_str(), "wb")) {
    std::fwrite(data + 1, 1, size - 1, f);
    std::fclose(f);
  }
  moecap::TraceShapeHint shape;
  shape.experts = (mode & 1) ? 16 : 0;
  shape.top_k = (mode & 2) ? 2 : 0;
  int layers = 0;
  try {
    moecap::JsonlTraceReader r(file, dir, shape, int64_t((mode >> 2) + 1) * 8);
    while (r.run()) {
    }
    layers = int(r.finish().tokens.size());
  } catch (const moecap::Error&) {
  }
  // The reader made layer0.bin .. layerN.bin at most 4096 of them; remove what is there.
  for (int l = 0; l < 4096; ++l)
    if (unlink((std::string(dir) + "/layer" + std::to_string(l) + ".bin").c_str()) != 0 && l >= layers) break;
  unlink(file.c_str());
  rmdir(dir);
  return 0;
}
