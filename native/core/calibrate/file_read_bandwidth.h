// Cold sequential read bandwidth of a file in a given folder (the offload tier of a CPU run):
// writes a scratch file, then per repeat drops it from the page cache (fdatasync +
// posix_fadvise DONTNEED) and reads it front to back with large pread calls. The file is removed
// afterwards. On a VM the host may still cache the disk: the figure is what this guest sees.
#pragma once
#include <cstddef>
#include <string>

#include "calibrate/calibrate.h"

namespace moecap {

struct FileReadResult {
  Measured bandwidth;  // bytes / s
  size_t bytes = 0;
  bool cache_dropped = false;  // posix_fadvise(DONTNEED) succeeded every time
  bool direct = false;         // read with O_DIRECT (asked for, and the file system took it)
  std::string path;
};

// direct: read with O_DIRECT, the way a cold offload cache reads experts (falls back to buffered
// reads, direct = false, where the file system refuses it).
FileReadResult measure_file_read(const std::string& folder, size_t bytes, int repeats, bool direct = false);

// The same on an existing file (e.g. an offload weights file): its first `bytes` (at most its
// size, whole 8 MiB reads) front to back; nothing is written.
FileReadResult measure_existing_file_read(const std::string& path, size_t bytes, int repeats, bool direct = false);

}  // namespace moecap
