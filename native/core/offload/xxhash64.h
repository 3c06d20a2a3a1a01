// XXH64 (Yann Collet's xxHash, 64-bit variant), implemented in-tree: the per-expert and header
// checksums of the weights file. Portable C++ at ~10 GB/s per core, so verifying every expert as it
// lands costs a small fraction of the read itself.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace moecap {

uint64_t xxhash64(const void* data, size_t len, uint64_t seed = 0);

// A checksum as the 16 lowercase hex digits files and messages show.
std::string hex16(uint64_t v);

// Streaming form for data that arrives in pieces (an expert's w13 then w2 bytes).
class XxHash64 {
 public:
  explicit XxHash64(uint64_t seed = 0);
  void update(const void* data, size_t len);
  uint64_t digest() const;

 private:
  uint64_t v_[4];
  uint64_t seed_;
  uint64_t total_ = 0;
  uint8_t buf_[32];
  size_t buffered_ = 0;
};

}  // namespace moecap
