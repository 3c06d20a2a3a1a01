// Register-only loops that measure the CPU's arithmetic ceilings, and a streaming read that
// measures its memory read bandwidth, one set per ISA (each in that ISA's translation unit, the
// same rule as the linear kernels: plain data and static-inline code only). calibrate/ times them.
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace moecap {

struct PeakLoops {
  const char* isa;
  // Each loop returns a value that depends on all its work, so none of it can be optimised away.
  // Operations done = iters × *_per_iter (a multiply-add counts 2). A null loop: no such unit.
  float (*fma_f32)(long iters);
  double fma_f32_per_iter;
  float (*dot_bf16)(long iters);
  double dot_bf16_per_iter;
  int32_t (*dot_int8)(long iters);
  double dot_int8_per_iter;
  // Sum `bytes` (a multiple of 512) from a 64-byte aligned buffer with the widest loads: four
  // sequential streams on the hardware prefetchers alone, and (null where the ISA has none) two
  // streams each prefetched ahead in software, as the decode kernels read their weights. Which is
  // faster depends on the CPU (bench/kernel-notes.md), so calibrate/ measures both once and reads
  // with the faster.
  uint64_t (*read_sum)(const void* p, size_t bytes);
  uint64_t (*read_sum_prefetched)(const void* p, size_t bytes);
};

const PeakLoops& generic_peak_loops();
const PeakLoops& avx2_peak_loops();
const PeakLoops& avx512_peak_loops();
const PeakLoops& neon_peak_loops();  // arm64 only; its dot loops follow the CPU's features

}  // namespace moecap
