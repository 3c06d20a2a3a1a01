// The file calls whose availability differs between Unix systems, in one place. Linux has them
// all; elsewhere (macOS) they degrade: no O_DIRECT (buffered reads, reported as not direct), no
// page-cache advice (cache drops reported as not done), fsync where fdatasync is missing.
#pragma once
#include <fcntl.h>
#include <sys/types.h>
#include <unistd.h>

namespace moecap {

// A read-only descriptor that bypasses the page cache (O_DIRECT), or -1 where the OS has none or
// the file system refuses it (callers then read through their buffered descriptor).
inline int open_direct_read(const char* path) {
#if defined(O_DIRECT)
  return ::open(path, O_RDONLY | O_CLOEXEC | O_DIRECT);
#else
  (void)path;
  return -1;
#endif
}

// fdatasync where the OS declares it, else fsync (the same guarantee, plus the metadata).
inline int sync_file_data(int fd) {
#if defined(__linux__)
  return ::fdatasync(fd);
#else
  return ::fsync(fd);
#endif
}

enum class FileAdvice { DontNeed, WillNeed, Sequential };

// posix_fadvise where the OS has it; elsewhere nothing is done and -1 is returned (advice not taken).
inline int advise_file(int fd, off_t offset, off_t len, FileAdvice a) {
#if defined(POSIX_FADV_DONTNEED)
  const int adv = a == FileAdvice::DontNeed   ? POSIX_FADV_DONTNEED
                  : a == FileAdvice::WillNeed ? POSIX_FADV_WILLNEED
                                              : POSIX_FADV_SEQUENTIAL;
  return ::posix_fadvise(fd, offset, len, adv);
#else
  (void)fd, (void)offset, (void)len, (void)a;
  return -1;
#endif
}

}  // namespace moecap
