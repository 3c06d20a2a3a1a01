// Picks the kernel table: the best this CPU runs, or the one MOECAP_ISA / the `isa` option names.
// Each architecture's tables are only compiled, and referenced, on that architecture.
#include <cstring>
#include <string>

#include "error.h"
#include "kernels/kernel_table.h"
#include "weights/dtype.h"

#if defined(__x86_64__) || defined(_M_X64)
#define MOECAP_X86 1
#elif defined(__aarch64__) || defined(_M_ARM64)
#define MOECAP_ARM64 1
#endif

namespace moecap {
static_assert(sizeof(KernelTable::linear) / sizeof(LinearFn) == kDTypeCount, "one kernel per DType");
namespace {

const KernelTable& best_kernels() {
#if defined(MOECAP_X86)
  if (cpu_has_avx512()) return avx512_kernels();
  if (cpu_has_avx2()) return avx2_kernels();
#elif defined(MOECAP_ARM64)
  if (cpu_has_neon()) return neon_kernels();
#endif
  return generic_kernels();
}

// The table of a named ISA this CPU runs (check_isa_runs() has refused the others).
const KernelTable& named_kernels(const std::string& want) {
#if defined(MOECAP_X86)
  if (want == "avx512") return avx512_kernels();
  if (want == "avx2") return avx2_kernels();
#elif defined(MOECAP_ARM64)
  if (want == "neon") return neon_kernels();
#endif
  return generic_kernels();
}

}  // namespace

const KernelTable& select_kernels(const std::string& requested, const char* what) {
  check_isa_runs(requested, what);
  if (requested.empty() || requested == "auto") return best_kernels();
  return named_kernels(requested);
}

}  // namespace moecap
