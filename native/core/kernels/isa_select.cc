// Picks the kernel table once from cpuid (and the OS's saved-state mask, so AVX-512 is only used
// where the kernel enables zmm state). MOECAP_ISA / the `isa` option can only lower the choice.
#include <cpuid.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "kernels/kernel_table.h"

namespace moecap {
namespace {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512bf16 = false, avx512vnni = false;
  bool os_avx = false, os_avx512 = false;
};

CpuFeatures detect() {
  CpuFeatures f;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  f.fma = c & (1u << 12);
  f.f16c = c & (1u << 29);
  bool osxsave = c & (1u << 27);
  if (osxsave) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    f.os_avx = (lo & 0x6) == 0x6;
    f.os_avx512 = (lo & 0xE6) == 0xE6;
  }
  if (__get_cpuid_max(0, nullptr) >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    f.avx2 = b & (1u << 5);
    f.avx512f = b & (1u << 16);
    f.avx512dq = b & (1u << 17);
    f.avx512bw = b & (1u << 30);
    f.avx512vl = b & (1u << 31);
    f.avx512vnni = c & (1u << 11);
    __cpuid_count(7, 1, a, b, c, d);
    f.avx512bf16 = a & (1u << 5);
  }
  return f;
}

const CpuFeatures& features() {
  static const CpuFeatures f = detect();
  return f;
}

}  // namespace

bool cpu_has_avx2() {
  const auto& f = features();
  return f.os_avx && f.avx2 && f.fma && f.f16c;
}

bool cpu_has_avx512() {
  const auto& f = features();
  return cpu_has_avx2() && f.os_avx512 && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.avx512bf16 &&
         f.avx512vnni;
}

const KernelTable& select_kernels(const char* requested, const char** note) {
  static thread_local std::string msg;
  msg.clear();
  std::string want = requested && *requested ? requested : "auto";
  const KernelTable* best = cpu_has_avx512() ? &avx512_kernels() : cpu_has_avx2() ? &avx2_kernels() : &generic_kernels();
  const KernelTable* pick = best;
  if (want == "generic") pick = &generic_kernels();
  else if (want == "avx2") {
    if (cpu_has_avx2()) pick = &avx2_kernels();
    else msg = "MOECAP_ISA=avx2 asked for, but this CPU lacks AVX2/FMA/F16C; using " + std::string(best->isa);
  } else if (want == "avx512") {
    if (!cpu_has_avx512())
      msg = "MOECAP_ISA=avx512 asked for, but this CPU lacks AVX-512 F/BW/VL/DQ/BF16/VNNI; using " + std::string(best->isa);
  } else if (want != "auto") {
    msg = "unknown ISA '" + want + "' (expected avx512, avx2, generic or auto); using " + std::string(best->isa);
  }
  if (note) *note = msg.empty() ? nullptr : msg.c_str();
  return *pick;
}

}  // namespace moecap
