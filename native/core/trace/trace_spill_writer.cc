#include "trace/trace_spill_writer.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "error.h"
#include "runtime/file_io.h"

namespace moecap {
namespace {

constexpr int kMaxLayers = 4096;
// Bytes buffered per layer before a write: 61 layers hold 4 MiB.
constexpr size_t kFlushBytes = 64 << 10;
// Without the model's expert count, ids are stored as int32.
constexpr double kInt32Ids = 2147483648.0;

// Number.isInteger: finite with no fraction (every double from 2^53 on is whole). Without
// std::floor, a libm call on baseline x86-64, as this runs for every id of the trace.
bool is_integer(double v) {
  if (!std::isfinite(v)) return false;
  return std::fabs(v) >= 9007199254740992.0 || double(int64_t(v)) == v;
}

// An integer-valued double as JavaScript prints it (String(n)): digits below 1e21, else the
// shortest exponent form ("1e+21").
std::string js_integer(double v) {
  char s[64];
  if (std::fabs(v) < 1e21) {
    std::snprintf(s, sizeof s, "%.0f", v == 0 ? 0.0 : v);
    return s;
  }
  const auto r = std::to_chars(s, s + sizeof s, v, std::chars_format::scientific);
  return std::string(s, r.ptr);
}

}  // namespace

TraceSpillWriter::TraceSpillWriter(std::string file, std::string dir, TraceShapeHint shape)
    : file_(std::move(file)), dir_(std::move(dir)), experts_(shape.experts), k_(shape.top_k) {
  id_bytes_ = experts_ > 0 && experts_ <= 256 ? 1 : experts_ > 0 && experts_ <= 65536 ? 2 : 4;
}

TraceSpillWriter::~TraceSpillWriter() { close(); }

void TraceSpillWriter::close() {
  for (Layer& L : layers_)
    if (L.fd >= 0) close_file(L.fd), L.fd = -1;
}

void TraceSpillWriter::fail(int64_t line, const char* field, const std::string& msg) const {
  throw_corrupt("trace '" + file_ + "' line " + std::to_string(line) + " field '" + field + "': " + msg);
}

// Layer and token, checked before the ids (the order of the messages).
void TraceSpillWriter::check_head(const TraceLineValues& v) const {
  auto shown = [&](size_t i, double x) { return v.json ? (*v.json)[i] : js_integer(x); };
  if (!is_integer(v.layer) || v.layer < 0 || v.layer > kMaxLayers - 1)
    fail(v.line, "layer", "must be an integer in [0, " + std::to_string(kMaxLayers) + "), got " + shown(0, v.layer));
  if (!is_integer(v.token) || v.token < 0) fail(v.line, "token", "must be an integer >= 0, got " + shown(1, v.token));
  if (!v.ids) fail(v.line, "experts", "must be an array of expert ids, got " + (v.json ? (*v.json)[2] : "?"));
}

// k, then each id's range, then distinctness (a range error anywhere in the line comes first).
void TraceSpillWriter::check_ids(const TraceLineValues& v) {
  if (k_ == 0 && v.n <= size_t(INT32_MAX)) k_ = int(v.n);
  if (v.n != size_t(k_) || k_ == 0)
    fail(v.line, "experts",
         "has " + std::to_string(v.n) + " ids, expected k = " + (k_ ? std::to_string(k_) : std::string(">= 1")) +
             " (k must be the same on every line)");
  const double bound = experts_ > 0 ? double(experts_) : kInt32Ids;
  for (size_t j = 0; j < v.n; ++j) {
    const double e = v.ids[j];
    if (!is_integer(e) || e < 0 || e >= bound)
      fail(v.line, "experts",
           "expert id " + (v.json ? (*v.json)[3 + j] : js_integer(e)) + " out of range [0, " +
               (experts_ > 0 ? std::to_string(experts_) : std::string(e >= kInt32Ids ? "2147483648" : "∞")) + ")");
  }
  if (has_duplicate(v.ids, v.n)) fail(v.line, "experts", "expert ids of a token must be distinct");
}

// Ids below 256 (every id of such a model): one bit each; a line with a larger id is sorted.
bool TraceSpillWriter::has_duplicate(const double* ids, size_t n) {
  uint64_t seen[4] = {0, 0, 0, 0};
  size_t j = 0;
  for (; j < n && ids[j] < 256; ++j) {
    const unsigned e = unsigned(ids[j]);
    if ((seen[e >> 6] >> (e & 63)) & 1) return true;
    seen[e >> 6] |= uint64_t(1) << (e & 63);
  }
  if (j == n) return false;
  sorted_.assign(ids, ids + n);
  std::sort(sorted_.begin(), sorted_.end());
  return std::adjacent_find(sorted_.begin(), sorted_.end()) != sorted_.end();
}

TraceSpillWriter::Layer& TraceSpillWriter::layer(int l) {
  while (int(layers_.size()) <= l) {
    const std::string path = dir_ + "/layer" + std::to_string(layers_.size()) + ".bin";
    Layer L;
    L.fd = create_scratch(path);
    if (L.fd < 0) throw_io("cannot create the trace spill file '" + path + "': " + std::strerror(errno));
    const size_t row = size_t(id_bytes_ * k_);
    L.buf.resize(std::max(row, kFlushBytes - kFlushBytes % row));
    layers_.push_back(std::move(L));
  }
  return layers_[size_t(l)];
}

void TraceSpillWriter::record(const TraceLineValues& v) {
  check_head(v);
  check_ids(v);
  Layer& L = layer(int(v.layer));
  if (v.token <= L.last_token)
    fail(v.line, "token",
         "token " + (v.json ? (*v.json)[1] : js_integer(v.token)) + " of layer " + js_integer(v.layer) +
             " comes after token " + js_integer(L.last_token) + " (tokens of a layer must be in increasing order)");
  L.last_token = v.token;
  L.tokens++;
  store(L, v.ids);
}

void TraceSpillWriter::store(Layer& L, const double* ids) {
  if (L.fill + size_t(id_bytes_ * k_) > L.buf.size()) flush(L);
  uint8_t* out = L.buf.data() + L.fill;
  for (int j = 0; j < k_; ++j) {
    const int64_t e = int64_t(ids[j]);
    if (e >= max_expert_) max_expert_ = e + 1;
    if (id_bytes_ == 1) {
      out[j] = uint8_t(e);
    } else if (id_bytes_ == 2) {
      const uint16_t x = uint16_t(e);
      std::memcpy(out + 2 * j, &x, 2);
    } else {
      const int32_t x = int32_t(e);
      std::memcpy(out + 4 * j, &x, 4);
    }
  }
  L.fill += size_t(id_bytes_ * k_);
}

void TraceSpillWriter::flush(Layer& L) {
  for (size_t done = 0; done < L.fill;) {
    const int64_t n = write_at(L.fd, L.buf.data() + done, L.fill - done, L.written);
    if (n <= 0) throw_io("cannot write the trace spill of '" + file_ + "' in '" + dir_ + "': " + std::strerror(errno));
    done += size_t(n);
    L.written += uint64_t(n);
  }
  L.fill = 0;
}

TraceSpillSummary TraceSpillWriter::finish() {
  for (Layer& L : layers_) flush(L);
  close();
  if (layers_.empty()) throw_corrupt("trace '" + file_ + "' has no routing lines");
  TraceSpillSummary s;
  for (size_t l = 0; l < layers_.size(); ++l) {
    if (layers_[l].tokens == 0)
      throw_corrupt("trace '" + file_ + "': layer " + std::to_string(l) + " has no tokens (layers must be 0.." +
                    std::to_string(layers_.size() - 1) + ")");
    s.tokens.push_back(layers_[l].tokens);
  }
  s.top_k = k_;
  s.max_expert = max_expert_;
  s.id_bytes = id_bytes_;
  return s;
}

}  // namespace moecap
