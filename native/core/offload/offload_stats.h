// Counters of an offloaded layer's cache, per pass or cumulative (the CPU ExpertCache and the
// CUDA layer report the same fields).
#pragma once
#include <cstdint>

namespace moecap {

struct OffloadStats {
  int64_t passes = 0;
  int64_t hits = 0;    // needed experts that needed no load of their own pass
  int64_t misses = 0;  // needed experts loaded on demand
  int64_t evictions = 0;
  int64_t loads = 0;            // reads from the slow tier (demand + prefetch)
  double bytes_read = 0;        // bytes read from the slow tier
  int64_t io_ns = 0;            // time with at least one read (+ verify) in progress
  int64_t stall_ns = 0;         // time the compute thread waited for a load
  int64_t prefetch_issued = 0;  // loads started by prefetch()
  int64_t prefetch_used = 0;    // of those, experts a later pass needed while still resident
  int64_t waves = 0;            // compute batches
  int64_t verify_ns = 0;        // checksum checks of loaded experts on the compute thread
  OffloadStats operator-(const OffloadStats& o) const;
  OffloadStats& operator+=(const OffloadStats& o);
};

}  // namespace moecap
