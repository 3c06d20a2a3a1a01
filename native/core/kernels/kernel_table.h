// The per-ISA kernel entry points, chosen once at load time from cpuid on x86-64 and from the
// hwcaps (Linux) or sysctl (macOS) on arm64 (see isa_select.cc). Each ISA lives in its own
// translation units compiled with their own flags, so one binary runs on any CPU of its
// architecture and uses the best the CPU has.
#pragma once

#include "kernels/linear_job.h"

namespace moecap {

// Quantises one activation row of K floats into the int8/int4 kernels' format
// (weights/activation_rows.h: per 32-block fp32 scale, int32 sum, int8 values).
using QuantRowFn = void (*)(const float* x, int K, void* out);

struct KernelTable {
  const char* isa;          // "avx512", "avx2", "neon" or "generic"
  LinearFn linear[4];       // indexed by DType
  QuantRowFn quant_row;     // activation rows for int8 and int4 (once per token and per h row)
};

const KernelTable& generic_kernels();
const KernelTable& avx2_kernels();
const KernelTable& avx512_kernels();
const KernelTable& neon_kernels();  // arm64 only; its entries follow the optional features below

// Best table for this CPU, or the one forced by MOECAP_ISA (never above what the CPU has).
// `reason` explains a refused override.
const KernelTable& select_kernels(const char* requested, const char** note);
// The ISA names MOECAP_ISA / `isa` accept ("auto", "avx512", "avx2", "neon", "generic"), and the
// ones this CPU runs, best first (at most 4; returns the count), for argument checks and info().
bool isa_name_known(const char* name);
int supported_isas(const char* out[4]);
bool cpu_has_avx512();  // avx512f+bw+vl+dq+bf16+vnni, the set our avx512 TU is built for
bool cpu_has_avx2();    // avx2+fma+f16c
bool cpu_has_neon();           // arm64: Advanced SIMD with fp16 conversion (every AArch64 CPU)
bool cpu_has_neon_dotprod();   // arm64 FEAT_DotProd (sdot/udot)
bool cpu_has_neon_bf16();      // arm64 FEAT_BF16 (bfdot/bfmmla)
bool cpu_has_neon_i8mm();      // arm64 FEAT_I8MM (smmla)

}  // namespace moecap
