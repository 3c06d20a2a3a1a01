#include "offload/expert_file.h"

#include <cerrno>
#include <cstring>
#include <random>
#include <vector>

#include "error.h"
#include "offload/xxhash64.h"
#include "runtime/checked_size.h"
#include "runtime/file_io.h"

namespace moecap {
namespace {

constexpr char kMagic[8] = {'M', 'O', 'E', 'C', 'A', 'P', 'E', 'X'};
constexpr uint32_t kVersion = 2;  // 2: int8/int4 scales follow each block
constexpr uint64_t kAlign = 4096;

#pragma pack(push, 1)
struct FileHeader {
  char magic[8];
  uint32_t version;
  uint32_t dtype;
  int32_t hidden, intermediate, experts;
  int32_t w13_panels, w13_k, w2_panels, w2_k;
  uint32_t reserved;
  uint64_t w13_panel_bytes, w2_panel_bytes, expert_bytes;
  uint64_t fingerprint;
  uint64_t table_bytes;  // ExpertEntry[experts] + checksum
};
struct ExpertEntry {
  uint64_t offset, size, checksum;
};
#pragma pack(pop)

uint64_t align_up(uint64_t v) { return (v + kAlign - 1) / kAlign * kAlign; }
std::string errno_text(int e) { return std::string(std::strerror(e)); }

void write_all(int fd, const void* data, size_t n, uint64_t offset, const std::string& what) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    const int64_t w = write_at(fd, p, n, offset);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) throw_io(what + ": " + (w < 0 ? errno_text(errno) : std::string("short write")));
    p += w;
    n -= size_t(w);
    offset += uint64_t(w);
  }
}

// Reads exactly n bytes or reports how many it got.
size_t read_all(int fd, void* data, size_t n, uint64_t offset, int* err) {
  uint8_t* p = static_cast<uint8_t*>(data);
  size_t got = 0;
  *err = 0;
  while (got < n) {
    const int64_t r = read_at(fd, p + got, n - got, offset + got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      *err = errno;
      break;
    }
    if (r == 0) break;
    got += size_t(r);
  }
  return got;
}

// The path as errors print it: an embedded NUL shown as \0 (it is refused, and would cut the
// message short in C strings).
std::string printable_path(const std::string& path) {
  std::string out;
  for (char c : path) out += c == '\0' ? std::string("\\0") : std::string(1, c);
  return out;
}

// Opens an existing path read-only, kept only if it is a regular file (file_io.h).
int open_regular_file(const std::string& path, const std::string& who, uint64_t* size) {
  const char* kind = nullptr;
  const int fd = open_regular_read(path, &kind, size);
  if (fd == -2)
    throw_option(who + " is " + kind + "; offload.path must name a regular file (or a missing one to create)");
  if (fd < 0) throw_io(who + ": cannot open: " + errno_text(errno));
  return fd;
}

std::string folder_of(const std::string& path) {
#if defined(_WIN32)
  size_t s = path.find_last_of("/\\");
#else
  size_t s = path.find_last_of('/');
#endif
  if (s == std::string::npos) return ".";
  return s == 0 ? "/" : path.substr(0, s);
}

}  // namespace

void check_offload_path(const std::string& path) {
  const size_t nul = path.find('\0');
  if (nul != std::string::npos)
    throw_option("offload.path contains a NUL character at index " + std::to_string(nul) + " ('" +
                 printable_path(path) + "'); a file name cannot hold one");
}

void write_expert_file(const std::string& path, const ExpertFileShape& shape, const ExpertPacker& pack,
                       const ExpertFileProgress& progress) {
  const std::string who = "offload file '" + printable_path(path) + "'";
  check_offload_path(path);
  std::random_device rd;
  const std::string tmp = path + ".tmp-" + std::to_string(process_id()) + "-" + std::to_string(rd());
  int fd = create_exclusive(tmp);
  if (fd < 0) throw_io(who + ": cannot create '" + tmp + "': " + errno_text(errno));
  try {
    const int E = shape.experts;
    ExpertWeights w;
    std::vector<ExpertEntry> table(static_cast<size_t>(E));
    FileHeader h;
    std::memset(&h, 0, sizeof h);
    std::memcpy(h.magic, kMagic, 8);
    h.version = kVersion;
    h.dtype = uint32_t(shape.dtype);
    h.hidden = shape.hidden;
    h.intermediate = shape.intermediate;
    h.experts = E;
    h.fingerprint = shape.fingerprint;
    h.table_bytes = sizeof(ExpertEntry) * uint64_t(E) + 8;
    uint64_t offset = align_up(sizeof(FileHeader) + h.table_bytes);
    for (int e = 0; e < E; ++e) {
      pack(e, w);
      if (e == 0) {
        h.w13_panels = w.w13.panels;
        h.w13_k = w.w13.K;
        h.w13_panel_bytes = w.w13.panel_bytes;
        h.w2_panels = w.w2.panels;
        h.w2_k = w.w2.K;
        h.w2_panel_bytes = w.w2.panel_bytes;
        h.expert_bytes = w.bytes();
      }
      XxHash64 sum;
      sum.update(w.w13.data.data(), w.w13.bytes());
      sum.update(w.w2.data.data(), w.w2.bytes());
      table[e] = {offset, w.bytes(), sum.digest()};
      write_all(fd, w.w13.data.data(), w.w13.bytes(), offset, who + ": writing expert " + std::to_string(e));
      write_all(fd, w.w2.data.data(), w.w2.bytes(), offset + w.w13.bytes(),
                who + ": writing expert " + std::to_string(e));
      // The disk writes this expert while the next one packs: otherwise the whole file (up to
      // the page cache's dirty limit) waits for the final sync, a serial step as long as the write.
      start_writeback(fd, offset, w.bytes());
      offset = align_up(offset + w.bytes());
      if (progress) progress(e + 1, E, uint64_t(e + 1) * w.bytes());
    }
    // Header last: until it is complete the file cannot validate.
    std::vector<uint8_t> head(sizeof(FileHeader) + size_t(h.table_bytes));
    std::memcpy(head.data(), &h, sizeof h);
    std::memcpy(head.data() + sizeof h, table.data(), sizeof(ExpertEntry) * size_t(E));
    const uint64_t hsum = xxhash64(head.data(), head.size() - 8);
    std::memcpy(head.data() + head.size() - 8, &hsum, 8);
    write_all(fd, head.data(), head.size(), 0, who + ": writing header");
    if (truncate_file(fd, offset) != 0) throw_io(who + ": ftruncate: " + errno_text(errno));
    if (sync_file(fd) != 0) throw_io(who + ": fsync: " + errno_text(errno));
    if (close_file(fd) != 0) {
      fd = -1;
      throw_io(who + ": close: " + errno_text(errno));
    }
    fd = -1;
    if (replace_file(tmp, path) != 0) throw_io(who + ": rename: " + errno_text(errno));
  } catch (...) {
    if (fd >= 0) close_file(fd);
    remove_file(tmp);
    throw;
  }
  sync_folder(folder_of(path));  // makes the rename itself durable
}

size_t expert_file_head_bytes(const uint8_t* data, size_t n, const ExpertFileShape& shape, uint64_t file_bytes,
                              const std::string& who) {
  FileHeader h;
  if (n < sizeof h) throw_corrupt(who + ": truncated header (" + std::to_string(file_bytes) + " bytes)");
  std::memcpy(&h, data, sizeof h);
  if (std::memcmp(h.magic, kMagic, 8) != 0) throw_corrupt(who + ": not a moecap expert file (bad magic)");
  if (h.version != kVersion)
    throw_corrupt(who + ": version " + std::to_string(h.version) + ", this build reads version " +
                  std::to_string(kVersion));
  // Both checked before the checksum: they size the table read, so a corrupt value must not
  // allocate or read past what the layer's expert count gives.
  const int E = shape.experts;
  if (h.experts != E)
    throw_corrupt(who + ": holds " + std::to_string(h.experts) + " experts, the layer has " + std::to_string(E));
  const uint64_t table = sizeof(ExpertEntry) * uint64_t(E) + 8;
  if (h.table_bytes != table)
    throw_corrupt(who + ": header field table_bytes is " + std::to_string(h.table_bytes) + ", expected " +
                  std::to_string(table) + " for " + std::to_string(E) + " experts (the header is corrupt)");
  return sizeof(FileHeader) + size_t(table);
}

namespace {

// One packing field of the header against what this build packs for the layer's shape.
void check_packing(const std::string& who, const char* field, uint64_t in_file, uint64_t want) {
  if (in_file != want)
    throw_corrupt(who + ": header field " + field + " is " + std::to_string(in_file) + ", this build packs " +
                  std::to_string(want) + " for the layer's shape (file written by another layout?)");
}

}  // namespace

ExpertFileLayout validate_expert_file_head(const uint8_t* data, size_t n, const ExpertFileShape& shape,
                                           uint64_t file_bytes, const std::string& who) {
  const size_t head = expert_file_head_bytes(data, n, shape, file_bytes, who);
  if (n < head)
    throw_corrupt(who + ": truncated expert table (" + std::to_string(file_bytes) +
                  " bytes, the header and table need " + std::to_string(head) + ")");
  FileHeader h;
  std::memcpy(&h, data, sizeof h);
  uint64_t stored;
  std::memcpy(&stored, data + head - 8, 8);
  if (xxhash64(data, head - 8) != stored) throw_corrupt(who + ": header checksum mismatch");
  if (h.dtype != uint32_t(shape.dtype) || h.hidden != shape.hidden || h.intermediate != shape.intermediate)
    throw_corrupt(who + ": written for another shape (dtype " +
                  std::string(h.dtype < uint32_t(kDTypeCount) ? dtype_name(DType(h.dtype)) : "?") + ", hidden " +
                  std::to_string(h.hidden) + ", intermediate " + std::to_string(h.intermediate) +
                  "), the layer is dtype " + dtype_name(shape.dtype) + ", hidden " + std::to_string(shape.hidden) +
                  ", intermediate " + std::to_string(shape.intermediate));
  if (h.fingerprint != shape.fingerprint) throw_corrupt(who + ": written from other weights (fingerprint differs)");
  const int F = shape.intermediate, H = shape.hidden;
  ExpertFileLayout L;
  L.w13_panels = int(ceil_div_size(F, 16));
  L.w13_k = H;
  L.w2_panels = int(ceil_div_size(H, 32));
  L.w2_k = int(round_up_size(F, 16));
  L.w13_panel_bytes = panel_bytes_for(shape.dtype, L.w13_k);
  L.w2_panel_bytes = panel_bytes_for(shape.dtype, L.w2_k);
  L.expert_bytes = expert_packed_bytes(shape.dtype, H, F);
  // Fields as signed ints in the file: compared as their 64-bit values so a negative one differs.
  check_packing(who, "w13_panels", uint64_t(int64_t(h.w13_panels)), uint64_t(L.w13_panels));
  check_packing(who, "w13_k", uint64_t(int64_t(h.w13_k)), uint64_t(L.w13_k));
  check_packing(who, "w2_panels", uint64_t(int64_t(h.w2_panels)), uint64_t(L.w2_panels));
  check_packing(who, "w2_k", uint64_t(int64_t(h.w2_k)), uint64_t(L.w2_k));
  check_packing(who, "w13_panel_bytes", h.w13_panel_bytes, L.w13_panel_bytes);
  check_packing(who, "w2_panel_bytes", h.w2_panel_bytes, L.w2_panel_bytes);
  check_packing(who, "expert_bytes", h.expert_bytes, L.expert_bytes);
  const uint64_t data_start = align_up(head);
  L.entries.resize(size_t(shape.experts));
  for (int e = 0; e < shape.experts; ++e) {
    ExpertEntry x;
    std::memcpy(&x, data + sizeof(FileHeader) + sizeof(ExpertEntry) * size_t(e), sizeof x);
    if (x.size != L.expert_bytes)
      throw_corrupt(who + ": expert " + std::to_string(e) + ": size " + std::to_string(x.size) +
                    " in the header, expected " + std::to_string(L.expert_bytes));
    if (x.offset < data_start || x.offset > file_bytes || x.size > file_bytes - x.offset)
      throw_corrupt(who + ": expert " + std::to_string(e) + ": bytes [" + std::to_string(x.offset) + ", " +
                    std::to_string(x.offset + x.size) + ") lie " +
                    (x.offset < data_start
                         ? "inside the header (data starts at " + std::to_string(data_start) + ")"
                         : "past the end of the file (" + std::to_string(file_bytes) + " bytes; truncated?)"));
    L.entries[size_t(e)] = {x.offset, x.size, x.checksum};
  }
  return L;
}

ExpertFile::ExpertFile(const std::string& path, const ExpertFileShape& shape, bool cold)
    : path_(path), cold_(cold), shape_(shape) {
  const std::string who = "offload file '" + printable_path(path) + "'";
  check_offload_path(path);
  fd_ = open_regular_file(path, who, &file_bytes_);
  try {
    FileHeader h;
    int err = 0;
    const size_t got = read_all(fd_, &h, sizeof h, 0, &err);
    if (err) throw_io(who + ": reading the header: " + errno_text(err));
    const size_t head_bytes =
        expert_file_head_bytes(reinterpret_cast<const uint8_t*>(&h), got, shape, file_bytes_, who);
    std::vector<uint8_t> head(head_bytes);
    const size_t n = read_all(fd_, head.data(), head.size(), 0, &err);
    if (err) throw_io(who + ": reading the expert table: " + errno_text(err));
    ExpertFileLayout L = validate_expert_file_head(head.data(), n, shape, file_bytes_, who);
    w13_panels_ = L.w13_panels;
    w13_k_ = L.w13_k;
    w13_panel_bytes_ = L.w13_panel_bytes;
    w2_panels_ = L.w2_panels;
    w2_k_ = L.w2_k;
    w2_panel_bytes_ = L.w2_panel_bytes;
    expert_bytes_ = L.expert_bytes;
    entries_.reset(new Entry[size_t(shape.experts)]);
    for (int e = 0; e < shape.experts; ++e) {
      const ExpertFileLayout::Entry& x = L.entries[size_t(e)];
      entries_[size_t(e)] = {x.offset, x.size, x.checksum};
    }
    if (cold_) {
      drop_cache();
      direct_fd_ = open_direct_same_file(path, fd_);  // -1: buffered + DONTNEED
    }
  } catch (...) {
    close_file(fd_);
    fd_ = -1;
    throw;
  }
}

ExpertFile::~ExpertFile() {
  if (fd_ >= 0) close_file(fd_);
  if (direct_fd_ >= 0) close_file(direct_fd_);
}

void ExpertFile::unlink_now() {
  remove_file(path_);
  unlinked_ = true;
}

void ExpertFile::init_slot(ExpertWeights& w) const {
  w.hidden = shape_.hidden;
  w.intermediate = shape_.intermediate;
  w.w13.dtype = w.w2.dtype = shape_.dtype;
  w.w13.K = w13_k_;
  w.w13.panels = w13_panels_;
  w.w13.panel_bytes = w13_panel_bytes_;
  w.w2.K = w2_k_;
  w.w2.panels = w2_panels_;
  w.w2.panel_bytes = w2_panel_bytes_;
  if (w.w13.data.size() != w.w13.bytes()) w.w13.data.resize(w.w13.bytes());
  if (w.w2.data.size() != w.w2.bytes()) w.w2.data.resize(w.w2.bytes());
}

size_t ExpertFile::read_expert(int e, ExpertWeights& w, bool verify) const {
  const Entry& x = entries_[size_t(e)];
  const std::string who = "offload file '" + path_ + "': expert " + std::to_string(e);
  int err = 0;
  const size_t a = w.w13.bytes(), b = w.w2.bytes();
  size_t got = 0;
  // O_DIRECT: one read of whole pages (offsets are 4 KiB aligned; the last expert may end before
  // the rounded length, which the read then stops at) into one page-aligned extent.
  const size_t rounded = (a + b + 4095) / 4096 * 4096;
  const bool extent = w.w2.data.data() == w.w13.data.data() + a && w.w2.data.capacity() >= rounded - a &&
                      (reinterpret_cast<uintptr_t>(w.w13.data.data()) & 4095) == 0;
  bool done = false;
  if (direct_fd_ >= 0 && !direct_failed_.load() && extent) {
    got = read_all(direct_fd_, w.w13.data.data(), rounded, x.offset, &err);
    if (got >= a + b) {
      got = a + b;
      done = true;
    } else if (err == EINVAL) {
      direct_failed_ = true;  // the file system takes no O_DIRECT after all: buffered from now on
    }
  }
  if (!done) {
    err = 0;
    got = read_all(fd_, w.w13.data.data(), a, x.offset, &err);
    if (got == a) got += read_all(fd_, w.w2.data.data(), b, x.offset + a, &err);
    if (cold_) advise_file(fd_, int64_t(x.offset), int64_t(x.size), FileAdvice::DontNeed);
  }
  if (got != a + b)
    throw_io(who + ": read " + std::to_string(got) + " of " + std::to_string(a + b) + " bytes at offset " +
             std::to_string(x.offset) + (err ? " (" + errno_text(err) + ")" : std::string(" (file truncated)")));
  if (verify) verify_expert(e, w);
  return a + b;
}

void ExpertFile::verify_expert(int e, const ExpertWeights& w) const {
  XxHash64 sum;
  sum.update(w.w13.data.data(), w.w13.bytes());
  sum.update(w.w2.data.data(), w.w2.bytes());
  if (sum.digest() != entries_[size_t(e)].checksum)
    throw_corrupt("offload file '" + path_ + "': expert " + std::to_string(e) +
                  ": checksum mismatch (the file is corrupt)");
}

void ExpertFile::advise_willneed(int e) const {
  if (direct()) return;  // readahead would fill a page cache the direct reads never use
  const Entry& x = entries_[size_t(e)];
  advise_file(fd_, int64_t(x.offset), int64_t(x.size), FileAdvice::WillNeed);
}

void ExpertFile::drop_cache() const {
  sync_file_data(fd_);
  advise_file(fd_, 0, 0, FileAdvice::DontNeed);
}

}  // namespace moecap
