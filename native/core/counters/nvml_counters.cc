#include "counters/nvml_counters.h"

#include <cstdio>

#include "backend/library_files.h"

namespace moecap {
namespace {

// NVML's total-energy counter is refreshed by the driver at its own intervals, so a reading is up to
// one refresh stale at each end of a window: below this length the difference is not the window's
// energy (on an H200 here, decode windows of a few ms read 0 J).
constexpr double kNvmlMinEnergyWindowS = 1.0;

// gpuEnergy of one window from the counter's two readings (mJ), or why it is not measured.
CounterValue nvml_window_energy(bool read_ok, unsigned long long start_mj, unsigned long long stop_mj,
                                double window_s) {
  CounterValue v;
  v.name = "gpuEnergy";
  v.unit = "J";
  char why[240];
  if (!read_ok) {
    v.reason = "nvmlDeviceGetTotalEnergyConsumption not supported";
  } else if (window_s < kNvmlMinEnergyWindowS) {
    std::snprintf(why, sizeof why,
                  "a %.3f s window is shorter than %.0f s: NVML's energy counter is refreshed at driver intervals, "
                  "so its difference is not this window's energy",
                  window_s, kNvmlMinEnergyWindowS);
    v.reason = why;
  } else if (stop_mj <= start_mj) {
    std::snprintf(why, sizeof why, "NVML's energy counter did not advance over %.3f s", window_s);
    v.reason = why;
  } else {
    v.available = true;
    v.value = double(stop_mj - start_mj) * 1e-3;
  }
  return v;
}

}  // namespace

struct NvmlMemory {
  unsigned long long total, free, used;
};

struct NvmlCounters::Api {
  int (*init)();
  int (*shutdown)();
  int (*count)(unsigned*);
  int (*handle)(unsigned, void**);
  int (*energy)(void*, unsigned long long*);
  int (*power)(void*, unsigned*);
  int (*clock)(void*, int, unsigned*);
  int (*memory)(void*, NvmlMemory*);
  int (*name)(void*, char*, unsigned);
};

NvmlCounters::NvmlCounters() {
  lib_ = open_library(kNvmlFile, false, nullptr);
  if (!lib_) {
    reason_ = std::string(kNvmlFile) + " not found (no NVIDIA driver on this machine)";
    return;
  }
  api_ = new Api();
  auto sym = [&](const char* n) { return library_symbol(lib_, n); };
  api_->init = reinterpret_cast<int (*)()>(sym("nvmlInit_v2"));
  api_->shutdown = reinterpret_cast<int (*)()>(sym("nvmlShutdown"));
  api_->count = reinterpret_cast<int (*)(unsigned*)>(sym("nvmlDeviceGetCount_v2"));
  api_->handle = reinterpret_cast<int (*)(unsigned, void**)>(sym("nvmlDeviceGetHandleByIndex_v2"));
  api_->energy = reinterpret_cast<int (*)(void*, unsigned long long*)>(sym("nvmlDeviceGetTotalEnergyConsumption"));
  api_->power = reinterpret_cast<int (*)(void*, unsigned*)>(sym("nvmlDeviceGetPowerUsage"));
  api_->clock = reinterpret_cast<int (*)(void*, int, unsigned*)>(sym("nvmlDeviceGetClockInfo"));
  api_->memory = reinterpret_cast<int (*)(void*, NvmlMemory*)>(sym("nvmlDeviceGetMemoryInfo"));
  api_->name = reinterpret_cast<int (*)(void*, char*, unsigned)>(sym("nvmlDeviceGetName"));
  if (!api_->init || !api_->count || !api_->handle) {
    reason_ = std::string(kNvmlFile) + " lacks nvmlInit_v2/nvmlDeviceGetCount_v2";
    return;
  }
  int rc = api_->init();
  if (rc != 0) {
    reason_ = "nvmlInit_v2 failed (NVML error " + std::to_string(rc) + ")";
    return;
  }
  unsigned n = 0;
  if (api_->count(&n) != 0 || n == 0) {
    reason_ = "NVML reports no GPU";
    return;
  }
  for (unsigned i = 0; i < n; ++i) {
    void* h = nullptr;
    if (api_->handle(i, &h) != 0) continue;
    devices_.push_back(h);
    char buf[96] = {0};
    if (api_->name) api_->name(h, buf, sizeof buf);
    names_.push_back(buf);
  }
  start_mj_.assign(devices_.size(), 0);
  energy_ok_.assign(devices_.size(), false);
}

NvmlCounters::~NvmlCounters() {
  if (api_ && api_->shutdown && !devices_.empty()) api_->shutdown();
  delete api_;
  if (lib_) close_library(lib_);
}

void NvmlCounters::start() {
  start_time_ = std::chrono::steady_clock::now();
  for (size_t i = 0; i < devices_.size(); ++i)
    energy_ok_[i] = api_->energy && api_->energy(devices_[i], &start_mj_[i]) == 0;
}

CounterList NvmlCounters::stop() {
  CounterList out;
  if (devices_.empty()) {
    CounterValue v;
    v.name = "gpu";
    v.reason = reason_;
    out.push_back(v);
    return out;
  }
  // Each reading is taken in a statement of its own before it is passed on: argument order is
  // unspecified, and g++ copied `mw` before the call that fills it (0 W on an H200).
  for (size_t i = 0; i < devices_.size(); ++i) {
    const std::string src = "nvml:" + std::to_string(i) + " (" + names_[i] + ")";
    auto item = [&](const std::string& name, const std::string& unit, bool ok, double value, const char* why) {
      CounterValue v;
      v.name = name + ":" + std::to_string(i);
      v.unit = unit;
      v.available = ok;
      v.value = ok ? value : 0;
      v.source = ok ? src : "";
      v.reason = ok ? "" : why;
      out.push_back(v);
    };
    unsigned long long mj = 0;
    const bool e = energy_ok_[i] && api_->energy(devices_[i], &mj) == 0;
    const double window_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time_).count();
    CounterValue energy = nvml_window_energy(e, start_mj_[i], mj, window_s);
    energy.name += ":" + std::to_string(i);
    energy.source = energy.available ? src : "";
    out.push_back(energy);
    unsigned mw = 0;
    const bool power_ok = api_->power && api_->power(devices_[i], &mw) == 0;
    item("gpuPower", "W", power_ok, mw * 1e-3, "nvmlDeviceGetPowerUsage failed");
    unsigned mhz = 0;
    const bool clock_ok = api_->clock && api_->clock(devices_[i], 1, &mhz) == 0;
    item("gpuSmClock", "MHz", clock_ok, mhz, "nvmlDeviceGetClockInfo failed");
    NvmlMemory m{0, 0, 0};
    const bool memory_ok = api_->memory && api_->memory(devices_[i], &m) == 0;
    item("gpuMemoryUsed", "B", memory_ok, double(m.used), "nvmlDeviceGetMemoryInfo failed");
  }
  return out;
}

CounterList NvmlCounters::probe() const {
  CounterList out;
  CounterValue v;
  v.name = "gpu";
  v.available = !devices_.empty();
  v.source = v.available ? "nvml (" + std::to_string(devices_.size()) + " devices: " + names_[0] +
                               (devices_.size() > 1 ? ", ..." : "") + ")"
                         : "";
  v.reason = reason_;
  out.push_back(v);
  return out;
}

}  // namespace moecap
