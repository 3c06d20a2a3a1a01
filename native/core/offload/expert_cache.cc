#include "offload/expert_cache.h"

#include <algorithm>

#include "error.h"
#include "runtime/clock.h"

namespace moecap {

constexpr int kBatchWhileWaiting = 4;

OffloadStats OffloadStats::operator-(const OffloadStats& o) const {
  OffloadStats d;
  d.passes = passes - o.passes;
  d.hits = hits - o.hits;
  d.misses = misses - o.misses;
  d.evictions = evictions - o.evictions;
  d.loads = loads - o.loads;
  d.bytes_read = bytes_read - o.bytes_read;
  d.io_ns = io_ns - o.io_ns;
  d.stall_ns = stall_ns - o.stall_ns;
  d.prefetch_issued = prefetch_issued - o.prefetch_issued;
  d.prefetch_used = prefetch_used - o.prefetch_used;
  d.waves = waves - o.waves;
  d.verify_ns = verify_ns - o.verify_ns;
  return d;
}

OffloadStats& OffloadStats::operator+=(const OffloadStats& o) {
  passes += o.passes;
  hits += o.hits;
  misses += o.misses;
  evictions += o.evictions;
  loads += o.loads;
  bytes_read += o.bytes_read;
  io_ns += o.io_ns;
  stall_ns += o.stall_ns;
  prefetch_issued += o.prefetch_issued;
  prefetch_used += o.prefetch_used;
  waves += o.waves;
  verify_ns += o.verify_ns;
  return *this;
}

static int checked_capacity(int capacity) {
  if (capacity < 1) throw_option("offload.capacity must hold at least one expert");
  return capacity;
}

ExpertCache::ExpertCache(std::unique_ptr<ExpertFile> file, int experts, int capacity, CachePolicy policy, bool async,
                         std::shared_ptr<Prefetcher> io, int stream_slots)
    : file_(std::move(file)),
      async_(async),
      io_(std::move(io)),
      table_(experts, checked_capacity(capacity), policy, stream_slots) {
  if (async_ && !io_) io_ = std::make_shared<Prefetcher>();
  slots_.resize(size_t(table_.slots()));
  const ExpertFileShape& shape = file_->shape();
  arena_.allocate(shape.dtype, shape.hidden, shape.intermediate, int(slots_.size()));
  for (size_t s = 0; s < slots_.size(); ++s) {
    arena_.bind(slots_[s].w, int(s));
    file_->init_slot(slots_[s].w);
  }
}

ExpertCache::~ExpertCache() {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait(lock, [&] { return inflight_ == 0; });
}

void ExpertCache::empty_slot_locked(int s) {
  Slot& slot = slots_[size_t(s)];
  table_.drop(table_.owner(s));
  slot.state = State::Empty;
  slot.verified = false;
}

// The table has given slot s to e (evicting its expert if it held one): read e into it.
void ExpertCache::start_load_locked(int s, int e) {
  Slot& slot = slots_[size_t(s)];
  slot.state = State::Loading;
  table_.set_loading(s, true);
  ++inflight_;
  if (!async_) {
    sync_loads_.push_back(s);
    return;
  }
  ExpertWeights* w = &slot.w;
  // The I/O threads only read: the checksum is checked by the compute thread that takes the
  // expert (next_ready), so the I/O threads go straight on to the next read.
  io_->submit([this, s, e, w] { load_slot(s, e, w, false); }, [this, e] { file_->advise_willneed(e); });
}

void ExpertCache::finish_load(int s, int e, size_t bytes, std::exception_ptr err, bool verified) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    --inflight_;
    Slot& slot = slots_[size_t(s)];
    // Busy time is the union of the reads' intervals: several I/O threads read at once.
    if (--reading_ == 0) stats_.io_ns += now_ns() - reading_since_;
    if (err) {
      if (table_.needed(s) && !error_) error_ = err;
      empty_slot_locked(s);
    } else {
      ++stats_.loads;
      stats_.bytes_read += double(bytes);
      table_.set_loading(s, false);
      slot.state = State::Ready;
      slot.verified = verified;
      if (table_.needed(s)) ready_.push_back(e);
    }
    // Under the lock: once inflight_ reaches 0 the destructor may run as soon as we unlock.
    cv_.notify_all();
  }
}

void ExpertCache::issue_pending_locked() {
  size_t i = 0;
  for (; i < pending_.size(); ++i) {
    const int s = table_.assign(pending_[i], /*prefetch=*/false);
    if (s < 0) break;
    start_load_locked(s, pending_[i]);
  }
  pending_.erase(pending_.begin(), pending_.begin() + long(i));
}

void ExpertCache::begin_pass(const std::vector<int>& needed) {
  std::lock_guard<std::mutex> lock(mutex_);
  error_ = nullptr;
  pending_.clear();
  ready_.clear();
  sync_loads_.clear();
  outstanding_ = (int)needed.size();
  table_.begin_pass(needed);  // counts uses, hits and misses; marks the resident ones needed
  for (int e : needed) {
    const int s = table_.slot_of(e);
    if (s < 0) pending_.push_back(e);
    else if (slots_[size_t(s)].state == State::Ready) ready_.push_back(e);
  }
  issue_pending_locked();
}

void ExpertCache::next_ready(std::vector<Ready>& batch, bool wait) {
  batch.clear();
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    if (error_) std::rethrow_exception(error_);
    issue_pending_locked();
    if (!ready_.empty()) {
      // While misses wait for a slot, hand out a few experts at a time: each computed batch is
      // released at once, so slots come free early and the I/O threads do not sit idle while one
      // large batch of resident experts computes (prefill with a cache smaller than the pass).
      size_t take = ready_.size();
      if (!pending_.empty()) take = std::min(take, size_t(kBatchWhileWaiting));
      for (size_t i = 0; i < take; ++i) batch.push_back({ready_[i], &slots_[size_t(table_.slot_of(ready_[i]))].w});
      outstanding_ -= (int)take;
      ready_.erase(ready_.begin(), ready_.begin() + long(take));
      ++stats_.waves;
      verify_batch_locked(lock, batch);
      return;
    }
    if (outstanding_ == 0 || !wait) return;
    const int64_t t0 = now_ns();
    if (!sync_loads_.empty()) {
      // No prefetch: the compute thread reads the miss itself (nothing overlaps it).
      const int s = sync_loads_.front();
      sync_loads_.erase(sync_loads_.begin());
      const int e = table_.owner(s);
      ExpertWeights* w = &slots_[size_t(s)].w;
      lock.unlock();
      load_slot(s, e, w, true);
      lock.lock();
      stats_.stall_ns += now_ns() - t0;
      continue;
    }
    cv_.wait(lock);
    stats_.stall_ns += now_ns() - t0;
  }
}

// Reads expert e into slot s and records the outcome: on the I/O thread, or on the compute thread
// when prefetch is off.
void ExpertCache::load_slot(int s, int e, ExpertWeights* w, bool verify) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (reading_++ == 0) reading_since_ = now_ns();
  }
  size_t bytes = 0;
  std::exception_ptr err;
  try {
    bytes = file_->read_expert(e, *w, verify);
  } catch (...) {
    err = std::current_exception();
  }
  finish_load(s, e, bytes, err, verify);
}

// Checks the checksums of the batch's experts not checked since their load, outside the lock
// (the batch's slots are pinned: nobody evicts or reloads them meanwhile). A corrupt expert is
// dropped from its slot and fails the pass before any of the batch is computed.
void ExpertCache::verify_batch_locked(std::unique_lock<std::mutex>& lock, const std::vector<Ready>& batch) {
  std::vector<int> todo;
  for (const Ready& r : batch)
    if (!slots_[size_t(table_.slot_of(r.expert))].verified) todo.push_back(r.expert);
  if (todo.empty()) return;
  lock.unlock();
  const int64_t t0 = now_ns();
  std::exception_ptr err;
  int bad = -1;
  for (int e : todo) {
    try {
      file_->verify_expert(e, slots_[size_t(table_.slot_of(e))].w);  // e's slot is fixed while needed
    } catch (...) {
      err = std::current_exception();
      bad = e;
      break;
    }
  }
  lock.lock();
  stats_.verify_ns += now_ns() - t0;
  for (int e : todo) {
    if (e == bad) break;
    slots_[size_t(table_.slot_of(e))].verified = true;
  }
  if (err) {
    empty_slot_locked(table_.slot_of(bad));
    error_ = err;
    std::rethrow_exception(err);
  }
}

void ExpertCache::release(const std::vector<Ready>& batch) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const Ready& r : batch) table_.done(r.expert);
  issue_pending_locked();
}

void ExpertCache::end_pass() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (int s : sync_loads_) {  // never started: give the slots back
    empty_slot_locked(s);
    --inflight_;
  }
  table_.end_pass();
  sync_loads_.clear();
  pending_.clear();
  ready_.clear();
  outstanding_ = 0;
  cv_.notify_all();
}

void ExpertCache::prefetch(const std::vector<int>& experts) {
  if (!async_) return;
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& load : table_.prefetch(experts)) start_load_locked(load.second, load.first);
}

std::vector<int> ExpertCache::pin_static() {
  std::lock_guard<std::mutex> lock(mutex_);
  return table_.pin_static();
}

OffloadStats ExpertCache::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  OffloadStats s = stats_;
  const SlotStats& t = table_.stats();
  s.passes = t.passes;
  s.hits = t.hits;
  s.misses = t.misses;
  s.evictions = t.evictions;
  s.prefetch_issued = t.prefetch_issued;
  s.prefetch_used = t.prefetch_used;
  return s;
}

void ExpertCache::reset_stats() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_ = OffloadStats();
  table_.reset_stats();
}

std::vector<int> ExpertCache::resident() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<int> r;
  for (size_t s = 0; s < slots_.size(); ++s)
    if (slots_[s].state == State::Ready) r.push_back(table_.owner(int(s)));
  std::sort(r.begin(), r.end());
  return r;
}

}  // namespace moecap
