#include "runtime/file_io.h"

#include <cerrno>

#if defined(_WIN32)
#include <fcntl.h>
#include <windows.h>
#else
#include <sys/stat.h>
#endif

namespace moecap {

#if !defined(_WIN32)

int open_read(const std::string& path) { return ::open(path.c_str(), O_RDONLY | O_CLOEXEC); }
int create_exclusive(const std::string& path) {
  return ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
}
int create_scratch(const std::string& path) {
  return ::open(path.c_str(), O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0600);
}

// O_NONBLOCK: a FIFO's open would wait for a writer; cleared once the file is known regular.
int open_regular_read(const std::string& path, const char** kind, uint64_t* size) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return -1;
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    errno = e;
    return -1;
  }
  const char* k = nullptr;
  if (S_ISDIR(st.st_mode)) k = "a directory";
  else if (S_ISFIFO(st.st_mode)) k = "a FIFO";
  else if (S_ISSOCK(st.st_mode)) k = "a socket";
  else if (S_ISCHR(st.st_mode)) k = "a character device";
  else if (S_ISBLK(st.st_mode)) k = "a block device";
  else if (!S_ISREG(st.st_mode)) k = "not a regular file";
  if (k) {
    ::close(fd);
    *kind = k;
    return -2;
  }
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  *size = uint64_t(st.st_size);
  return fd;
}

int open_direct_same_file(const std::string& path, int fd) {
#if !defined(O_DIRECT)
  (void)path, (void)fd;
  return -1;  // no page-cache bypass on this OS: buffered reads
#else
  struct stat st;
  if (::fstat(fd, &st) != 0) return -1;
  const int d = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT | O_NONBLOCK | O_NOCTTY);
  if (d < 0) return -1;
  struct stat now;
  if (::fstat(d, &now) != 0 || now.st_dev != st.st_dev || now.st_ino != st.st_ino || !S_ISREG(now.st_mode)) {
    ::close(d);
    return -1;
  }
  const int flags = ::fcntl(d, F_GETFL);
  if (flags >= 0) ::fcntl(d, F_SETFL, flags & ~O_NONBLOCK);
  return d;
#endif
}

int open_direct_read(const std::string& path) {
#if defined(O_DIRECT)
  return ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
#else
  (void)path;
  return -1;
#endif
}

int close_file(int fd) { return ::close(fd); }
int64_t file_size(int fd) {
  struct stat st;
  return ::fstat(fd, &st) == 0 ? int64_t(st.st_size) : -1;
}
int truncate_file(int fd, uint64_t bytes) { return ::ftruncate(fd, off_t(bytes)); }
int sync_file(int fd) { return ::fsync(fd); }
void start_writeback(int fd, uint64_t offset, uint64_t bytes) {
#if defined(__linux__)
  ::sync_file_range(fd, off64_t(offset), off64_t(bytes), SYNC_FILE_RANGE_WRITE);
#else
  (void)fd, (void)offset, (void)bytes;
#endif
}
int replace_file(const std::string& from, const std::string& to) { return ::rename(from.c_str(), to.c_str()); }
int remove_file(const std::string& path) { return ::unlink(path.c_str()); }
bool path_exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

void sync_folder(const std::string& folder) {
  const int dfd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

long process_id() { return long(::getpid()); }

#else  // _WIN32

namespace {

// Win32 error → the nearest errno, so callers print strerror() text on every OS.
int errno_of(DWORD e) {
  switch (e) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
    case ERROR_INVALID_DRIVE: return ENOENT;
    case ERROR_ACCESS_DENIED:
    case ERROR_SHARING_VIOLATION:
    case ERROR_LOCK_VIOLATION: return EACCES;
    case ERROR_FILE_EXISTS:
    case ERROR_ALREADY_EXISTS: return EEXIST;
    case ERROR_DISK_FULL:
    case ERROR_HANDLE_DISK_FULL: return ENOSPC;
    case ERROR_INVALID_PARAMETER: return EINVAL;
    case ERROR_INVALID_HANDLE: return EBADF;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY: return ENOMEM;
    case ERROR_WRITE_PROTECT: return EROFS;
    case ERROR_FILENAME_EXCED_RANGE: return ENAMETOOLONG;
    default: return EIO;
  }
}
int fail() {
  errno = errno_of(GetLastError());
  return -1;
}

// Paths are UTF-8 (what Node passes); the wide API takes every name the file system holds.
std::wstring wide(const std::string& s) {
  if (s.empty()) return std::wstring();
  const int n = MultiByteToWideChar(CP_UTF8, 0, s.data(), int(s.size()), nullptr, 0);
  std::wstring w(size_t(n > 0 ? n : 0), L'\0');
  if (n > 0) MultiByteToWideChar(CP_UTF8, 0, s.data(), int(s.size()), &w[0], n);
  return w;
}

HANDLE handle_of(int fd) { return reinterpret_cast<HANDLE>(_get_osfhandle(fd)); }

// Every share mode: other descriptors of the file keep working, and the file can be removed or
// replaced while open (a scratch expert file is removed right after it is opened).
int open_handle(const std::string& path, DWORD access, DWORD disposition, DWORD flags, HANDLE* out = nullptr) {
  const HANDLE h = CreateFileW(wide(path).c_str(), access, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                               nullptr, disposition, FILE_ATTRIBUTE_NORMAL | flags, nullptr);
  if (h == INVALID_HANDLE_VALUE) return fail();
  const int fd = _open_osfhandle(reinterpret_cast<intptr_t>(h), (access & GENERIC_WRITE ? 0 : _O_RDONLY) | _O_BINARY);
  if (fd < 0) {
    CloseHandle(h);
    errno = EMFILE;
    return -1;
  }
  if (out) *out = h;
  return fd;
}

}  // namespace

int open_read(const std::string& path) { return open_handle(path, GENERIC_READ, OPEN_EXISTING, 0); }
int create_exclusive(const std::string& path) { return open_handle(path, GENERIC_WRITE, CREATE_NEW, 0); }
int create_scratch(const std::string& path) {
  return open_handle(path, GENERIC_READ | GENERIC_WRITE, CREATE_ALWAYS, 0);
}

// Backup semantics: a directory opens too, so it is named as one instead of "access denied".
int open_regular_read(const std::string& path, const char** kind, uint64_t* size) {
  HANDLE h = INVALID_HANDLE_VALUE;
  const int fd = open_handle(path, GENERIC_READ, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, &h);
  if (fd < 0) return -1;
  const char* k = nullptr;
  BY_HANDLE_FILE_INFORMATION info;
  const DWORD type = GetFileType(h);
  if (type == FILE_TYPE_PIPE) k = "a FIFO";
  else if (type == FILE_TYPE_CHAR) k = "a character device";
  else if (type != FILE_TYPE_DISK) k = "not a regular file";
  else if (!GetFileInformationByHandle(h, &info)) {
    const int e = errno_of(GetLastError());
    _close(fd);
    errno = e;
    return -1;
  } else if (info.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) k = "a directory";
  if (k) {
    _close(fd);
    *kind = k;
    return -2;
  }
  *size = (uint64_t(info.nFileSizeHigh) << 32) | info.nFileSizeLow;
  return fd;
}

// FILE_FLAG_NO_BUFFERING would be the equivalent; not used (yet): reads stay buffered and the
// layer reports them as not direct.
int open_direct_same_file(const std::string& path, int fd) {
  (void)path, (void)fd;
  return -1;
}
int open_direct_read(const std::string& path) {
  (void)path;
  return -1;
}

int close_file(int fd) { return _close(fd); }

int64_t file_size(int fd) {
  LARGE_INTEGER n;
  return GetFileSizeEx(handle_of(fd), &n) ? int64_t(n.QuadPart) : fail();
}

int truncate_file(int fd, uint64_t bytes) {
  FILE_END_OF_FILE_INFO eof;
  eof.EndOfFile.QuadPart = LONGLONG(bytes);
  return SetFileInformationByHandle(handle_of(fd), FileEndOfFileInfo, &eof, sizeof eof) ? 0 : fail();
}

int sync_file(int fd) { return FlushFileBuffers(handle_of(fd)) ? 0 : fail(); }
int sync_file_data(int fd) { return sync_file(fd); }
void start_writeback(int fd, uint64_t offset, uint64_t bytes) { (void)fd, (void)offset, (void)bytes; }

int replace_file(const std::string& from, const std::string& to) {
  return MoveFileExW(wide(from).c_str(), wide(to).c_str(), MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH) ? 0
                                                                                                               : fail();
}

int remove_file(const std::string& path) { return DeleteFileW(wide(path).c_str()) ? 0 : fail(); }

bool path_exists(const std::string& path) { return GetFileAttributesW(wide(path).c_str()) != INVALID_FILE_ATTRIBUTES; }

void sync_folder(const std::string& folder) { (void)folder; }  // MOVEFILE_WRITE_THROUGH did it

long process_id() { return long(GetCurrentProcessId()); }

int64_t read_at(int fd, void* buf, size_t n, uint64_t offset) {
  OVERLAPPED ov = {};
  ov.Offset = DWORD(offset);
  ov.OffsetHigh = DWORD(offset >> 32);
  DWORD got = 0;
  const DWORD want = DWORD(n < (size_t(1) << 30) ? n : size_t(1) << 30);
  if (!ReadFile(handle_of(fd), buf, want, &got, &ov)) {
    if (GetLastError() == ERROR_HANDLE_EOF) return 0;
    return fail();
  }
  return int64_t(got);
}

int64_t write_at(int fd, const void* buf, size_t n, uint64_t offset) {
  OVERLAPPED ov = {};
  ov.Offset = DWORD(offset);
  ov.OffsetHigh = DWORD(offset >> 32);
  DWORD put = 0;
  const DWORD want = DWORD(n < (size_t(1) << 30) ? n : size_t(1) << 30);
  if (!WriteFile(handle_of(fd), buf, want, &put, &ov)) return fail();
  return int64_t(put);
}

#endif

}  // namespace moecap
