// A 64-byte aligned byte buffer (cache-line and zmm aligned) for packed weights: owned, or a
// fixed-size view into a larger owned buffer (an arena of experts, see experts/expert_arena.h).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <utility>

#if defined(_WIN32)
#include <malloc.h>
#else
#include <sys/mman.h>
#endif

namespace moecap {

// Whether buffers of 2 MiB and more are asked to be backed by transparent huge pages: where the
// OS has MADV_HUGEPAGE (Linux) and MOECAP_NO_HUGEPAGES is unset. Elsewhere (macOS, Windows: large
// pages there need a privilege and locked memory) they are plain 2 MiB aligned allocations and
// info().hugePages is false.
inline bool huge_pages_asked() {
#ifdef MADV_HUGEPAGE
  return std::getenv("MOECAP_NO_HUGEPAGES") == nullptr;
#else
  return false;
#endif
}

// posix_memalign/free, or the CRT's aligned heap on Windows (whose blocks need _aligned_free).
inline void* allocate_aligned(size_t align, size_t bytes) {
#if defined(_WIN32)
  return _aligned_malloc(bytes, align);
#else
  void* p = nullptr;
  return posix_memalign(&p, align, bytes) == 0 ? p : nullptr;
#endif
}
inline void free_aligned(void* p) {
#if defined(_WIN32)
  _aligned_free(p);
#else
  std::free(p);
#endif
}

class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t bytes) { resize(bytes); }
  ~AlignedBuffer() {
    if (owned_) free_aligned(data_);
  }
  AlignedBuffer(AlignedBuffer&& o) noexcept : data_(o.data_), size_(o.size_), capacity_(o.capacity_), owned_(o.owned_) {
    o.data_ = nullptr;
    o.size_ = o.capacity_ = 0;
    o.owned_ = true;
  }
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(capacity_, o.capacity_);
    std::swap(owned_, o.owned_);
    return *this;
  }
  // A view of `capacity` bytes at p (not freed here; the owner outlives the view). resize()
  // within the capacity only sets the size, so packers fill views exactly as owned buffers.
  void view(uint8_t* p, size_t capacity) {
    if (owned_) free_aligned(data_);
    data_ = p;
    size_ = 0;
    capacity_ = capacity;
    owned_ = false;
  }
  bool is_view() const { return !owned_; }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;

  // Throws std::bad_alloc on failure; contents are uninitialised.
  void resize(size_t bytes) {
    if (!owned_) {
      if (bytes > capacity_) throw std::bad_alloc();  // a view never grows
      size_ = bytes;
      return;
    }
    free_aligned(data_);
    data_ = nullptr;
    size_ = 0;
    if (bytes == 0) return;
    const size_t rounded = (bytes + 63) & ~size_t(63);
    // Buffers of 2 MiB and more (packed experts, the calibration buffer) are 2 MiB aligned and
    // asked to be backed by transparent huge pages: the weight streams then cross no 4 KiB page
    // boundary (where hardware prefetchers stop) and hardly miss the TLB.
    const size_t huge = size_t(2) << 20;
    // 4 KiB alignment for page-sized buffers: expert slots are read with O_DIRECT.
    const size_t align = rounded >= huge ? huge : rounded >= 4096 ? 4096 : 64;
    void* p = allocate_aligned(align, rounded);
    if (!p) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
    if (align == huge && huge_pages_asked()) madvise(p, rounded & ~(huge - 1), MADV_HUGEPAGE);
#endif
    data_ = static_cast<uint8_t*>(p);
    size_ = capacity_ = bytes;
  }
  // Grow-only: keeps the allocation (and its already-faulted pages) when it is large enough.
  // For work buffers reused on every pass; contents are unspecified after growing.
  void reserve(size_t bytes) {
    if (bytes > size_) resize(bytes);
  }
  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  template <class T>
  T* as() {
    return reinterpret_cast<T*>(data_);
  }
  template <class T>
  const T* as() const {
    return reinterpret_cast<const T*>(data_);
  }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0, capacity_ = 0;
  bool owned_ = true;
};

}  // namespace moecap
