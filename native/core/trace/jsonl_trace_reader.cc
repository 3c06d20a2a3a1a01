#include "trace/jsonl_trace_reader.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "error.h"
#include "runtime/file_io.h"

namespace moecap {
namespace {

// Bytes per read: large enough that the syscalls cost nothing, small enough to stay in L2/L3.
constexpr size_t kBlock = 1 << 20;

}  // namespace

JsonlTraceReader::JsonlTraceReader(const std::string& file, const std::string& dir, TraceShapeHint shape,
                                   int64_t max_line_bytes)
    : writer_(file, dir, shape), file_(file), max_line_(max_line_bytes) {
  if (max_line_bytes < 1) throw_range("max_line_bytes must be >= 1");
  fd_ = open_read(file);
  if (fd_ < 0) throw_io("cannot read trace '" + file + "': " + std::strerror(errno));
  buf_.resize(kBlock + size_t(max_line_bytes) + 1);
}

JsonlTraceReader::~JsonlTraceReader() { close(); }

void JsonlTraceReader::close() {
  if (fd_ >= 0) close_file(fd_), fd_ = -1;
  writer_.close();
}

void JsonlTraceReader::too_long(int64_t line) const {
  throw_corrupt("trace '" + file_ + "' line " + std::to_string(line) + ": longer than " + std::to_string(max_line_) +
                " bytes (a truncated or binary file?)");
}

bool JsonlTraceReader::refill() {
  if (eof_) return false;
  if (start_ > 0) {
    std::memmove(buf_.data(), buf_.data() + start_, have_ - start_);
    have_ -= start_;
    start_ = 0;
  }
  const int64_t n = read_at(fd_, buf_.data() + have_, buf_.size() - have_, offset_);
  if (n < 0) throw_io("cannot read trace '" + file_ + "': " + std::strerror(errno));
  if (n == 0) eof_ = true;
  have_ += size_t(n);
  offset_ += uint64_t(n);
  return n > 0;
}

bool JsonlTraceReader::run() {
  for (;;) {
    const char* b = buf_.data() + start_;
    const char* nl = static_cast<const char*>(std::memchr(b, '\n', have_ - start_));
    if (!nl) {
      if (int64_t(have_ - start_) > max_line_) too_long(line_);
      if (refill()) continue;
      if (start_ == have_) return false;
      b = buf_.data() + start_;  // moved to the front by refill()
      nl = buf_.data() + have_;  // the last line, without a newline
    }
    if (nl - b > max_line_) too_long(line_);
    const int64_t line = line_++;
    const size_t at = size_t(nl - buf_.data());
    start_ = at < have_ ? at + 1 : at;  // past the newline, if there is one
    switch (parse_canonical_trace_line(b, nl, parsed_)) {
      case TraceLineShape::Blank: break;
      case TraceLineShape::Canonical: {
        TraceLineValues v;
        v.line = line;
        v.layer = parsed_.layer;
        v.token = parsed_.token;
        v.ids = parsed_.ids.data();
        v.n = parsed_.ids.size();
        if (!v.ids) v.ids = &v.layer;  // "experts": [] is an array (of none)
        writer_.record(v);
        break;
      }
      case TraceLineShape::NotCanonical:
        odd_line_ = line;
        odd_text_.assign(b, nl);
        return true;
    }
  }
}

}  // namespace moecap
