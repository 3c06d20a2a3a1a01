// NVIDIA GPU counters through NVML, loaded with dlopen so the addon needs no GPU stack: energy
// (J, between start and stop; unavailable for a window under 1 s), power (W), SM clock (MHz) and
// memory used (B) per device.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "counters/counter_value.h"

namespace moecap {

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
