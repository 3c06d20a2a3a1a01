// Everything this machine can count around a timed region: perf events, RAPL energy, NVML, and
// the process's own usage (getrusage; GetProcessTimes and GetProcessMemoryInfo on Windows, which
// counts no block I/O or context switches). Each comes back measured (value, unit, source) or
// unavailable (reason).
#pragma once
#include <memory>

#include "counters/counter_value.h"
#include "counters/nvml_counters.h"
#include "counters/perf_events.h"
#include "counters/powercap_energy.h"

namespace moecap {

// The process's CPU times, peak resident set and (where counted) block I/O and context switches.
struct ProcessUsage {
  double user_s = 0, system_s = 0, max_rss_bytes = 0;
  bool has_io_and_switches = false;
  double in_blocks = 0, out_blocks = 0, voluntary_switches = 0, involuntary_switches = 0;
};

class CounterSession {
 public:
  CounterSession();
  void start();
  CounterList stop();
  CounterList probe() const;

 private:
  PerfEvents perf_;
  PowercapEnergy energy_;
  NvmlCounters nvml_;
  ProcessUsage start_usage_;
  double start_wall_ = 0;
};

}  // namespace moecap
