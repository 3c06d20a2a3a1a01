// Combine: each output element sums its token's expert rows in a fixed order (choices j = 0..k-1,
// then the shared expert), in fp32 — the CPU core's order, and independent of the batch.
#include "kernels.h"

namespace moecap_cuda {
namespace {

__global__ void combine_kernel(const float* __restrict__ out_rows, const int32_t* __restrict__ token_slot,
                               const int* __restrict__ offsets, int T, int k, int H, int E, bool shared,
                               float* __restrict__ y) {
  const int t = blockIdx.y;
  const int h = blockIdx.x * blockDim.x + threadIdx.x;
  if (h >= H) return;
  float acc = 0.0f;
  for (int j = 0; j < k; ++j) {
    const int s = token_slot[size_t(t) * k + j];
    if (s >= 0) acc += out_rows[size_t(s) * H + h];
  }
  if (shared) acc += out_rows[size_t(offsets[E] + t) * H + h];
  y[size_t(t) * H + h] = acc;
}

}  // namespace

void launch_combine(const float* out_rows, const int32_t* token_slot, const int* offsets, int T, int k, int H, int E,
                    bool shared, float* y, cudaStream_t s) {
  if (T <= 0) return;
  combine_kernel<<<dim3(ceil_div(H, 256), T), 256, 0, s>>>(out_rows, token_slot, offsets, T, k, H, E, shared, y);
}

}  // namespace moecap_cuda
