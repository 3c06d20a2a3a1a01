#include "trace/trace_ids.h"

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "error.h"
#include "offload/xxhash64.h"
#include "runtime/file_io.h"

namespace moecap {
namespace {

// The block's bytes, read whole (a short file is corrupt: its table promised them).
std::vector<uint8_t> read_block(const TraceIdBlock& b, size_t bytes) {
  std::vector<uint8_t> out(bytes);  // before the open: a failed allocation leaves no descriptor open
  const int fd = open_read(b.file);
  if (fd < 0) throw_io("cannot open trace '" + b.file + "': " + std::strerror(errno));
  size_t got = 0;
  while (got < bytes) {
    const size_t want = std::min<size_t>(bytes - got, size_t(1) << 30);
    const int64_t r = read_at(fd, out.data() + got, want, b.offset + got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      const int err = errno;
      close_file(fd);
      if (r < 0) throw_io("cannot read trace '" + b.file + "': " + std::strerror(err));
      throw_corrupt(std::string(b.experts > 0 ? "binary trace '" : "trace spill '") + b.file + "' layer " +
                    std::to_string(b.layer) + ": file ended early");
    }
    got += size_t(r);
  }
  close_file(fd);
  return out;
}

template <class Id>
void widen(const uint8_t* in, int32_t* out, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    Id v;
    std::memcpy(&v, in + i * sizeof(Id), sizeof(Id));
    out[i] = int32_t(v);
  }
}

// Each id in [0, experts), each token's k ids distinct (the last token that used each expert).
void check_ids(const TraceIdBlock& b, const int32_t* ids) {
  const auto bad = [&b](int32_t e, int64_t t, const std::string& what) {
    throw_corrupt("binary trace '" + b.file + "' field 'layer " + std::to_string(b.layer) + " experts': id " +
                  std::to_string(e) + " at token " + std::to_string(t) + " " + what);
  };
  std::vector<int64_t> seen_at(size_t(b.experts), -1);
  const int k = b.top_k;
  for (int64_t t = 0; t < b.tokens; ++t) {
    for (int j = 0; j < k; ++j) {
      const int32_t e = ids[size_t(t * k + j)];
      if (e < 0 || e >= b.experts) bad(e, t, "out of range [0, " + std::to_string(b.experts) + ")");
      if (seen_at[size_t(e)] == t) bad(e, t, "repeated (a token's " + std::to_string(k) + " ids must be distinct)");
      seen_at[size_t(e)] = t;
    }
  }
}

}  // namespace

uint64_t trace_id_count(const TraceIdBlock& b) {
  if (b.id_bytes != 1 && b.id_bytes != 2 && b.id_bytes != 4) throw_range("idBytes must be 1, 2 or 4");
  if (b.top_k < 1 || b.tokens < 0 || b.experts < 0) throw_range("tokens, topK and experts must be >= 0 (topK >= 1)");
  const uint64_t n = uint64_t(b.tokens) * uint64_t(b.top_k);
  if (uint64_t(b.tokens) > (uint64_t(1) << 40) || n > (uint64_t(1) << 40) / uint64_t(b.id_bytes))
    throw_range("a trace layer of " + std::to_string(b.tokens) + " tokens × " + std::to_string(b.top_k) +
                " ids is too large");
  return n;
}

void read_trace_ids(const TraceIdBlock& b, int32_t* out) {
  const size_t n = size_t(trace_id_count(b));
  const std::vector<uint8_t> raw = read_block(b, n * size_t(b.id_bytes));
  if (b.experts > 0) {
    const uint64_t sum = xxhash64(raw.data(), raw.size());
    if (sum != b.checksum)
      throw_corrupt("binary trace '" + b.file + "' field 'layer " + std::to_string(b.layer) +
                    " checksum': xxhash64 of its ids is " + hex16(sum) + ", the table says " + hex16(b.checksum));
  }
  if (b.id_bytes == 1) widen<uint8_t>(raw.data(), out, n);
  else if (b.id_bytes == 2) widen<uint16_t>(raw.data(), out, n);
  else widen<int32_t>(raw.data(), out, n);
  if (b.experts > 0) check_ids(b, out);
}

}  // namespace moecap
