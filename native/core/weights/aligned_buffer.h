// An owned, 64-byte aligned byte buffer (cache-line and zmm aligned) for packed weights.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <utility>

#include <sys/mman.h>

namespace moecap {

class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t bytes) { resize(bytes); }
  ~AlignedBuffer() { std::free(data_); }
  AlignedBuffer(AlignedBuffer&& o) noexcept : data_(o.data_), size_(o.size_) { o.data_ = nullptr; o.size_ = 0; }
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    return *this;
  }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;

  // Throws std::bad_alloc on failure; contents are uninitialised.
  void resize(size_t bytes) {
    std::free(data_);
    data_ = nullptr;
    size_ = 0;
    if (bytes == 0) return;
    void* p = nullptr;
    const size_t rounded = (bytes + 63) & ~size_t(63);
    // Buffers of 2 MiB and more (packed experts, the calibration buffer) are 2 MiB aligned and
    // asked to be backed by transparent huge pages: the weight streams then cross no 4 KiB page
    // boundary (where hardware prefetchers stop) and hardly miss the TLB.
    const size_t huge = size_t(2) << 20;
    const size_t align = rounded >= huge ? huge : 64;
    if (posix_memalign(&p, align, rounded) != 0) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
    if (align == huge && !std::getenv("MOECAP_NO_HUGEPAGES")) madvise(p, rounded & ~(huge - 1), MADV_HUGEPAGE);
#endif
    data_ = static_cast<uint8_t*>(p);
    size_ = bytes;
  }
  // Grow-only: keeps the allocation (and its already-faulted pages) when it is large enough.
  // For work buffers reused on every pass; contents are unspecified after growing.
  void reserve(size_t bytes) {
    if (bytes > size_) resize(bytes);
  }
  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  template <class T> T* as() { return reinterpret_cast<T*>(data_); }
  template <class T> const T* as() const { return reinterpret_cast<const T*>(data_); }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace moecap
