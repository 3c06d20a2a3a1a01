// The x86 read-bandwidth loops (native/core/kernels/{avx512,avx2}/peak_*.cc, read_sum and
// read_sum_prefetched): each must read every byte of its range exactly once, or the bandwidth
// calibrate/ reports would be off by the bytes skipped or read twice. Against the plain sum of the
// range's 64-bit words (mod 2^64) on random buffers of many sizes (multiples of 512 bytes, as
// calibrate/ gives them), at offsets into a larger random buffer, so a read past either end of the
// range changes the sum too. Built against the addon's own objects by
// test/cap/read_loops.test.ts; the AVX-512 loops only where the CPU runs them (argv[1] = "avx512").
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "../../cuda/test/expect.h"
#include "kernels/peak_loops.h"

using namespace moecap;

static uint64_t words_sum(const uint8_t* p, size_t bytes) {
  uint64_t s = 0;
  for (size_t i = 0; i < bytes; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    s += w;
  }
  return s;
}

int main(int argc, char** argv) {
  std::vector<const PeakLoops*> sets = {&avx2_peak_loops()};
  if (argc > 1 && std::string(argv[1]) == "avx512") sets.push_back(&avx512_peak_loops());
  uint64_t seed = 0x9E3779B97F4A7C15ull;
  std::vector<uint8_t> buf(size_t(1) << 22);
  for (auto& b : buf) seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17, b = uint8_t(seed >> 24);
  uint8_t* base = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(buf.data()) + 63) & ~uintptr_t(63));
  int ranges = 0;
  for (const PeakLoops* loops : sets)
    for (size_t bytes : {size_t(512), size_t(1024), size_t(1536), size_t(4096), size_t(4608), size_t(65536),
                         size_t(65536 + 512), size_t(1) << 20, (size_t(3) << 20) + 512})
      for (size_t offset : {size_t(64), size_t(4096), size_t(64 * 7)}) {
        const uint8_t* p = base + offset;
        const uint64_t want = words_sum(p, bytes);
        EXPECT(loops->read_sum(p, bytes) == want, "%s read_sum, %zu bytes at +%zu", loops->isa, bytes, offset);
        EXPECT(loops->read_sum_prefetched != nullptr, "%s: no prefetched loop", loops->isa);
        EXPECT(loops->read_sum_prefetched(p, bytes) == want, "%s read_sum_prefetched, %zu bytes at +%zu", loops->isa,
               bytes, offset);
        ++ranges;
      }
  std::printf("ok   read_sum and read_sum_prefetched == the words' sum: %d ranges (%s)\n", ranges,
              sets.size() == 2 ? "avx2, avx512" : "avx2");
  std::printf("all %d checks passed\n", g_checks);
  return 0;
}
