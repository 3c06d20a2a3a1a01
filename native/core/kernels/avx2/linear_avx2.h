// Entry points of the AVX2 + FMA + F16C kernels, one translation unit per weight format, all
// compiled with the moecap_isa_avx2 flags (binding.gyp); the table is in linear_avx2.cc. Also the
// two helpers every AVX2 tile shares. Included only by those translation units, and the helpers
// are static (internal linkage), so no AVX2 code can be merged into another ISA's.
#pragma once
#include <immintrin.h>

#include "kernels/epilogue_scalar.h"
#include "kernels/kernel_table.h"
#include "kernels/x86_compiler.h"
#include "kernels/x86_prefetch.h"

namespace moecap {
namespace avx2 {
void linear_f32(const LinearJob& job);
void linear_bf16(const LinearJob& job);
void linear_int8(const LinearJob& job);
void linear_int4(const LinearJob& job);
void linear_mxfp4(const LinearJob& job);
void linear_fp8(const LinearJob& job);  // one of the two below, by fma_subnormals_slow()
// fp8's two decodes (linear_avx2_fp8.cc): E4M3 → fp32 bits, or → fp16 bits then vcvtph2ps.
void linear_fp8_fp32_bits(const LinearJob& job);
void linear_fp8_fp16_bits(const LinearJob& job);
// Whether an FMA with a subnormal operand is slow on this CPU (a microcode assist: Intel), measured
// once per process (~0.05 ms).
bool fma_subnormals_slow();

// Streaming tiles' prefetch of their weight streams where prefetcht1 skips L1 (Intel; AMD from
// Zen 4, cpu_prefetch_t1_skips_l1): each line 2 KB ahead into L1 (the tiles that fetch nothing
// nearer of their own) and 8 KB ahead into L2, as the AVX-512 tiles do: more lines in flight per
// core than the hardware prefetchers keep. AVX2 objects forced on a Xeon, two processes streaming:
// int8 +27%, int4 +41%, bf16 +33%, fp8 and mxfp4 within the noise (bench/kernel-notes.md). On AMD
// before Zen 4 (the AVX2 CPUs the tiles were tuned on) a 4 KB fetch made int8 and int4 slower, and
// the far one would fill L1: there they keep their own fetches alone.
// tile_fetches: whether a tile over iterations [it0, it1) of its input loop's `iters` fetches so,
// i.e. streams its panels through once by running the whole input: the decode tiles and every tile
// of a job with too few rows for K-blocks (fewer than 4 × MR, run_tiles: a routed expert's few
// rows at a small batch). A K-block's tiles re-read a slice that sits in L1, and do not fetch;
// where the whole input is one K-block (K ≤ 256 f32, 512 bf16, 1024 int8/fp8, 2048 int4/mxfp4)
// every tile does, the first streaming it, the others finding their lines in cache (OLMoE at T =
// 256, whose int8/fp8 down projection is one block: no change measured).
// The CPU's answer is read once per translation unit: the tiles test an inline flag, not an
// out-of-line call, which would make them save their ymm registers around it.
static inline bool tile_fetches(int it0, int it1, int iters) {
  if (it0 != 0 || it1 != iters) return false;
  static const bool cpu = cpu_prefetch_t1_skips_l1();
  return cpu;
}

// A streaming tile's fetch of one 128-byte k-step of a panel (32 outputs of f32, a k-pair of
// bf16, a k-quad of int8): both its lines, near and far (x86_prefetch.h).
static inline void prefetch_k_step(const void* p) {
  prefetch_stream(p);
  prefetch_stream(static_cast<const uint8_t*>(p) + 64);
}

// A tile's accumulators: MR rows × NP panels × 32 outputs (4 ymm).
template <int MR, int NP>
static inline void zero_tile(__m256 (&acc)[MR][NP][4]) {
  for (int r = 0; r < MR; ++r)
    for (int q = 0; q < NP; ++q)
      for (int v = 0; v < 4; ++v) acc[r][q][v] = _mm256_setzero_ps();
}

// Rows r0.. of panels p, p + ps, … through the job's epilogue.
template <int MR, int NP>
static inline void store_tile(const LinearJob& job, int r0, int p, int ps, const __m256 (&acc)[MR][NP][4]) {
  for (int r = 0; r < MR; ++r)
    for (int q = 0; q < NP; ++q) {
      alignas(32) float out[32];
      for (int v = 0; v < 4; ++v) _mm256_store_ps(out + 8 * v, acc[r][q][v]);
      store_epilogue_scalar(job, r0 + r, p + q * ps, out);
    }
}

// Partial sums of a K-blocked tile in `part` (MR·NP × 32 floats). fp32 values store and reload
// exactly, so K-blocking leaves every element's chain of operations as it was. The copies are fully
// unrolled: read by a loop over rows (store_tile's, kept rolled by the epilogue call) GCC keeps the
// accumulators in memory and stores them on every input iteration (fp32 prefill ran at 2/5 of the speed).
template <int MR, int NP>
static inline void load_partial(const float* part, __m256 (&acc)[MR][NP][4]) {
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int q = 0; q < NP; ++q)
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) acc[r][q][v] = _mm256_load_ps(part + (r * NP + q) * 32 + 8 * v);
}
template <int MR, int NP>
static inline void store_partial(float* part, const __m256 (&acc)[MR][NP][4]) {
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int q = 0; q < NP; ++q)
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) _mm256_store_ps(part + (r * NP + q) * 32 + 8 * v, acc[r][q][v]);
}

// The end of a tile's input: its rows through the epilogue. The decode tiles (several panels),
// whose 12 accumulators spill some anyway, measured faster with store_tile's rolled copy (bf16 ~1.3x).
template <int MR, int NP>
static inline void finish_tile(const LinearJob& job, int r0, int p, int ps, const __m256 (&acc)[MR][NP][4]) {
  if constexpr (NP > 1) {
    store_tile(job, r0, p, ps, acc);
  } else {
    alignas(32) float buf[MR * 32];
    store_partial(buf, acc);
    for (int r = 0; r < MR; ++r) store_epilogue_scalar(job, r0 + r, p, buf + r * 32);
  }
}

// A tile over iterations [it0, it1) of its input loop starts from zero at it0 = 0, else from the
// partial sums an earlier K-block left in `part`; it ends with the epilogue after the last
// iteration, else by storing `part`. Decode tiles (NP > 1) always take the whole input (run_tiles),
// so for them both are settled at compile time: the run-time branches cost bf16 decode 13% (one
// thread, panels in cache: 44-46 against 51 GB/s).
template <int MR, int NP>
static inline void begin_tile(int it0, const float* part, __m256 (&acc)[MR][NP][4]) {
  if (NP > 1 || it0 == 0) zero_tile(acc);
  else load_partial(part, acc);
}
template <int MR, int NP>
static inline void end_tile(const LinearJob& job, int r0, int p, int ps, bool last, float* part,
                            const __m256 (&acc)[MR][NP][4]) {
  if (NP > 1 || last) finish_tile(job, r0, p, ps, acc);
  else store_partial(part, acc);
}

// Runs a kernel's tiles over the job. `Tile<R, NP>::run(job, r0, p, ps, it0, it1, part, extra…)`
// computes R rows × NP panels p, p + ps, …, p + (NP − 1)·ps over iterations [it0, it1) of its input
// loop (Tile<1, 1>::iterations(K) in all, kBlockIters per K-block; `part`: begin_tile/end_tile;
// `extra`: what the kernel computed once for the whole job). Every output element is one chain in
// input order whatever the tile, so a row alone equals it in a batch.
//  - one row (decode): NP panels at once, `stride` apart, so each of the NP weight streams walks
//    on through adjacent panels from one tile to the next. One core reads memory faster through
//    several sequential streams than through one (hardware prefetchers ramp up per stream), and
//    NP × 4 chains hide the FMA latency;
//  - several rows (prefill): chunks of up to kChunkRows rows; per panel, the input in K-blocks
//    (a ~32 KB slice of the panel, which stays in L1 while every row tile of the chunk uses it
//    instead of streaming the whole panel once per tile, as the AVX-512 driver does; on a Zen 3,
//    f32 T = 256: no change at OLMoE's shape, whose 256 KB panels sit in L2, and 1.1-1.2x at
//    Mixtral's, whose down panels are 1.8 MB), MR rows × one panel per tile and the rest of the
//    chunk's rows in smaller tiles. Partial sums go to a stack buffer.
constexpr int kChunkRows = 48;

// A decode tile in a function of its own (as the tiles all were before the prefill K-blocks):
// inlined into run_tiles beside the prefill loops, its code measured slower (one thread, panels in
// cache: bf16 47.6-49.5 against 51.4-52.3 GB/s, int8 47.8-48.6 against 49.2-51.0), while the
// prefill tiles need the inlining (f32 T = 256 ran 3x slower as functions of their own, their
// accumulators stored to the stack every iteration).
template <template <int, int> class Tile, int NP, class... Extra>
MOECAP_NOINLINE static void decode_tile(const LinearJob& job, int p, int stride, int iters, float* part,
                                        const Extra&... extra) {
  Tile<1, NP>::run(job, 0, p, stride, 0, iters, part, extra...);
}

template <template <int, int> class Tile, int MR, int NP, class... Extra>
static inline void run_tiles(const LinearJob& job, const Extra&... extra) {
  const int iters = Tile<1, 1>::iterations(job.K);
  alignas(32) float part[kChunkRows * 32];  // untouched by tiles over the whole input
  if (job.n == 1) {
    int p = job.p0;
    if (NP > 1) {
      const int count = (job.p1 - job.p0) / NP * NP, stride = count / NP;
      for (int i = 0; i < stride; ++i) decode_tile<Tile, NP>(job, job.p0 + i, stride, iters, part, extra...);
      p += count;
    }
    for (; p < job.p1; ++p) Tile<1, 1>::run(job, 0, p, 1, 0, iters, part, extra...);
    return;
  }
  // K-blocks only where at least 4 row tiles share a slice (a choice, not a measured optimum).
  const int kb = job.n >= 4 * MR ? Tile<1, 1>::kBlockIters : iters;
  for (int c0 = 0; c0 < job.n; c0 += kChunkRows) {
    const int c1 = job.n - c0 < kChunkRows ? job.n : c0 + kChunkRows;
    for (int p = job.p0; p < job.p1; ++p)
      for (int it0 = 0; it0 < iters; it0 += kb) {
        const int it1 = iters - it0 < kb ? iters : it0 + kb;
        int r = c0;
        for (; r + MR <= c1; r += MR) Tile<MR, 1>::run(job, r, p, 1, it0, it1, part + (r - c0) * 32, extra...);
        if constexpr (MR > 2)
          if (c1 - r >= 2) Tile<2, 1>::run(job, r, p, 1, it0, it1, part + (r - c0) * 32, extra...), r += 2;
        for (; r < c1; ++r) Tile<1, 1>::run(job, r, p, 1, it0, it1, part + (r - c0) * 32, extra...);
      }
  }
}
}  // namespace avx2
}  // namespace moecap
