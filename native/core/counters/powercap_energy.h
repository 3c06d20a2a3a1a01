// RAPL energy through the powercap sysfs tree (/sys/class/powercap/intel-rapl:*, which AMD's
// RAPL driver also populates): joules per domain between start() and stop(), wrap-around handled.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "counters/counter_value.h"

namespace moecap {

class PowercapEnergy {
 public:
  explicit PowercapEnergy(const std::string& root = "/sys/class/powercap");
  void start();
  CounterList stop();
  CounterList probe() const;

 private:
  struct Domain {
    std::string name, path;
    uint64_t max_range = 0, start_uj = 0;
    bool readable = false;
  };
  std::vector<Domain> domains_;
  std::string reason_;
};

}  // namespace moecap
