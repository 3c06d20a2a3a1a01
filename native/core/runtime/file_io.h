// The file calls whose availability differs between systems, in one place. Descriptors are ints
// everywhere: POSIX descriptors, and on Windows C-runtime descriptors over a Win32 HANDLE opened
// with every share mode (so a scratch file can be removed while open, as on POSIX). Failures
// return -1 with errno set (Windows errors are mapped to the nearest errno).
// Linux has every call; elsewhere they degrade: no O_DIRECT (buffered reads, reported as not
// direct), no page-cache advice (cache drops reported as not done), fsync where fdatasync is
// missing, and on Windows FlushFileBuffers for both and no folder sync.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#if defined(_WIN32)
#include <io.h>
#else
#include <fcntl.h>
#include <sys/types.h>
#include <unistd.h>
#endif

namespace moecap {

// Read-only, or -1 with errno.
int open_read(const std::string& path);
// A new file for writing that must not exist yet (O_EXCL), mode 0644; or -1 with errno.
int create_exclusive(const std::string& path);
// Read-write, created or truncated, mode 0600 (scratch files); or -1 with errno.
int create_scratch(const std::string& path);
// An existing path opened read-only without blocking on a FIFO, kept only when it is a regular
// file (judged on the opened descriptor, so the path cannot change between check and use).
// Returns the descriptor; or -1 with errno (the open failed); or -2 with *kind naming what the
// path is instead ("a directory", "a FIFO", ...). *size: the file's bytes.
int open_regular_read(const std::string& path, const char** kind, uint64_t* size);
// A second read-only descriptor of the file `fd` has open that bypasses the page cache (O_DIRECT),
// reopened by name and kept only if it is still the same file; -1 where the OS has none, the
// file system refuses it, or the path now names another file.
int open_direct_same_file(const std::string& path, int fd);
// A read-only descriptor that bypasses the page cache, or -1 (see open_direct_same_file).
int open_direct_read(const std::string& path);

int close_file(int fd);
// The file's size in bytes, or -1 with errno.
int64_t file_size(int fd);
// Sets the file's length (ftruncate).
int truncate_file(int fd, uint64_t bytes);
// Data and metadata to the device (fsync).
int sync_file(int fd);
// Starts writing [offset, offset + bytes) of `fd` to the device without waiting (Linux
// sync_file_range), so a large file written piece by piece is mostly on disk by its final
// sync_file; a hint: nothing where the OS has no such call.
void start_writeback(int fd, uint64_t offset, uint64_t bytes);
// Renames `from` to `to`, replacing `to` if it exists, atomically where the OS can.
int replace_file(const std::string& from, const std::string& to);
int remove_file(const std::string& path);
bool path_exists(const std::string& path);
// Makes a rename in `folder` durable (fsync of the folder); nothing where the OS has no such call.
void sync_folder(const std::string& folder);
// This process's id, for unique scratch names.
long process_id();

#if defined(_WIN32)
// pread/pwrite on the HANDLE with an OVERLAPPED offset (the file position is not used). At most
// 1 GiB per call; short counts as POSIX. 0 at the end of the file.
int64_t read_at(int fd, void* buf, size_t n, uint64_t offset);
int64_t write_at(int fd, const void* buf, size_t n, uint64_t offset);
int sync_file_data(int fd);
#else
inline int64_t read_at(int fd, void* buf, size_t n, uint64_t offset) { return ::pread(fd, buf, n, off_t(offset)); }
inline int64_t write_at(int fd, const void* buf, size_t n, uint64_t offset) {
  return ::pwrite(fd, buf, n, off_t(offset));
}
// fdatasync where the OS declares it, else fsync (the same guarantee, plus the metadata).
inline int sync_file_data(int fd) {
#if defined(__linux__)
  return ::fdatasync(fd);
#else
  return ::fsync(fd);
#endif
}
#endif

enum class FileAdvice { DontNeed, WillNeed, Sequential };

// posix_fadvise where the OS has it; elsewhere nothing is done and -1 is returned (advice not taken).
inline int advise_file(int fd, int64_t offset, int64_t len, FileAdvice a) {
#if defined(POSIX_FADV_DONTNEED)
  const int adv = a == FileAdvice::DontNeed   ? POSIX_FADV_DONTNEED
                  : a == FileAdvice::WillNeed ? POSIX_FADV_WILLNEED
                                              : POSIX_FADV_SEQUENTIAL;
  return ::posix_fadvise(fd, off_t(offset), off_t(len), adv);
#else
  (void)fd, (void)offset, (void)len, (void)a;
  return -1;
#endif
}

}  // namespace moecap
