// A persistent pool of worker threads. parallel_for hands out task indices through an atomic
// counter (dynamic scheduling, so uneven experts balance themselves) and the calling thread
// takes part. Calls from different threads are serialised: one forward at a time per pool.
#pragma once
#if defined(__linux__)
#include <sched.h>
// CPU masks (sched_{get,set}affinity) exist on Linux; elsewhere threads are never pinned
// (pinned() is false, info().pinnedThreads says so) and all hardware threads count.
#define MOECAP_THREAD_AFFINITY 1
#endif

#include <atomic>
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace moecap {

class ThreadPool;

// Held for one pass (a sequence of parallel_for calls): serialises callers, wakes sleeping
// workers (ThreadPool::poke) and, when the pool is pinned, keeps the calling thread on the pool's
// first CPU until the outermost lock goes (its own CPU mask is restored then).
class PassLock {
 public:
  explicit PassLock(ThreadPool& pool);
  ~PassLock();
  PassLock(const PassLock&) = delete;
  PassLock& operator=(const PassLock&) = delete;

 private:
  ThreadPool& pool_;
  std::unique_lock<std::recursive_mutex> lock_;
#if defined(MOECAP_THREAD_AFFINITY)
  bool restore_ = false;
  cpu_set_t saved_;  // the caller's CPU mask while pinned
#endif
};

class ThreadPool {
 public:
  // threads: total including the caller (>= 1). allow_pin: pin when pinned() conditions hold.
  explicit ThreadPool(int threads, bool allow_pin = true);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return (int)workers_.size() + 1; }

  // Runs fn(task, thread_index) for every task in [0, n). Rethrows the first exception.
  void parallel_for(int n, const std::function<void(int, int)>& fn);

  // Holds the pool for a whole sequence of parallel_for calls (one forward pass). Recursive: a
  // model's layers share one pool, and a layer's pass may route the next layer (prefetch
  // prediction) on the same thread while it holds the pool.
  PassLock acquire() { return PassLock(*this); }

  // True when each thread of the pool runs on a CPU of its own: allowed (the layer option
  // pinThreads, default true, and MOECAP_PIN is not "0"), and the pool uses every CPU this
  // process may run on (threads == allowed CPUs, > 1): never when it shares the CPUs. Calls arrive on
  // whichever libuv thread is free, and right after other threads ran (the bench's bandwidth
  // readings) the scheduler often left that thread on the worker's CPU for milliseconds: whole
  // decode passes ran at half speed. Pinned, the caller moves to CPU 0 for the pass.
  bool pinned() const { return !cpus_.empty(); }

 private:
  friend class PassLock;
  // Wakes sleeping workers to spin for a while: called as a pass starts, so their wake-up
  // (tens of µs on this VM) overlaps the caller's routing instead of delaying the first
  // parallel_for. Decode passes from JavaScript come further apart than the spin lasts.
  void poke();
  void worker_loop(int index);
  void run_tasks(int thread_index);

  std::vector<std::thread> workers_;
  std::recursive_mutex call_mutex_;  // serialises callers
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_cv_;
  const std::function<void(int, int)>* fn_ = nullptr;
  int n_tasks_ = 0;
  std::atomic<int> next_{0};
  std::atomic<int> finished_threads_{0};
  uint64_t generation_ = 0;
  // Mirror of generation_ read without the lock: workers spin on it for a short while after a
  // parallel_for before sleeping, because a forward pass is several parallel_for calls in a row
  // and a condition-variable wake-up costs tens of microseconds (a decode pass is ~1 ms). The spin
  // stays short: a spinning worker slows offload passes that read on the caller (bench/kernel-notes.md).
  std::atomic<uint64_t> published_{0};
  bool stop_ = false;
  std::vector<int> cpus_;  // CPU of thread i when pinned, else empty
  int pass_depth_ = 0;     // nesting of PassLocks (under call_mutex_)
  uint64_t poke_ = 0;      // under mutex_
  std::exception_ptr error_;
  std::mutex error_mutex_;
};

int hardware_threads();

}  // namespace moecap
