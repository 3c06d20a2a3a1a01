// calibrate/ names the x86 ceiling loops by ISA; off x86 no kernel table carries those names, so
// they are never asked for there. These definitions only satisfy the link (the portable loops).
#include "kernels/peak_loops.h"

#if !(defined(__x86_64__) || defined(_M_X64))
namespace moecap {
const PeakLoops& avx2_peak_loops() { return generic_peak_loops(); }
const PeakLoops& avx512_peak_loops() { return generic_peak_loops(); }
}  // namespace moecap
#endif
