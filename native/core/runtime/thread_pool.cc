#include "runtime/thread_pool.h"

#include <cstdlib>
#include <cstring>

#include "runtime/clock.h"
#include "runtime/environment.h"

#if defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#include <intrin.h>  // _mm_pause
#endif

namespace moecap {

int hardware_threads() {
#if defined(MOECAP_THREAD_AFFINITY)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
#endif
  unsigned n = std::thread::hardware_concurrency();
  return n ? (int)n : 1;
}

static bool pin_cpu(int cpu) {
#if defined(MOECAP_THREAD_AFFINITY)
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof(set), &set) == 0;
#else
  (void)cpu;
  return false;
#endif
}

// The CPU of each thread when the pool may pin (see ThreadPool::pinned), else empty (always
// where the OS has no CPU masks).
static std::vector<int> pinning_cpus(int threads, bool allow_pin) {
  if (!allow_pin || threads < 2 || !read_environment().pin_threads) return {};
  std::vector<int> cpus;
#if defined(MOECAP_THREAD_AFFINITY)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) != 0 || CPU_COUNT(&set) != threads) return {};
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
#endif
  return cpus;
}

ThreadPool::ThreadPool(int threads, bool allow_pin) {
  if (threads < 1) threads = 1;
  cpus_ = pinning_cpus(threads, allow_pin);
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

void ThreadPool::poke() {
  if (workers_.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++poke_;
  }
  wake_.notify_all();
}

PassLock::PassLock(ThreadPool& pool) : pool_(pool), lock_(pool.call_mutex_) {
  if (pool_.pass_depth_++ > 0) return;
  pool_.poke();
  if (pool_.cpus_.empty()) return;
#if defined(MOECAP_THREAD_AFFINITY)
  if (sched_getaffinity(0, sizeof(saved_), &saved_) == 0) restore_ = pin_cpu(pool_.cpus_[0]);
#endif
}

PassLock::~PassLock() {
  --pool_.pass_depth_;
#if defined(MOECAP_THREAD_AFFINITY)
  if (restore_) sched_setaffinity(0, sizeof(saved_), &saved_);
#endif
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_tasks(int thread_index) {
  for (;;) {
    int task = next_.fetch_add(1, std::memory_order_relaxed);
    if (task >= n_tasks_) break;
    try {
      (*fn_)(task, thread_index);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex_);
      if (!error_) error_ = std::current_exception();
      next_.store(n_tasks_, std::memory_order_relaxed);  // stop handing out work
    }
  }
}

// Spins until `ready()` or `ns` have passed; true if ready.
template <class Ready>
static bool spin_for(int64_t ns, Ready ready) {
  const int64_t until = now_ns() + ns;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (ready()) return true;
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
      _mm_pause();
#endif
    }
    if (now_ns() > until) return false;
  }
}

constexpr int64_t kSpinNs = 50000;

void ThreadPool::worker_loop(int index) {
  if (!cpus_.empty()) pin_cpu(cpus_[size_t(index)]);
  uint64_t seen = 0;
  for (;;) {
    spin_for(kSpinNs, [&] { return published_.load(std::memory_order_acquire) != seen; });
    {
      std::unique_lock<std::mutex> lock(mutex_);
      const uint64_t poked = poke_;
      wake_.wait(lock, [&] { return stop_ || generation_ != seen || poke_ != poked; });
      if (stop_) return;
      if (generation_ == seen) continue;  // poked at the start of a pass: spin for its first task
      seen = generation_;
    }
    run_tasks(index);
    if (finished_threads_.fetch_add(1, std::memory_order_acq_rel) + 1 == (int)workers_.size()) {
      std::lock_guard<std::mutex> lock(mutex_);
      done_cv_.notify_one();
    }
  }
}

void ThreadPool::parallel_for(int n, const std::function<void(int, int)>& fn) {
  if (n <= 0) return;
  if (workers_.empty() || n == 1) {
    for (int i = 0; i < n; ++i) fn(i, 0);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    fn_ = &fn;
    n_tasks_ = n;
    next_.store(0, std::memory_order_relaxed);
    finished_threads_.store(0, std::memory_order_relaxed);
    error_ = nullptr;
    ++generation_;
    published_.store(generation_, std::memory_order_release);
  }
  wake_.notify_all();
  run_tasks(0);
  spin_for(kSpinNs, [&] { return finished_threads_.load(std::memory_order_acquire) == (int)workers_.size(); });
  {
    std::unique_lock<std::mutex> lock(mutex_);
    done_cv_.wait(lock, [&] { return finished_threads_.load(std::memory_order_acquire) == (int)workers_.size(); });
    fn_ = nullptr;
  }
  if (error_) std::rethrow_exception(error_);
}

}  // namespace moecap
