#include "counters/counter_session.h"

#include "runtime/clock.h"

#if defined(_WIN32)
#include <windows.h>
#include <psapi.h>
#else
#include <sys/resource.h>
#endif

namespace moecap {

#if defined(_WIN32)
static const char* const kUsageSource = "GetProcessTimes/GetProcessMemoryInfo";

static double filetime_seconds(const FILETIME& t) {
  return double((uint64_t(t.dwHighDateTime) << 32) | t.dwLowDateTime) * 1e-7;  // 100 ns units
}

static ProcessUsage process_usage() {
  ProcessUsage u;
  FILETIME created, exited, kernel, user;
  if (GetProcessTimes(GetCurrentProcess(), &created, &exited, &kernel, &user)) {
    u.user_s = filetime_seconds(user);
    u.system_s = filetime_seconds(kernel);
  }
  PROCESS_MEMORY_COUNTERS m;
  if (GetProcessMemoryInfo(GetCurrentProcess(), &m, sizeof m)) u.max_rss_bytes = double(m.PeakWorkingSetSize);
  return u;
}
#else
static const char* const kUsageSource = "getrusage(RUSAGE_SELF)";

static double tv_seconds(const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) * 1e-6; }

static ProcessUsage process_usage() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  ProcessUsage u;
  u.user_s = tv_seconds(r.ru_utime);
  u.system_s = tv_seconds(r.ru_stime);
#if defined(__APPLE__)
  u.max_rss_bytes = double(r.ru_maxrss);  // bytes on macOS
#else
  u.max_rss_bytes = double(r.ru_maxrss) * 1024.0;  // KiB on Linux
#endif
  u.has_io_and_switches = true;
  u.in_blocks = double(r.ru_inblock);
  u.out_blocks = double(r.ru_oublock);
  u.voluntary_switches = double(r.ru_nvcsw);
  u.involuntary_switches = double(r.ru_nivcsw);
  return u;
}
#endif

CounterSession::CounterSession() = default;

void CounterSession::start() {
  start_usage_ = process_usage();
  energy_.start();
  nvml_.start();
  start_wall_ = double(now_ns());
  perf_.start();
}

CounterList CounterSession::stop() {
  CounterList out = perf_.stop();
  const double wall = (double(now_ns()) - start_wall_) * 1e-9;
  const ProcessUsage u = process_usage();
  auto add = [&](const char* name, const char* unit, double v) {
    CounterValue c;
    c.name = name;
    c.unit = unit;
    c.available = true;
    c.value = v;
    c.source = kUsageSource;
    out.push_back(c);
  };
  add("userCpuTime", "s", u.user_s - start_usage_.user_s);
  add("systemCpuTime", "s", u.system_s - start_usage_.system_s);
  add("maxRss", "B", u.max_rss_bytes);
  const char* counted[] = {"blockInputs", "blockOutputs", "voluntaryContextSwitches", "involuntaryContextSwitches"};
  const double delta[] = {u.in_blocks - start_usage_.in_blocks, u.out_blocks - start_usage_.out_blocks,
                          u.voluntary_switches - start_usage_.voluntary_switches,
                          u.involuntary_switches - start_usage_.involuntary_switches};
  for (int i = 0; i < 4; ++i) {
    if (u.has_io_and_switches) {
      add(counted[i], "events", delta[i]);
      continue;
    }
    CounterValue c;
    c.name = counted[i];
    c.unit = "events";
    c.reason = std::string("not counted by this OS (") + kUsageSource + ")";
    out.push_back(c);
  }
  CounterValue w;
  w.name = "wallTime";
  w.unit = "s";
  w.available = true;
  w.value = wall;
  w.source = "steady_clock";
  out.push_back(w);
  for (auto& c : energy_.stop()) out.push_back(c);
  for (auto& c : nvml_.stop()) out.push_back(c);
  return out;
}

CounterList CounterSession::probe() const {
  CounterList out = perf_.probe();
  CounterValue r;
  r.name = "rusage";
  r.available = true;
  r.source = kUsageSource;
  out.push_back(r);
  for (auto& c : energy_.probe()) out.push_back(c);
  for (auto& c : nvml_.probe()) out.push_back(c);
  return out;
}

}  // namespace moecap
