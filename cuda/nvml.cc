// NVML through dlopen (no link-time dependency): energy, power, clocks and memory of the CUDA
// device the layer runs on, matched by PCI bus id (CUDA and NVML number devices differently).
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <cstdio>
#include <cstring>
#include <mutex>

#include "backend/cuda_abi.h"

namespace {

struct NvmlMemory {
  unsigned long long total, free, used;
};

struct Nvml {
  void* lib = nullptr;
  int (*init)() = nullptr;
  int (*by_pci)(const char*, void**) = nullptr;
  int (*energy)(void*, unsigned long long*) = nullptr;
  int (*power)(void*, unsigned*) = nullptr;
  int (*clock)(void*, int, unsigned*) = nullptr;
  int (*memory)(void*, NvmlMemory*) = nullptr;
  char reason[256] = {0};
  bool ok = false;
};

Nvml& nvml() {
  static Nvml n;
  static std::once_flag once;
  std::call_once(once, [] {
    n.lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!n.lib) {
      std::snprintf(n.reason, sizeof n.reason, "libnvidia-ml.so.1 not found");
      return;
    }
    n.init = reinterpret_cast<int (*)()>(dlsym(n.lib, "nvmlInit_v2"));
    n.by_pci = reinterpret_cast<int (*)(const char*, void**)>(dlsym(n.lib, "nvmlDeviceGetHandleByPciBusId_v2"));
    n.energy =
        reinterpret_cast<int (*)(void*, unsigned long long*)>(dlsym(n.lib, "nvmlDeviceGetTotalEnergyConsumption"));
    n.power = reinterpret_cast<int (*)(void*, unsigned*)>(dlsym(n.lib, "nvmlDeviceGetPowerUsage"));
    n.clock = reinterpret_cast<int (*)(void*, int, unsigned*)>(dlsym(n.lib, "nvmlDeviceGetClockInfo"));
    n.memory = reinterpret_cast<int (*)(void*, NvmlMemory*)>(dlsym(n.lib, "nvmlDeviceGetMemoryInfo"));
    if (!n.init || !n.by_pci) {
      std::snprintf(n.reason, sizeof n.reason, "libnvidia-ml.so.1 lacks nvmlInit_v2/nvmlDeviceGetHandleByPciBusId_v2");
      return;
    }
    const int rc = n.init();
    if (rc != 0) {
      std::snprintf(n.reason, sizeof n.reason, "nvmlInit_v2 failed (NVML error %d)", rc);
      return;
    }
    n.ok = true;
  });
  return n;
}

}  // namespace

extern "C" MOECAP_CUDA_API int moecap_cuda_nvml_sample(int device, moecap_cuda_nvml_t* out) {
  if (!out) return -1;
  const size_t size = out->size;
  std::memset(out, 0, sizeof *out);
  out->size = size;
  out->energy_j = out->power_w = -1;
  out->sm_clock_mhz = out->mem_clock_mhz = -1;
  Nvml& n = nvml();
  if (!n.ok) {
    std::snprintf(out->reason, sizeof out->reason, "%.200s", n.reason);
    return 1;
  }
  char bus[64] = {0};
  if (cudaDeviceGetPCIBusId(bus, sizeof bus, device) != cudaSuccess) {
    std::snprintf(out->reason, sizeof out->reason, "cudaDeviceGetPCIBusId(%d) failed", device);
    return 1;
  }
  void* h = nullptr;
  if (n.by_pci(bus, &h) != 0) {
    std::snprintf(out->reason, sizeof out->reason, "NVML has no device at PCI %s", bus);
    return 1;
  }
  out->available = 1;
  unsigned long long mj = 0;
  unsigned mw = 0, mhz = 0;
  if (n.energy && n.energy(h, &mj) == 0) out->energy_j = double(mj) / 1000.0;
  if (n.power && n.power(h, &mw) == 0) out->power_w = double(mw) / 1000.0;
  if (n.clock && n.clock(h, 1 /* NVML_CLOCK_SM */, &mhz) == 0) out->sm_clock_mhz = int(mhz);
  if (n.clock && n.clock(h, 2 /* NVML_CLOCK_MEM */, &mhz) == 0) out->mem_clock_mhz = int(mhz);
  NvmlMemory m;
  if (n.memory && n.memory(h, &m) == 0) {
    out->memory_used = m.used;
    out->memory_total = m.total;
  }
  return 0;
}
