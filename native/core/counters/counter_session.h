// Everything this machine can count around a timed region: perf events, RAPL energy, NVML, and
// getrusage (always there). Each comes back measured (value, unit, source) or unavailable (reason).
#pragma once
#include <memory>
#include <sys/resource.h>

#include "counters/counter_value.h"
#include "counters/nvml_counters.h"
#include "counters/perf_events.h"
#include "counters/powercap_energy.h"

namespace moecap {

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
  rusage start_usage_{};
  double start_wall_ = 0;
};

}  // namespace moecap
