#include "kernels/avx512/linear_avx512.h"
#include "kernels/kernel_table.h"

namespace moecap {

const KernelTable& avx512_kernels() {
  static const KernelTable t = {"avx512",
                                {avx512::linear_f32, avx512::linear_bf16, avx512::linear_int8, avx512::linear_int4,
                                 avx512::linear_mxfp4, avx512::linear_fp8},
                                avx512::quant_row};
  return t;
}

}  // namespace moecap
