// The expert-parallel pass of a rank whose experts live on its GPU (the CUDA backend): route and
// plan on the device, rows exchanged through host memory over the transport, the received rows
// computed by the same expert kernels, results back, shared expert and combine on the device.
#pragma once
#include "backend/cuda_layer.h"
#include "ep/ep_pass_stats.h"
#include "ep/expert_placement.h"
#include "ep/expert_transport.h"
#include "layer/forward_result.h"

namespace moecap {

// Collective (every rank calls it, T may be 0). Bitwise the single-process CUDA layer's output for
// the same tokens: every rank learns the pass's total tokens first and runs each kernel as a
// single-process pass of that many tokens would (cuda_abi.h: moecap_cuda_layer_ep_*), an expert's
// rows are computed row by row by the same kernel, and the combine sums the same values in the
// same order. Throws ERR_INVALID_OPTION for offload or a capacity factor (not supported yet).
void cuda_forward_ep(CudaLayer& layer, const float* x, int T, ForwardResult& out, ExpertTransport& tr,
                     const ExpertPlacement& pl, EpPassStats& st);

}  // namespace moecap
