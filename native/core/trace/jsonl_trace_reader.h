// A moecap routing trace (JSONL, one {"layer","token","experts"} line per token and layer) read in
// one pass into per-layer spill files (trace_spill_writer.h). The file is read with pread in large
// blocks, never whole: a line longer than the cap is refused naming it, not buffered. Lines in the
// shape our writers print are parsed here (canonical_trace_line.h); any other line is handed back
// to the caller, which parses it as general JSON and passes its values to record() (the same
// checks and messages either way).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "trace/canonical_trace_line.h"
#include "trace/trace_spill_writer.h"

namespace moecap {

class JsonlTraceReader {
 public:
  // Opens `file` (ERR_IO naming it when it cannot be read); spills into the existing folder `dir`.
  JsonlTraceReader(const std::string& file, const std::string& dir, TraceShapeHint shape, int64_t max_line_bytes);
  ~JsonlTraceReader();
  JsonlTraceReader(const JsonlTraceReader&) = delete;
  JsonlTraceReader& operator=(const JsonlTraceReader&) = delete;

  // Reads on until the end of the file (false) or a line the canonical parser does not read (true:
  // odd_line() and odd_text() hold it, to be parsed by the caller and given to record()).
  bool run();
  int64_t odd_line() const { return odd_line_; }
  const std::string& odd_text() const { return odd_text_; }

  // The values of the odd line the caller parsed (checked and spilled like any other).
  void record(const TraceLineValues& v) { writer_.record(v); }
  // At the end of the file: flushes and closes the spill files, checks the layers.
  TraceSpillSummary finish() { return writer_.finish(); }
  // Closes the trace and the spill files (also done by the destructor).
  void close();

 private:
  // Moves the unfinished line to the front and reads more behind it; false at the end of the file.
  bool refill();
  [[noreturn]] void too_long(int64_t line) const;

  TraceSpillWriter writer_;
  std::string file_;
  int fd_ = -1;
  int64_t max_line_;
  std::vector<char> buf_;
  size_t start_ = 0, have_ = 0;  // buf_[start_, have_): bytes not yet parsed
  uint64_t offset_ = 0;          // of the file, read so far
  bool eof_ = false;
  int64_t line_ = 1;  // number of the line at start_
  CanonicalTraceLine parsed_;
  int64_t odd_line_ = 0;
  std::string odd_text_;
};

}  // namespace moecap
