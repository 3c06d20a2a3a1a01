// The engine's own weights file for offloaded experts: the packed bytes of every routed expert of
// one layer, exactly as the kernels read them, so a load is one pread per matrix and no repacking.
//
// Layout (little-endian):
//   FileHeader                        fixed fields (magic "MOECAPEX", version, shape, dtype, packing)
//   ExpertEntry[experts]              offset, size, xxh64 of the expert's bytes (w13 then w2)
//   uint64 header_checksum            xxh64 of everything above
//   zero padding to 4096, then each expert's bytes at a 4096-aligned offset.
// The header is written last and the file is renamed into place only after fsync, so an
// interrupted or failed write never leaves a file at `path` that loads as valid.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "experts/expert_weights.h"
#include "weights/dtype.h"

namespace moecap {

// What a file must match to be used for a layer. `fingerprint` identifies the master weights
// (seed or content hash), so a file of the same shape but other weights is refused too.
struct ExpertFileShape {
  DType dtype = DType::F32;
  int hidden = 0, intermediate = 0, experts = 0;
  uint64_t fingerprint = 0;
};

// Refuses a path no file can have (an embedded NUL, which C calls would cut the path at) with a
// RangeError naming offload.path. write_expert_file and ExpertFile call it.
void check_offload_path(const std::string& path);

// What a validated header says about the file's experts.
struct ExpertFileLayout {
  struct Entry {
    uint64_t offset, size, checksum;
  };
  int w13_panels = 0, w13_k = 0, w2_panels = 0, w2_k = 0;
  size_t w13_panel_bytes = 0, w2_panel_bytes = 0, expert_bytes = 0;
  std::vector<Entry> entries;
};

// The header checks, pure functions over the file's first bytes (no I/O; the fuzz target in
// test/fuzz/ drives them). `data`: the first `n` bytes of a file of `file_bytes` bytes; `who`
// prefixes every error. expert_file_head_bytes checks the fixed header's magic, version, expert
// count and table size and returns how many bytes the header and table take;
// validate_expert_file_head checks those bytes in full (checksum, shape, weights, packing, every
// expert's extent). Both throw moecap::Error naming the field that differs and both values.
size_t expert_file_head_bytes(const uint8_t* data, size_t n, const ExpertFileShape& shape, uint64_t file_bytes,
                              const std::string& who);
ExpertFileLayout validate_expert_file_head(const uint8_t* data, size_t n, const ExpertFileShape& shape,
                                           uint64_t file_bytes, const std::string& who);

// Packs expert e into `out` (reused between calls).
using ExpertPacker = std::function<void(int expert, ExpertWeights& out)>;

// Told after each expert is written: experts done, of total, and packed bytes written so far.
using ExpertFileProgress = std::function<void(int done, int total, uint64_t bytes)>;

// Writes the file atomically (temp file in the same folder + fsync + rename + fsync of the folder).
// Throws moecap::Error naming the file on any failure, after removing the temp file.
void write_expert_file(const std::string& path, const ExpertFileShape& shape, const ExpertPacker& pack,
                       const ExpertFileProgress& progress = nullptr);

class ExpertFile {
 public:
  // Opens and validates the header against `shape` (magic, version, checksum, shape, every
  // expert's extent inside the file). Throws moecap::Error naming the file (and the expert).
  // `cold`: reads must hit the device, not the page cache: expert reads use O_DIRECT (no page
  // cache at all, and no CPU spent copying out of it, so loads overlap compute on every core);
  // where the file system refuses O_DIRECT (tmpfs, some FUSE) they fall back to buffered reads
  // with the file's page cache dropped at open and after every read.
  ExpertFile(const std::string& path, const ExpertFileShape& shape, bool cold);
  ~ExpertFile();
  ExpertFile(const ExpertFile&) = delete;
  ExpertFile& operator=(const ExpertFile&) = delete;

  // Sizes a resident slot for any expert of this file (metadata + buffers).
  void init_slot(ExpertWeights& slot) const;
  // Reads expert e into a slot made by init_slot and verifies its checksum. Thread-safe.
  // Returns the bytes read. In direct mode the slot must be one page-aligned extent with room for
  // the expert rounded up to 4 KiB (an ExpertArena slot); other slots are read buffered.
  size_t read_expert(int expert, ExpertWeights& slot, bool verify = true) const;
  // Checks a slot read with verify = false against the expert's checksum; throws moecap::Error
  // naming the file and the expert on a mismatch.
  void verify_expert(int expert, const ExpertWeights& slot) const;
  // Starts asynchronous readahead of expert e (POSIX_FADV_WILLNEED); read_expert then finds it
  // in flight or landed. Only a hint: errors are ignored.
  void advise_willneed(int expert) const;
  // Drops the page cache of the whole file (POSIX_FADV_DONTNEED; clean pages only).
  void drop_cache() const;
  // Removes the name now; the open descriptor keeps the data (for scratch files).
  void unlink_now();

  const std::string& path() const { return path_; }
  size_t expert_bytes() const { return expert_bytes_; }
  uint64_t file_bytes() const { return file_bytes_; }
  bool cold() const { return cold_; }
  // Expert reads bypass the page cache (O_DIRECT); false also after a fallback.
  bool direct() const { return direct_fd_ >= 0 && !direct_failed_.load(); }
  const ExpertFileShape& shape() const { return shape_; }
  bool scratch() const { return unlinked_; }  // removed from the folder (a scratch file)

 private:
  struct Entry {
    uint64_t offset, size, checksum;
  };
  std::string path_;
  int fd_ = -1;
  int direct_fd_ = -1;                              // O_DIRECT descriptor (cold mode), or -1
  mutable std::atomic<bool> direct_failed_{false};  // the device refused an O_DIRECT read
  bool cold_ = false, unlinked_ = false;
  ExpertFileShape shape_;
  int w13_panels_ = 0, w2_panels_ = 0, w13_k_ = 0, w2_k_ = 0;
  size_t w13_panel_bytes_ = 0, w2_panel_bytes_ = 0, expert_bytes_ = 0;
  uint64_t file_bytes_ = 0;
  std::unique_ptr<Entry[]> entries_;
};

}  // namespace moecap
