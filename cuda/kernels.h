// Launchers of the CUDA kernels (one .cu per concept). Host code (backend_cuda.cc and the
// self-test) calls only these; every launcher is asynchronous on `stream`.
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>

#include "moe_index.h"

namespace moecap_cuda {

// ---- router_topk.cu ----
struct RouterArgs {
  int tokens = 0, hidden = 0, experts = 0, top_k = 0;
  int scoring = 0;           // 0 softmax, 1 sigmoid, 2 sparsemixer (top-2; MOECAP_CUDA_* values)
  float jitter_eps = 0.01f;  // sparsemixer's mask threshold
  int renormalize = 1;
  float scaling = 1.0f;
  const float* bias = nullptr;        // device [E] or null: selection bias
  const float* logit_bias = nullptr;  // device [E] or null: added to the logits (gpt-oss router bias)
  int group_count = 0, group_keep = 0;
  int group_max = 0;     // groups scored by their best expert, else by their top-2 sum
  int shared_gated = 0;  // logits row has E+1 entries, the last is the shared-expert gate
};
// logits[t][j] = x[t]·w[j] in fp32 for j < rows (rows = E, or E+1 with the shared gate), row stride ld.
void launch_router_logits(const float* x, const float* w, int T, int H, int rows, float* logits, int ld,
                          cudaStream_t s);
// One warp per token: scores, bias, grouped top-k (dropped groups' experts score 0.0), k rounds of warp argmax (lower
// index wins ties), renormalise, scale. shared_gate [T] gets sigmoid(logit E) when gated, else 1.
void launch_router_topk(const float* logits, int ld, const RouterArgs& a, int32_t* ids, float* weights,
                        float* shared_gate, cudaStream_t s);

// ---- align_permute.cu ----
// The routing plan on the device. Segments 0..E-1 are the routed experts, segment E the shared
// expert (all T tokens, when present). Rows are padded per segment to `block`.
struct PlanDev {
  int* counts;          // [E+1] kept rows per segment
  int* offsets;         // [E+2] padded segment starts; offsets[E+1] = total rows
  int* active;          // [E+1] non-empty segments in ascending order
  int* scalars;         // [4]: n_active, distinct routed experts, dropped, total rows
  int* scratch;         // [plan_scratch_ints(T, k, E)]
  int32_t* token_slot;  // [T·k] row of (t, j) or -1 when dropped
  int32_t* slot_token;  // [rows] token of each row or -1 (padding)
  float* slot_scale;    // [rows] router weight (shared gate for the shared segment), 0 for padding
};
size_t plan_scratch_ints(int T, int k, int E);
size_t plan_rows_bound(int T, int k, int E, int block, bool shared);
enum PlanScalar { kNActive = 0, kDistinct = 1, kDropped = 2, kTotalRows = 3 };
// Counting sort (histogram, scan, stable scatter) with capacity; T == 1 and block == 1 take a
// one-warp path with no sort.
void launch_build_plan(const int32_t* ids, const float* weights, const float* shared_gate, int T, int k, int E,
                       int64_t capacity, int block, bool shared, const PlanDev& p, cudaStream_t s);

// ---- expert_gemm.cu ----
// fp32 rows [rows][ld_in] → activation rows of `dtype` (act_row_bytes(dtype, K) apart), K padded
// with zeros. When `total` is non-null only rows < *total are converted.
void launch_make_act_rows(int dtype, const float* in, int ld_in, int rows, int K, uint8_t* out, const int* total,
                          cudaStream_t s);

struct ExpertArgs {
  int dtype = 0;
  int E = 0, H = 0, F = 0, Fs = 0;       // Fs: shared expert width (0 = none)
  int max_rows_per_seg = 0;              // T (bounds the SIMT kernel's row loop)
  const uint8_t* const* wptr = nullptr;  // [E+1] device pointers to expert blobs (E = shared)
  const int* counts = nullptr;
  const int* offsets = nullptr;
  const int* active = nullptr;
  const int* scalars = nullptr;
  int fixed_seg = -1;     // ≥ 0: run only this segment (offload waves)
  int grid_segments = 0;  // launch width in segments (upper bound of n_active)
  const int32_t* slot_token = nullptr;
  const float* slot_scale = nullptr;
  const uint8_t* x_act = nullptr;  // [T] activation rows of x (act_row_bytes(dtype, H) apart)
  uint8_t* h_act = nullptr;        // [rows] intermediate rows in the dtype's format (stride h_stride)
  size_t h_stride = 0;
  float* h_f32 = nullptr;  // [rows][Fpmax] fp32 intermediate (int8/int4 only)
  float* out = nullptr;    // [rows][H] fp32, router weight applied
  int rows_bound = 0;      // rows the workspace holds
  // Expert variants of the routed experts (segments < E; the shared expert is plain SwiGLU), as
  // in the CPU core's layer_config.h: biases [E][F] / [E][F] / [E][H] (device, or null),
  // clamped SwiGLU when clamp_limit > 0, and the routing score applied to the input (Llama 4).
  const float* gate_bias = nullptr;
  const float* up_bias = nullptr;
  const float* down_bias = nullptr;
  float clamp_limit = 0.0f, alpha = 1.0f;
  int score_on_input = 0;
  int tensor_variant = 0;  // 0: 8-warp 64×128 tiles, 1: basic 4-warp 64×64 tiles
};
MOECAP_HD int fp_max(const ExpertArgs& a) {
  const int f = padded_k(a.F), fs = a.Fs > 0 ? padded_k(a.Fs) : 0;
  return f > fs ? f : fs;
}
// SIMT path (any dtype, decode): one warp per output row streams the weights once per up to
// 16 rows of the segment. gate/up with SwiGLU, then down with the router weight in the epilogue.
void launch_experts_simt(const ExpertArgs& a, int T, cudaStream_t s);
// Tensor-core path (bf16 only, prefill): grouped GEMM over block-padded segments (kTensorBM rows),
// wmma bf16 → fp32; tensor_variant picks the tile shape.
constexpr int kTensorBM = 64;
void launch_experts_tensor(const ExpertArgs& a, cudaStream_t s);

// ---- combine.cu ----
// y[t] = Σ_j out[token_slot[t,j]] (j = 0..k-1, skipping dropped) + out[offsets[E] + t] (shared),
// summed in that fixed order in fp32.
void launch_combine(const float* out_rows, const int32_t* token_slot, const int* offsets, int T, int k, int H, int E,
                    bool shared, float* y, cudaStream_t s);

}  // namespace moecap_cuda
