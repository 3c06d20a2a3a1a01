#include "counters/perf_events.h"

#if defined(__linux__)
#include <dirent.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#endif

namespace moecap {
#if defined(__linux__)
namespace {

long perf_open(perf_event_attr* attr, pid_t tid) {
  return syscall(__NR_perf_event_open, attr, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

std::vector<pid_t> threads_of_self() {
  std::vector<pid_t> tids;
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') tids.push_back(pid_t(std::atoi(e->d_name)));
    closedir(d);
  }
  if (tids.empty()) tids.push_back(0);
  return tids;
}

std::string errno_reason(int err) {
  switch (err) {
    case ENOENT:
    case EOPNOTSUPP:
      return "not supported by this CPU/kernel/hypervisor (perf_event_open: " + std::string(std::strerror(err)) + ")";
    case EACCES:
    case EPERM: return "not permitted (perf_event_paranoid or missing CAP_PERFMON): " + std::string(std::strerror(err));
    case ENOSYS: return "perf_event_open is not available in this kernel/sandbox";
    default: return std::string("perf_event_open failed: ") + std::strerror(err);
  }
}

}  // namespace

PerfEvents::PerfEvents() {
  auto add = [&](const char* name, const char* unit, uint32_t type, uint64_t config) {
    Event e;
    e.name = name;
    e.unit = unit;
    e.type = type;
    e.config = config;
    e.hardware = type != PERF_TYPE_SOFTWARE;
    events_.push_back(e);
  };
  add("cycles", "cycles", PERF_TYPE_HARDWARE, PERF_COUNT_HW_CPU_CYCLES);
  add("instructions", "instructions", PERF_TYPE_HARDWARE, PERF_COUNT_HW_INSTRUCTIONS);
  add("cacheReferences", "events", PERF_TYPE_HARDWARE, PERF_COUNT_HW_CACHE_REFERENCES);
  add("cacheMisses", "events", PERF_TYPE_HARDWARE, PERF_COUNT_HW_CACHE_MISSES);
  add("llcReadMisses", "events", PERF_TYPE_HW_CACHE,
      PERF_COUNT_HW_CACHE_LL | (PERF_COUNT_HW_CACHE_OP_READ << 8) | (PERF_COUNT_HW_CACHE_RESULT_MISS << 16));
  add("taskClock", "ns", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_TASK_CLOCK);
  add("pageFaults", "events", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS);
  add("contextSwitches", "events", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CONTEXT_SWITCHES);
  add("cpuMigrations", "events", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_MIGRATIONS);

  const std::vector<pid_t> tids = threads_of_self();
  for (Event& e : events_) {
    for (int attempt = 0; attempt < 2 && e.fds.empty(); ++attempt) {
      perf_event_attr attr;
      std::memset(&attr, 0, sizeof attr);
      attr.size = sizeof attr;
      attr.type = e.type;
      attr.config = e.config;
      attr.disabled = 1;
      attr.exclude_hv = 1;
      attr.exclude_kernel = attempt;  // first try user+kernel, then user only (paranoid >= 2)
      attr.inherit = 1;
      int err = 0;
      std::vector<int> fds;
      for (pid_t tid : tids) {
        long fd = perf_open(&attr, tid);
        if (fd < 0) {
          if (errno == ESRCH) continue;  // thread exited meanwhile
          err = errno;
          break;
        }
        fds.push_back(int(fd));
      }
      if (err) {
        for (int fd : fds) close(fd);
        e.reason = errno_reason(err);
        if (err != EACCES && err != EPERM) break;
      } else {
        e.fds = fds;
        e.user_only = attempt == 1;
        e.reason.clear();
      }
    }
  }
}

PerfEvents::~PerfEvents() {
  for (Event& e : events_)
    for (int fd : e.fds) close(fd);
}

void PerfEvents::start() {
  for (Event& e : events_)
    for (int fd : e.fds) {
      ioctl(fd, PERF_EVENT_IOC_RESET, 0);
      ioctl(fd, PERF_EVENT_IOC_ENABLE, 0);
    }
}

CounterList PerfEvents::stop() {
  CounterList out;
  for (Event& e : events_) {
    CounterValue v;
    v.name = e.name;
    v.unit = e.unit;
    if (e.fds.empty()) {
      v.reason = e.reason.empty() ? "not opened" : e.reason;
      out.push_back(v);
      continue;
    }
    double total = 0;
    bool ok = true;
    for (int fd : e.fds) {
      ioctl(fd, PERF_EVENT_IOC_DISABLE, 0);
      uint64_t count = 0;
      if (read(fd, &count, sizeof count) != sizeof count) ok = false;
      total += double(count);
    }
    v.available = ok;
    v.value = total;
    v.source = std::string("perf_event (") + (e.hardware ? "hardware" : "software") +
               (e.user_only ? ", user space only" : "") + ", " + std::to_string(e.fds.size()) + " threads)";
    if (!ok) v.reason = "read() of the perf counter failed";
    out.push_back(v);
  }
  return out;
}

CounterList PerfEvents::probe() const {
  CounterList out;
  for (const Event& e : events_) {
    CounterValue v;
    v.name = e.name;
    v.unit = e.unit;
    v.available = !e.fds.empty();
    v.source = v.available ? std::string("perf_event (") + (e.hardware ? "hardware" : "software") + ")" : "";
    v.reason = e.reason;
    out.push_back(v);
  }
  return out;
}

#else
// perf_event_open is Linux's: elsewhere no process counters are offered (an empty list; the
// energy and GPU counters are separate sources).
PerfEvents::PerfEvents() {}
PerfEvents::~PerfEvents() {}
void PerfEvents::start() {}
CounterList PerfEvents::stop() { return {}; }
CounterList PerfEvents::probe() const { return {}; }
#endif

}  // namespace moecap
