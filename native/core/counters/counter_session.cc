#include "counters/counter_session.h"

#include "runtime/clock.h"

namespace moecap {

static double tv_seconds(const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) * 1e-6; }

CounterSession::CounterSession() = default;

void CounterSession::start() {
  getrusage(RUSAGE_SELF, &start_usage_);
  energy_.start();
  nvml_.start();
  start_wall_ = double(now_ns());
  perf_.start();
}

CounterList CounterSession::stop() {
  CounterList out = perf_.stop();
  const double wall = (double(now_ns()) - start_wall_) * 1e-9;
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto add = [&](const char* name, const char* unit, double v) {
    CounterValue c;
    c.name = name;
    c.unit = unit;
    c.available = true;
    c.value = v;
    c.source = "getrusage(RUSAGE_SELF)";
    out.push_back(c);
  };
  add("userCpuTime", "s", tv_seconds(u.ru_utime) - tv_seconds(start_usage_.ru_utime));
  add("systemCpuTime", "s", tv_seconds(u.ru_stime) - tv_seconds(start_usage_.ru_stime));
  add("maxRss", "B", double(u.ru_maxrss) * 1024.0);
  add("blockInputs", "events", double(u.ru_inblock - start_usage_.ru_inblock));
  add("blockOutputs", "events", double(u.ru_oublock - start_usage_.ru_oublock));
  add("voluntaryContextSwitches", "events", double(u.ru_nvcsw - start_usage_.ru_nvcsw));
  add("involuntaryContextSwitches", "events", double(u.ru_nivcsw - start_usage_.ru_nivcsw));
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
  r.source = "getrusage(RUSAGE_SELF)";
  out.push_back(r);
  for (auto& c : energy_.probe()) out.push_back(c);
  for (auto& c : nvml_.probe()) out.push_back(c);
  return out;
}

}  // namespace moecap
