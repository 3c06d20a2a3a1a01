// What this machine can hold: MemAvailable from /proc/meminfo (Linux), free + inactive + purgeable
// pages (macOS), GlobalMemoryStatusEx's available physical memory (Windows); falls back to the
// physical memory elsewhere.
#pragma once
#include <cstdint>
#include <string>

namespace moecap {
uint64_t available_memory_bytes();
uint64_t total_memory_bytes();
std::string format_bytes(double bytes);  // "5.60 GiB"
}  // namespace moecap
