#include "kernels/avx512/linear_avx512.h"
#include "kernels/kernel_table.h"

namespace moecap {

const KernelTable& avx512_kernels() {
  const KernelTable& g = generic_kernels();
  static const KernelTable t = {"avx512", {avx512::linear_f32, g.linear[1], g.linear[2], g.linear[3]}};
  return t;
}

}  // namespace moecap
