#include "offload/expert_file.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <vector>

#include "error.h"
#include "offload/xxhash64.h"
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
    ssize_t w = ::pwrite(fd, p, n, off_t(offset));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) throw_runtime(what + ": " + (w < 0 ? errno_text(errno) : std::string("short write")));
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
    ssize_t r = ::pread(fd, p + got, n - got, off_t(offset + got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) { *err = errno; break; }
    if (r == 0) break;
    got += size_t(r);
  }
  return got;
}

std::string folder_of(const std::string& path) {
  size_t s = path.find_last_of('/');
  if (s == std::string::npos) return ".";
  return s == 0 ? "/" : path.substr(0, s);
}

}  // namespace

void write_expert_file(const std::string& path, const ExpertFileShape& shape, const ExpertPacker& pack) {
  const std::string who = "offload file '" + path + "'";
  std::random_device rd;
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(rd());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw_runtime(who + ": cannot create '" + tmp + "': " + errno_text(errno));
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
        h.w13_panels = w.w13.panels; h.w13_k = w.w13.K; h.w13_panel_bytes = w.w13.panel_bytes;
        h.w2_panels = w.w2.panels; h.w2_k = w.w2.K; h.w2_panel_bytes = w.w2.panel_bytes;
        h.expert_bytes = w.bytes();
      }
      XxHash64 sum;
      sum.update(w.w13.data.data(), w.w13.bytes());
      sum.update(w.w2.data.data(), w.w2.bytes());
      table[e] = {offset, w.bytes(), sum.digest()};
      write_all(fd, w.w13.data.data(), w.w13.bytes(), offset, who + ": writing expert " + std::to_string(e));
      write_all(fd, w.w2.data.data(), w.w2.bytes(), offset + w.w13.bytes(), who + ": writing expert " + std::to_string(e));
      offset = align_up(offset + w.bytes());
    }
    // Header last: until it is complete the file cannot validate.
    std::vector<uint8_t> head(sizeof(FileHeader) + size_t(h.table_bytes));
    std::memcpy(head.data(), &h, sizeof h);
    std::memcpy(head.data() + sizeof h, table.data(), sizeof(ExpertEntry) * size_t(E));
    const uint64_t hsum = xxhash64(head.data(), head.size() - 8);
    std::memcpy(head.data() + head.size() - 8, &hsum, 8);
    write_all(fd, head.data(), head.size(), 0, who + ": writing header");
    if (::ftruncate(fd, off_t(offset)) != 0) throw_runtime(who + ": ftruncate: " + errno_text(errno));
    if (::fsync(fd) != 0) throw_runtime(who + ": fsync: " + errno_text(errno));
    if (::close(fd) != 0) { fd = -1; throw_runtime(who + ": close: " + errno_text(errno)); }
    fd = -1;
    if (::rename(tmp.c_str(), path.c_str()) != 0) throw_runtime(who + ": rename: " + errno_text(errno));
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  // Make the rename itself durable.
  int dfd = ::open(folder_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

ExpertFile::ExpertFile(const std::string& path, const ExpertFileShape& shape, bool cold)
    : path_(path), cold_(cold), shape_(shape) {
  const std::string who = "offload file '" + path + "'";
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw_runtime(who + ": cannot open: " + errno_text(errno));
  try {
    struct stat st;
    if (::fstat(fd_, &st) != 0) throw_runtime(who + ": fstat: " + errno_text(errno));
    file_bytes_ = uint64_t(st.st_size);
    FileHeader h;
    int err = 0;
    if (read_all(fd_, &h, sizeof h, 0, &err) != sizeof h)
      throw_runtime(who + ": truncated header (" + std::to_string(file_bytes_) + " bytes)");
    if (std::memcmp(h.magic, kMagic, 8) != 0) throw_runtime(who + ": not a moecap expert file (bad magic)");
    if (h.version != kVersion)
      throw_runtime(who + ": version " + std::to_string(h.version) + ", this build reads version " +
                    std::to_string(kVersion));
    const int E = shape.experts;
    if (h.experts != E || h.table_bytes != sizeof(ExpertEntry) * uint64_t(E) + 8)
      throw_runtime(who + ": holds " + std::to_string(h.experts) + " experts, the layer has " + std::to_string(E));
    std::vector<uint8_t> head(sizeof(FileHeader) + size_t(h.table_bytes));
    if (read_all(fd_, head.data(), head.size(), 0, &err) != head.size())
      throw_runtime(who + ": truncated expert table");
    uint64_t stored;
    std::memcpy(&stored, head.data() + head.size() - 8, 8);
    if (xxhash64(head.data(), head.size() - 8) != stored) throw_runtime(who + ": header checksum mismatch");
    if (h.dtype != uint32_t(shape.dtype) || h.hidden != shape.hidden || h.intermediate != shape.intermediate)
      throw_runtime(who + ": written for another shape (dtype " +
                    std::string(h.dtype <= 3 ? dtype_name(DType(h.dtype)) : "?") + ", hidden " +
                    std::to_string(h.hidden) + ", intermediate " + std::to_string(h.intermediate) +
                    "), the layer is dtype " + dtype_name(shape.dtype) + ", hidden " + std::to_string(shape.hidden) +
                    ", intermediate " + std::to_string(shape.intermediate));
    if (h.fingerprint != shape.fingerprint) throw_runtime(who + ": written from other weights (fingerprint differs)");
    const size_t want = expert_packed_bytes(shape.dtype, shape.hidden, shape.intermediate);
    w13_panels_ = h.w13_panels; w13_k_ = h.w13_k; w13_panel_bytes_ = size_t(h.w13_panel_bytes);
    w2_panels_ = h.w2_panels; w2_k_ = h.w2_k; w2_panel_bytes_ = size_t(h.w2_panel_bytes);
    expert_bytes_ = size_t(h.expert_bytes);
    const int F = shape.intermediate, H = shape.hidden;
    if (expert_bytes_ != want || w13_k_ != H || w13_panels_ != (F + 15) / 16 || w2_k_ != (F + 15) / 16 * 16 ||
        w2_panels_ != (H + 31) / 32 || w13_panel_bytes_ != panel_bytes_for(shape.dtype, H) ||
        w2_panel_bytes_ != panel_bytes_for(shape.dtype, w2_k_))
      throw_runtime(who + ": packing does not match this build's layout for the layer's shape");
    entries_.reset(new Entry[size_t(E)]);
    const uint64_t data_start = align_up(head.size());
    for (int e = 0; e < E; ++e) {
      ExpertEntry x;
      std::memcpy(&x, head.data() + sizeof(FileHeader) + sizeof(ExpertEntry) * size_t(e), sizeof x);
      if (x.size != expert_bytes_)
        throw_runtime(who + ": expert " + std::to_string(e) + ": size " + std::to_string(x.size) + " in the header, expected " +
                      std::to_string(expert_bytes_));
      if (x.offset < data_start || x.offset > file_bytes_ || x.size > file_bytes_ - x.offset)
        throw_runtime(who + ": expert " + std::to_string(e) + ": bytes [" + std::to_string(x.offset) + ", " +
                      std::to_string(x.offset + x.size) + ") lie past the end of the file (" +
                      std::to_string(file_bytes_) + " bytes; truncated?)");
      entries_[size_t(e)] = {x.offset, x.size, x.checksum};
    }
    if (cold_) {
      drop_cache();
      direct_fd_ = open_direct_read(path.c_str());  // -1: buffered + DONTNEED
    }
  } catch (...) {
    ::close(fd_);
    fd_ = -1;
    throw;
  }
}

ExpertFile::~ExpertFile() {
  if (fd_ >= 0) ::close(fd_);
  if (direct_fd_ >= 0) ::close(direct_fd_);
}

void ExpertFile::unlink_now() {
  ::unlink(path_.c_str());
  unlinked_ = true;
}

void ExpertFile::init_slot(ExpertWeights& w) const {
  w.hidden = shape_.hidden;
  w.intermediate = shape_.intermediate;
  w.w13.dtype = w.w2.dtype = shape_.dtype;
  w.w13.K = w13_k_; w.w13.panels = w13_panels_; w.w13.panel_bytes = w13_panel_bytes_;
  w.w2.K = w2_k_; w.w2.panels = w2_panels_; w.w2.panel_bytes = w2_panel_bytes_;
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
    if (cold_) advise_file(fd_, off_t(x.offset), off_t(x.size), FileAdvice::DontNeed);
  }
  if (got != a + b)
    throw_runtime(who + ": read " + std::to_string(got) + " of " + std::to_string(a + b) + " bytes at offset " +
                  std::to_string(x.offset) + (err ? " (" + errno_text(err) + ")" : std::string(" (file truncated)")));
  if (verify) verify_expert(e, w);
  return a + b;
}

void ExpertFile::verify_expert(int e, const ExpertWeights& w) const {
  XxHash64 sum;
  sum.update(w.w13.data.data(), w.w13.bytes());
  sum.update(w.w2.data.data(), w.w2.bytes());
  if (sum.digest() != entries_[size_t(e)].checksum)
    throw_runtime("offload file '" + path_ + "': expert " + std::to_string(e) + ": checksum mismatch (the file is corrupt)");
}

void ExpertFile::advise_willneed(int e) const {
  if (direct()) return;  // readahead would fill a page cache the direct reads never use
  const Entry& x = entries_[size_t(e)];
  advise_file(fd_, off_t(x.offset), off_t(x.size), FileAdvice::WillNeed);
}

void ExpertFile::drop_cache() const {
  sync_file_data(fd_);
  advise_file(fd_, 0, 0, FileAdvice::DontNeed);
}

}  // namespace moecap
