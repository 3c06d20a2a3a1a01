// perf_event_open counters for this process: one fd per (event, thread) for every thread that
// exists when the set is opened (pool and libuv threads included, so open after a warm-up pass),
// summed. Hardware events on VMs without a virtual PMU report the kernel's refusal as the reason.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "counters/counter_value.h"

namespace moecap {

class PerfEvents {
 public:
  PerfEvents();
  ~PerfEvents();
  PerfEvents(const PerfEvents&) = delete;
  PerfEvents& operator=(const PerfEvents&) = delete;

  void start();               // reset and enable
  CounterList stop();         // disable and read (values since start)
  CounterList probe() const;  // availability only

 private:
  struct Event {
    std::string name, unit;
    uint32_t type = 0;
    uint64_t config = 0;
    bool hardware = false;
    std::vector<int> fds;
    bool user_only = false;
    std::string reason;
  };
  std::vector<Event> events_;
};

}  // namespace moecap
