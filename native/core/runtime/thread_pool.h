// A persistent pool of worker threads. parallel_for hands out task indices through an atomic
// counter (dynamic scheduling, so uneven experts balance themselves) and the calling thread
// takes part. Calls from different threads are serialised: one forward at a time per pool.
#pragma once
#include <atomic>
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace moecap {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // total threads including the caller; >= 1
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return (int)workers_.size() + 1; }

  // Runs fn(task, thread_index) for every task in [0, n). Rethrows the first exception.
  void parallel_for(int n, const std::function<void(int, int)>& fn);

  // Holds the pool for a whole sequence of parallel_for calls (one forward pass). Recursive: a
  // model's layers share one pool, and a layer's pass may route the next layer (prefetch
  // prediction) on the same thread while it holds the pool.
  std::unique_lock<std::recursive_mutex> acquire() { return std::unique_lock<std::recursive_mutex>(call_mutex_); }

 private:
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
  // and a condition-variable wake-up costs tens of microseconds (a decode pass is ~1 ms). Longer
  // spins (to bridge the ~70 µs between decode passes from JavaScript) were measured: 0–4 %
  // faster decode but 10–30 % slower offload passes that read on the caller, as a spinning
  // worker slows the other vCPU of this 2-vCPU VM; not worth it.
  std::atomic<uint64_t> published_{0};
  bool stop_ = false;
  std::exception_ptr error_;
  std::mutex error_mutex_;
};

int hardware_threads();

}  // namespace moecap
