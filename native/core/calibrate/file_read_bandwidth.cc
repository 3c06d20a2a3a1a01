#include "calibrate/file_read_bandwidth.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "error.h"
#include "runtime/clock.h"
#include "runtime/file_io.h"
#include "weights/aligned_buffer.h"

namespace moecap {

namespace {
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close_file(fd);
  }
};

// Reads [0, bytes) front to back in 8 MiB reads, `repeats` times, the page cache dropped before
// each; with `direct`, through an O_DIRECT descriptor where the file system takes it.
void timed_reads(int fd_buffered, const std::string& path, size_t bytes, int repeats, bool direct, AlignedBuffer& buf,
                 FileReadResult& r) {
  const size_t block = buf.size();
  Fd d;
  if (direct) d.fd = open_direct_read(path);
  std::vector<double> bw;
  r.cache_dropped = true;
  for (int rep = 0; rep < repeats; ++rep) {
    if (sync_file_data(fd_buffered) != 0 && errno != EROFS && errno != EINVAL) r.cache_dropped = false;
    if (advise_file(fd_buffered, 0, 0, FileAdvice::DontNeed) != 0) r.cache_dropped = false;
    advise_file(fd_buffered, 0, 0, FileAdvice::Sequential);
    int fd = d.fd >= 0 ? d.fd : fd_buffered;
    if (fd == d.fd && read_at(fd, buf.data(), block, 0) < 0 && errno == EINVAL) {
      fd = fd_buffered;  // O_DIRECT opened but refused on read
      close_file(d.fd);
      d.fd = -1;
    }
    if (rep == 0) r.direct = fd == d.fd;
    const int64_t t0 = now_ns();
    for (size_t off = 0; off < bytes; off += block) {
      const int64_t n = read_at(fd, buf.data(), block, off);
      if (n != int64_t(block))
        throw_range("reading '" + path + "' failed: " + std::strerror(n < 0 ? errno : EIO), ErrorCode::Io);
    }
    bw.push_back(double(bytes) / (double(now_ns() - t0) * 1e-9));
  }
  r.bandwidth = summarise_samples(bw);
}
}  // namespace

FileReadResult measure_file_read(const std::string& folder, size_t bytes, int repeats, bool direct) {
  if (repeats < 1 || repeats > 100) throw_option("file read repeats must be an integer in [1, 100]");
  const size_t block = size_t(8) << 20;
  bytes = std::max(block, bytes / block * block);
  FileReadResult r;
  r.path = folder + "/.moecap-calibrate-" + std::to_string(process_id()) + ".tmp";
  r.bytes = bytes;
  AlignedBuffer buf(block);
  for (size_t i = 0; i < block; ++i) buf.data()[i] = uint8_t(i * 131 + 7);  // not sparse, not zeros
  Fd f;
  f.fd = create_scratch(r.path);
  if (f.fd < 0) throw_range("cannot create a scratch file in '" + folder + "': " + std::strerror(errno), ErrorCode::Io);
  struct Unlink {
    const std::string& p;
    ~Unlink() { remove_file(p); }
  } unlink_guard{r.path};
  for (size_t off = 0; off < bytes; off += block) {
    const int64_t w = write_at(f.fd, buf.data(), block, off);
    if (w != int64_t(block))
      throw_range("writing the scratch file '" + r.path + "' failed: " + std::strerror(w < 0 ? errno : ENOSPC),
                  ErrorCode::Io);
  }
  if (sync_file_data(f.fd) != 0)
    throw_range("fdatasync of '" + r.path + "' failed: " + std::strerror(errno), ErrorCode::Io);
  timed_reads(f.fd, r.path, bytes, repeats, direct, buf, r);
  return r;
}

FileReadResult measure_existing_file_read(const std::string& path, size_t bytes, int repeats, bool direct) {
  if (repeats < 1 || repeats > 100) throw_option("file read repeats must be an integer in [1, 100]");
  const size_t block = size_t(8) << 20;
  FileReadResult r;
  r.path = path;
  Fd f;
  f.fd = open_read(path);
  if (f.fd < 0) throw_range("cannot open '" + path + "': " + std::strerror(errno), ErrorCode::Io);
  const int64_t size = file_size(f.fd);
  if (size < int64_t(block)) throw_range("'" + path + "' is smaller than one 8 MiB read");
  bytes = std::min(bytes, size_t(size)) / block * block;
  r.bytes = bytes;
  AlignedBuffer buf(block);
  timed_reads(f.fd, path, bytes, repeats, direct, buf, r);
  return r;
}

}  // namespace moecap
