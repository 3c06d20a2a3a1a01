#include "runtime/memory_info.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>

namespace moecap {

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

uint64_t total_memory_bytes() {
  long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && size > 0 ? uint64_t(pages) * uint64_t(size) : 0;
}

uint64_t available_memory_bytes() {
  uint64_t v = meminfo_field("MemAvailable");
  return v ? v : total_memory_bytes();
}

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
