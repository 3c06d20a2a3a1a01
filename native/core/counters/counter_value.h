// One counter reading: a value with its unit and source, or "unavailable" with the reason.
// Never a zero standing in for a counter the machine does not have.
#pragma once
#include <string>
#include <vector>

namespace moecap {

struct CounterValue {
  std::string name;
  bool available = false;
  double value = 0;
  std::string unit;    // "cycles", "events", "ns", "J", "B", ...
  std::string source;  // "perf_event (hardware)", "powercap:package-0", "getrusage", "nvml:0"
  std::string reason;  // why it is unavailable
};

using CounterList = std::vector<CounterValue>;

}  // namespace moecap
