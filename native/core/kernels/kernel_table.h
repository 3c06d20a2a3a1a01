// The per-ISA kernel entry points, chosen once at load time from cpuid on x86-64 and from the
// hwcaps (Linux) or sysctl (macOS) on arm64 (cpu_features.cc, isa_select.cc). Each ISA lives in its own
// translation units compiled with their own flags, so one binary runs on any CPU of its
// architecture and uses the best the CPU has.
#pragma once

#include <string>

#include "kernels/linear_job.h"

namespace moecap {

// Quantises one activation row of K floats into the int8/int4/mxfp4 kernels' format
// (weights/activation_rows.h: per 32-block fp32 scale, int32 sum, int8 values).
using QuantRowFn = void (*)(const float* x, int K, void* out);

struct KernelTable {
  const char* isa;       // "avx512", "avx2", "neon" or "generic"
  LinearFn linear[6];    // indexed by DType (weights/dtype.h; isa_select.cc checks the count)
  QuantRowFn quant_row;  // activation rows for int8, int4, mxfp4 (once per token and per h row)
};

const KernelTable& generic_kernels();
const KernelTable& avx2_kernels();
const KernelTable& avx512_kernels();
const KernelTable& neon_kernels();  // arm64 only; its entries follow the optional features below

// The ISA names MOECAP_ISA / `isa` accept: the one list (lib/types.ts mirrors it as ISA_NAMES).
inline constexpr const char* kIsaNames[] = {"auto", "avx512", "avx2", "neon", "generic"};
bool isa_name_known(const char* name);
std::string isa_names_text();  // "auto, avx512, avx2, neon, generic"
// The ISAs this CPU runs, best first (at most 4; returns the count), for checks and info().
int supported_isas(const char* out[4]);
std::string supported_isas_text();  // e.g. "avx512, avx2, generic"
// What the CPU lacks for a named kernel set ("AVX2/FMA/F16C", ...), or null when it runs it.
const char* isa_lacks(const char* name);
// Throws ERR_INVALID_OPTION naming `what` (e.g. "isa", "MOECAP_ISA") for an unknown name or an
// ISA this CPU cannot run (saying which ones it runs); "" and "auto" pass.
void check_isa_runs(const std::string& isa, const char* what);

// The best table for this CPU ("" or "auto"), or the named one; check_isa_runs() refusals.
const KernelTable& select_kernels(const std::string& requested, const char* what);

bool cpu_has_avx512();        // avx512f+bw+vl+dq+bf16+vnni, the set our avx512 TU is built for
bool cpu_has_avx2();          // avx2+fma+f16c
bool cpu_has_neon();          // arm64: Advanced SIMD with fp16 conversion (every AArch64 CPU)
bool cpu_has_neon_dotprod();  // arm64 FEAT_DotProd (sdot/udot)
bool cpu_has_neon_bf16();     // arm64 FEAT_BF16 (bfdot/bfmmla)
bool cpu_has_neon_i8mm();     // arm64 FEAT_I8MM (smmla)
// x86: prefetcht1 fills L2 without L1 (Intel; AMD from Zen 4, its first cores with AVX-512F).
// Earlier AMD cores fill L1 for every hint, so a far prefetch there would crowd L1.
bool cpu_prefetch_t1_skips_l1();

}  // namespace moecap
