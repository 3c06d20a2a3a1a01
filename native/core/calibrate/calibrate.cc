#include "calibrate/calibrate.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <vector>

#include "error.h"
#include "kernels/kernel_table.h"
#include "kernels/peak_loops.h"
#include "runtime/clock.h"
#include "runtime/memory_info.h"
#include "runtime/thread_pool.h"
#include "weights/aligned_buffer.h"

namespace moecap {

Measured summarise_samples(std::vector<double> v) {
  Measured m;
  m.available = true;
  m.samples = v;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  m.median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  m.min = v.front();
  m.max = v.back();
  return m;
}

namespace {

using ReadLoop = uint64_t (*)(const void*, size_t);

// The faster of `loops`' two read loops on this machine for buffers of `bytes`, chosen once per
// process, ISA and size (a buffer in cache may favour the other loop): three alternating timed
// reads of each (`time_read(loop)` → bytes/s), the better best wins. Once, not per window, so every
// window costs one read (the probes beside measurements take 15 of them), and a process's windows
// of one size all use the same loop.
template <class TimeRead>
ReadLoop faster_read_loop(const PeakLoops& loops, size_t bytes, const TimeRead& time_read) {
  if (!loops.read_sum_prefetched) return loops.read_sum;
  struct Choice {
    const PeakLoops* loops;
    size_t bytes;
    ReadLoop read;
  };
  static std::mutex lock;
  static std::vector<Choice> chosen;
  std::lock_guard<std::mutex> hold(lock);
  for (const Choice& c : chosen)
    if (c.loops == &loops && c.bytes == bytes) return c.read;
  double plain = 0, prefetched = 0;
  for (int i = 0; i < 3; ++i) {
    plain = std::max(plain, time_read(loops.read_sum));
    prefetched = std::max(prefetched, time_read(loops.read_sum_prefetched));
  }
  chosen.push_back({&loops, bytes, prefetched > plain ? loops.read_sum_prefetched : loops.read_sum});
  return chosen.back().read;
}

// Each architecture's loops are only built, and referenced, on that architecture.
const PeakLoops& loops_for(const char* isa) {
#if defined(__x86_64__) || defined(_M_X64)
  if (std::strcmp(isa, "avx512") == 0) return avx512_peak_loops();
  if (std::strcmp(isa, "avx2") == 0) return avx2_peak_loops();
#elif defined(__aarch64__) || defined(_M_ARM64)
  if (std::strcmp(isa, "neon") == 0) return neon_peak_loops();
#endif
  return generic_peak_loops();
}

std::atomic<uint64_t> g_sink{0};  // keeps the loops' results alive

// Runs `loop(iters)` on every thread at once (one task per thread, each pinned to a task by a
// barrier so no thread runs two) and returns operations per second over the wall time.
template <class Loop>
Measured time_compute(ThreadPool& pool, int repeats, double seconds, double per_iter, Loop loop) {
  const int threads = pool.size();
  // Size the loop: time a short run on one thread, aim for `seconds` per repeat.
  long iters = 1 << 14;
  for (;;) {
    const int64_t t0 = now_ns();
    g_sink += uint64_t(loop(iters));
    const double dt = double(now_ns() - t0) * 1e-9;
    if (dt > 0.01) {
      iters = std::max(1L, long(double(iters) * seconds / dt));
      break;
    }
    iters *= 4;
  }
  std::vector<double> rates;
  for (int r = 0; r < repeats; ++r) {
    std::atomic<int> arrived{0};
    std::vector<int64_t> t_start(static_cast<size_t>(threads)), t_end(static_cast<size_t>(threads));
    pool.parallel_for(threads, [&](int, int th) {
      arrived.fetch_add(1);
      while (arrived.load() < threads) {
      }
      t_start[size_t(th)] = now_ns();
      g_sink += uint64_t(loop(iters));
      t_end[size_t(th)] = now_ns();
    });
    const int64_t t0 = *std::min_element(t_start.begin(), t_start.end());
    const int64_t t1 = *std::max_element(t_end.begin(), t_end.end());
    rates.push_back(double(iters) * per_iter * threads / (double(t1 - t0) * 1e-9));
  }
  return summarise_samples(rates);
}

}  // namespace

CalibrateResult calibrate(const CalibrateOptions& o) {
  if (o.repeats < 1 || o.repeats > 1000) throw_option("repeats must be an integer in [1, 1000]");
  const KernelTable& kt = select_kernels(o.isa, "isa");
  const PeakLoops& loops = loops_for(kt.isa);
  ThreadPool pool(o.threads > 0 ? o.threads : hardware_threads());
  const int threads = pool.size();

  CalibrateResult r;
  r.threads = threads;
  r.isa = kt.isa;
  r.repeats = o.repeats;

  // Read bandwidth: one buffer much larger than the last-level cache, first touched by the
  // threads that read it, read whole by all threads (256 chunks, dynamically shared) with the
  // faster of the ISA's read loops on this machine (peak_loops.h; faster_read_loop), so the
  // ceiling is what the better access pattern of this CPU reaches (on a Xeon, two prefetched
  // streams read 15-30% faster than four on the hardware prefetchers; bench/kernel-notes.md).
  const size_t chunks = 256;  // 4 MiB each for the default 1 GiB
  size_t bytes = std::max<size_t>(o.read_bytes, chunks * 4096) / (chunks * 512) * (chunks * 512);
  const double avail = double(available_memory_bytes());
  if (double(bytes) > 0.5 * avail)
    throw_option("readBytes (" + format_bytes(double(bytes)) + ") must be at most half the available memory (" +
                 format_bytes(avail) + ")");
  r.read_bytes = bytes;
  AlignedBuffer buf(bytes);
  const size_t chunk = bytes / chunks;
  pool.parallel_for(int(chunks), [&](int c, int) { std::memset(buf.data() + size_t(c) * chunk, 1 + c, chunk); });
  const auto read_all = [&](ReadLoop read) {
    const int64_t t0 = now_ns();
    pool.parallel_for(int(chunks), [&](int c, int) { g_sink += read(buf.data() + size_t(c) * chunk, chunk); });
    return double(bytes) / (double(now_ns() - t0) * 1e-9);
  };
  read_all(loops.read_sum);  // the first pass after the writes, not timed
  const ReadLoop read = faster_read_loop(loops, bytes, read_all);
  std::vector<double> bw;
  for (int rep = 0; rep < o.repeats; ++rep) bw.push_back(read_all(read));
  r.read_bandwidth = summarise_samples(bw);
  if (!o.compute) return r;  // a quick re-check of the read bandwidth only

  // Copy bandwidth (STREAM convention: bytes read + bytes written, write-allocate not counted):
  // the first half of the buffer copied onto the second half, chunks shared by all threads.
  const size_t half_chunk = chunk / 2;
  std::vector<double> cp;
  for (int rep = 0; rep < o.repeats; ++rep) {
    const int64_t t0 = now_ns();
    pool.parallel_for(int(chunks), [&](int c, int) {
      std::memcpy(buf.data() + bytes / 2 + size_t(c) * half_chunk, buf.data() + size_t(c) * half_chunk, half_chunk);
    });
    cp.push_back(double(bytes) / (double(now_ns() - t0) * 1e-9));
  }
  r.copy_bandwidth = summarise_samples(cp);
  buf.resize(0);

  r.fp32_flops = time_compute(pool, o.repeats, o.compute_seconds, loops.fma_f32_per_iter, loops.fma_f32);
  if (loops.dot_bf16)
    r.bf16_flops = time_compute(pool, o.repeats, o.compute_seconds, loops.dot_bf16_per_iter, loops.dot_bf16);
  if (loops.dot_int8)
    r.int8_ops = time_compute(pool, o.repeats, o.compute_seconds, loops.dot_int8_per_iter, loops.dot_int8);
  return r;
}

}  // namespace moecap
