// NVIDIA GPU counters through NVML, loaded with dlopen so the addon needs no GPU stack: energy
// (J, between start and stop), power (W), SM clock (MHz) and memory used (B) per device.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "counters/counter_value.h"

namespace moecap {

// NVML's total-energy counter is refreshed by the driver at its own intervals, so a reading is up to
// one refresh stale at each end of a window: below this length the difference is not the window's
// energy (on an H200 here, decode windows of a few ms read 0 J).
constexpr double kNvmlMinEnergyWindowS = 1.0;

/** gpuEnergy of one window from the counter's two readings (mJ), or why it is not measured. */
CounterValue nvml_window_energy(bool read_ok, unsigned long long start_mj, unsigned long long stop_mj, double window_s);

class NvmlCounters {
 public:
  NvmlCounters();
  ~NvmlCounters();
  NvmlCounters(const NvmlCounters&) = delete;
  NvmlCounters& operator=(const NvmlCounters&) = delete;
  void start();
  CounterList stop();
  CounterList probe() const;
  const std::string& reason() const { return reason_; }

 private:
  struct Api;
  void* lib_ = nullptr;
  Api* api_ = nullptr;
  std::vector<void*> devices_;
  std::vector<std::string> names_;
  std::vector<unsigned long long> start_mj_;
  std::vector<bool> energy_ok_;
  std::chrono::steady_clock::time_point start_time_{};
  std::string reason_;
};

}  // namespace moecap
