#include "runtime/memory_info.h"

#include <cstdio>
#include <cstring>

#if defined(_WIN32)
#include <windows.h>
#else
#include <unistd.h>
#endif
#if defined(__APPLE__)
#include <mach/mach.h>
#endif

namespace moecap {

#if defined(__linux__)
static uint64_t meminfo_field(const char* name) {
  FILE* f = std::fopen("/proc/meminfo", "r");
  if (!f) return 0;
  char line[256];
  uint64_t v = 0;
  size_t n = std::strlen(name);
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, name, n) == 0 && line[n] == ':') {
      unsigned long long kb = 0;
      if (std::sscanf(line + n + 1, "%llu", &kb) == 1) v = uint64_t(kb) * 1024;
      break;
    }
  }
  std::fclose(f);
  return v;
}

#endif

#if defined(_WIN32)
uint64_t total_memory_bytes() {
  MEMORYSTATUSEX m;
  m.dwLength = sizeof m;
  return GlobalMemoryStatusEx(&m) ? uint64_t(m.ullTotalPhys) : 0;
}

uint64_t available_memory_bytes() {
  MEMORYSTATUSEX m;
  m.dwLength = sizeof m;
  return GlobalMemoryStatusEx(&m) ? uint64_t(m.ullAvailPhys) : 0;
}
#else
uint64_t total_memory_bytes() {
  long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && size > 0 ? uint64_t(pages) * uint64_t(size) : 0;
}

uint64_t available_memory_bytes() {
#if defined(__linux__)
  uint64_t v = meminfo_field("MemAvailable");
#elif defined(__APPLE__)
  // What the kernel can hand out without swapping: free, inactive (clean or compressible) and
  // purgeable pages, as Activity Monitor counts them.
  uint64_t v = 0;
  vm_statistics64_data_t s;
  mach_msg_type_number_t n = HOST_VM_INFO64_COUNT;
  vm_size_t page = 0;
  if (host_page_size(mach_host_self(), &page) == KERN_SUCCESS &&
      host_statistics64(mach_host_self(), HOST_VM_INFO64, reinterpret_cast<host_info64_t>(&s), &n) == KERN_SUCCESS)
    v = (uint64_t(s.free_count) + s.inactive_count + s.purgeable_count) * uint64_t(page);
#else
  uint64_t v = 0;
#endif
  return v ? v : total_memory_bytes();
}
#endif

std::string format_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int u = 0;
  while (b >= 1024 && u < 5) {
    b /= 1024;
    ++u;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f %s", b, units[u]);
  return buf;
}

}  // namespace moecap
