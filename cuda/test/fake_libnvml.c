/* A stand-in libnvidia-ml.so.1 for the host tests: one device whose total-energy counter, like the
 * driver's, is refreshed only every 100 ms (at 500 W: 50 J a refresh). Each reading differs from the
 * zero its caller starts from. Built by test/cuda/nvml_counters.test.ts. */
#include <string.h>
#include <time.h>

typedef struct {
  unsigned long long total, free, used;
} fake_memory_t;

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int device_handle;

int nvmlInit_v2(void) { return 0; }
int nvmlShutdown(void) { return 0; }
int nvmlDeviceGetCount_v2(unsigned* n) {
  *n = 1;
  return 0;
}
int nvmlDeviceGetHandleByIndex_v2(unsigned i, void** h) {
  *h = i == 0 ? &device_handle : 0;
  return i == 0 ? 0 : 2;
}
int nvmlDeviceGetName(void* h, char* name, unsigned n) {
  (void)h;
  strncpy(name, "Fake NVML GPU", n);
  return 0;
}
int nvmlDeviceGetTotalEnergyConsumption(void* h, unsigned long long* mj) {
  (void)h;
  *mj = 1000000ull + 50000ull * (unsigned long long)(now_s() / 0.1); /* 50 J per 100 ms refresh */
  return 0;
}
int nvmlDeviceGetPowerUsage(void* h, unsigned* mw) {
  (void)h;
  *mw = 487250;
  return 0;
}
int nvmlDeviceGetClockInfo(void* h, int type, unsigned* mhz) {
  (void)h;
  (void)type;
  *mhz = 1980;
  return 0;
}
int nvmlDeviceGetMemoryInfo(void* h, fake_memory_t* m) {
  (void)h;
  m->total = 150ull << 30;
  m->used = 1ull << 30;
  m->free = m->total - m->used;
  return 0;
}
