// What the CPU has, read once: cpuid (and the OS's saved-state mask, so AVX-512 is only used
// where the kernel enables zmm state) on x86-64; the hwcaps (Linux) or hw.optional.arm.FEAT_*
// (macOS) on arm64. Apart from the kernel tables (isa_select.cc), so the option checks of
// runtime/environment.cc link without the kernels.
#include <cstdint>
#include <cstring>
#include <string>

#include "error.h"
#include "kernels/kernel_table.h"

#if defined(__x86_64__) || defined(_M_X64)
#define MOECAP_X86 1
#if defined(_MSC_VER)
#include <immintrin.h>
#include <intrin.h>
#else
#include <cpuid.h>
#endif
#elif defined(__aarch64__) || defined(_M_ARM64)
#define MOECAP_ARM64 1
#if defined(__linux__)
#include <sys/auxv.h>
#elif defined(__APPLE__)
#include <sys/sysctl.h>
#endif
#endif

namespace moecap {
namespace {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512bf16 = false, avx512vnni = false, avx512vbmi = false;
  bool os_avx = false, os_avx512 = false;
  bool intel = false, amd = false;  // the cpuid vendor
  bool neon = false, dotprod = false, bf16 = false, i8mm = false;
};

#if defined(MOECAP_X86)
void cpuid(unsigned leaf, unsigned sub, unsigned r[4]) {
#if defined(_MSC_VER)
  int v[4];
  __cpuidex(v, int(leaf), int(sub));
  for (int i = 0; i < 4; ++i) r[i] = unsigned(v[i]);
#else
  __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
#endif
}

uint64_t xgetbv0() {
#if defined(_MSC_VER)
  return _xgetbv(0);
#else
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t(hi) << 32) | lo;
#endif
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned r[4];
  cpuid(0, 0, r);
  const unsigned max_leaf = r[0];
  // Vendor: the 12 bytes of ebx, edx, ecx.
  char vendor[13] = {};
  std::memcpy(vendor, &r[1], 4);
  std::memcpy(vendor + 4, &r[3], 4);
  std::memcpy(vendor + 8, &r[2], 4);
  f.intel = std::strcmp(vendor, "GenuineIntel") == 0;
  f.amd = std::strcmp(vendor, "AuthenticAMD") == 0;
  if (max_leaf < 1) return f;
  cpuid(1, 0, r);
  const unsigned c1 = r[2];
  f.fma = c1 & (1u << 12);
  f.f16c = c1 & (1u << 29);
  if (c1 & (1u << 27)) {  // osxsave
    const uint64_t xcr0 = xgetbv0();
    f.os_avx = (xcr0 & 0x6) == 0x6;
    f.os_avx512 = (xcr0 & 0xE6) == 0xE6;
  }
  if (max_leaf >= 7) {
    cpuid(7, 0, r);
    const unsigned b = r[1], c = r[2];
    f.avx2 = b & (1u << 5);
    f.avx512f = b & (1u << 16);
    f.avx512dq = b & (1u << 17);
    f.avx512bw = b & (1u << 30);
    f.avx512vl = b & (1u << 31);
    f.avx512vbmi = c & (1u << 1);
    f.avx512vnni = c & (1u << 11);
    cpuid(7, 1, r);
    f.avx512bf16 = r[0] & (1u << 5);
  }
  return f;
}
#elif defined(MOECAP_ARM64)
#if defined(__APPLE__)
bool sysctl_flag(const char* name) {
  int v = 0;
  size_t n = sizeof v;
  return sysctlbyname(name, &v, &n, nullptr, 0) == 0 && v != 0;
}
#endif

CpuFeatures detect() {
  CpuFeatures f;
  f.neon = true;  // Advanced SIMD and the fp16 conversions are part of every AArch64 CPU
#if defined(__linux__)
  // The bits of the Linux arm64 hwcap ABI (asm/hwcap.h), spelled out for older libc headers.
  const unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
  f.dotprod = hw & (1ul << 20);  // HWCAP_ASIMDDP
  f.i8mm = hw2 & (1ul << 13);    // HWCAP2_I8MM
  f.bf16 = hw2 & (1ul << 14);    // HWCAP2_BF16
#elif defined(__APPLE__)
  f.dotprod = sysctl_flag("hw.optional.arm.FEAT_DotProd");
  f.bf16 = sysctl_flag("hw.optional.arm.FEAT_BF16");
  f.i8mm = sysctl_flag("hw.optional.arm.FEAT_I8MM");
#endif
  return f;
}
#else
CpuFeatures detect() { return CpuFeatures(); }
#endif

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
         f.avx512vnni && f.avx512vbmi;
}

bool cpu_prefetch_t1_skips_l1() {
  // Zen 4, AMD's first core with AVX-512F, is also its first whose prefetcht1 fills L2 alone.
  const auto& f = features();
  return f.intel || (f.amd && f.avx512f);
}

bool cpu_has_neon() { return features().neon; }
bool cpu_has_neon_dotprod() { return features().neon && features().dotprod; }
bool cpu_has_neon_bf16() { return features().neon && features().bf16; }
bool cpu_has_neon_i8mm() { return features().neon && features().i8mm; }

bool isa_name_known(const char* name) {
  for (const char* n : kIsaNames)
    if (std::strcmp(name, n) == 0) return true;
  return false;
}

int supported_isas(const char* out[4]) {
  int n = 0;
  if (cpu_has_avx512()) out[n++] = "avx512";
  if (cpu_has_avx2()) out[n++] = "avx2";
  if (cpu_has_neon()) out[n++] = "neon";
  out[n++] = "generic";
  return n;
}

const char* isa_lacks(const char* name) {
  if (std::strcmp(name, "avx512") == 0) return cpu_has_avx512() ? nullptr : "AVX-512 F/BW/VL/DQ/BF16/VNNI";
  if (std::strcmp(name, "avx2") == 0) return cpu_has_avx2() ? nullptr : "AVX2/FMA/F16C";
  if (std::strcmp(name, "neon") == 0) return cpu_has_neon() ? nullptr : "arm64 NEON";
  return nullptr;
}

std::string isa_names_text() {
  std::string s;
  for (const char* n : kIsaNames) s += (s.empty() ? "" : ", ") + std::string(n);
  return s;
}

std::string supported_isas_text() {
  const char* isas[4];
  const int n = supported_isas(isas);
  std::string s;
  for (int i = 0; i < n; ++i) s += (i ? ", " : "") + std::string(isas[i]);
  return s;
}

void check_isa_runs(const std::string& isa, const char* what) {
  if (isa.empty() || isa == "auto") return;
  if (!isa_name_known(isa.c_str()))
    throw_option(std::string(what) + " must be one of " + isa_names_text() + ", got '" + isa + "'");
  if (const char* lacks = isa_lacks(isa.c_str()))
    throw_option(std::string(what) + " '" + isa + "' needs " + lacks +
                 ", which this CPU lacks; it runs: " + supported_isas_text());
}

}  // namespace moecap
