// libmoecap_cuda.so: the C ABI of native/core/backend/cuda_abi.h over the kernels of this folder.
// One forward = copy x in → router logits → top-k → routing plan → activation rows → experts
// (SIMT decode or tensor-core prefill; per expert in copy order when offloaded) → combine →
// copy out, all on one stream, timed with CUDA events, one synchronisation at the end.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "backend/cuda_abi.h"
#include "error.h"
#include "kernels.h"
#include "layer_config.h"
#include "offload.h"
#include "abi_error.h"
#include "backend/gpu_weight_pack.h"
#include "weights/weight_source.h"

using namespace moecap_cuda;

namespace {

thread_local std::string g_last_error;

struct CudaError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw CudaError(std::string(what) + ": " + cudaGetErrorString(e));
}

template <class T>
T* dev_alloc(size_t n, const char* what) {
  void* p = nullptr;
  check(cudaMalloc(&p, std::max<size_t>(n, 1) * sizeof(T)), what);
  return static_cast<T*>(p);
}

moecap::LayerConfig to_layer_config(const moecap_cuda_config_t& c) {
  moecap::LayerConfig l;
  l.hidden = c.hidden;
  l.intermediate = c.intermediate;
  l.experts = c.experts;
  l.top_k = c.top_k;
  l.scoring = c.scoring == MOECAP_CUDA_SIGMOID       ? moecap::Scoring::Sigmoid
              : c.scoring == MOECAP_CUDA_SPARSEMIXER ? moecap::Scoring::SparseMixer
                                                     : moecap::Scoring::Softmax;
  l.jitter_eps = c.jitter_eps;
  l.renormalize = c.renormalize != 0;
  l.routed_scaling_factor = c.routed_scaling_factor;
  if (c.selection_bias) l.selection_bias.assign(c.selection_bias, c.selection_bias + c.experts);
  l.group_count = c.group_count;
  l.group_keep = c.group_keep;
  l.group_score = c.group_score == MOECAP_CUDA_GROUP_MAX ? moecap::GroupScore::Max : moecap::GroupScore::Top2Sum;
  l.shared_intermediate = c.shared_intermediate;
  l.shared_gated = c.shared_gated != 0;
  l.capacity_factor = c.capacity_factor;
  l.dtype = moecap::DType(c.dtype);
  const size_t EF = size_t(c.experts) * size_t(c.intermediate), EH = size_t(c.experts) * size_t(c.hidden);
  if (c.router_bias) l.router_bias.assign(c.router_bias, c.router_bias + c.experts);
  if (c.gate_bias) l.gate_bias.assign(c.gate_bias, c.gate_bias + EF);
  if (c.up_bias) l.up_bias.assign(c.up_bias, c.up_bias + EF);
  if (c.down_bias) l.down_bias.assign(c.down_bias, c.down_bias + EH);
  l.swiglu_limit = c.swiglu_limit;
  l.swiglu_alpha = c.swiglu_alpha > 0 ? c.swiglu_alpha : 1.0f;
  l.score_on_input = c.score_on_input != 0;
  return l;
}

// Master weights from the caller's HF-layout arrays.
struct ArrayWeights : moecap::WeightSource {
  moecap_cuda_weights_t w;
  int H, F, Fs;
  // Only used to pack device copies; never written to an offload file, so no identity is needed.
  uint64_t fingerprint() const override { return 0; }
  void row(moecap::Matrix m, int e, int r, int cols, float* out) const override {
    const float* src = nullptr;
    switch (m) {
      case moecap::Matrix::Router: src = w.router + size_t(r) * H; break;
      case moecap::Matrix::Gate: src = w.gate + (size_t(e) * F + r) * H; break;
      case moecap::Matrix::Up: src = w.up + (size_t(e) * F + r) * H; break;
      case moecap::Matrix::Down: src = w.down + (size_t(e) * H + r) * F; break;
      case moecap::Matrix::SharedGate: src = w.shared_gate + size_t(r) * H; break;
      case moecap::Matrix::SharedUp: src = w.shared_up + size_t(r) * H; break;
      case moecap::Matrix::SharedDown: src = w.shared_down + size_t(r) * Fs; break;
      case moecap::Matrix::SharedGateWeight: src = w.shared_gate_weight; break;
    }
    std::memcpy(out, src, sizeof(float) * size_t(cols));
  }
};

}  // namespace

struct moecap_cuda_layer {
  moecap_cuda_config_t cfg{};
  int E = 0, H = 0, F = 0, Fs = 0, k = 0, dt = 0, max_T = 0, router_rows = 0, ld_logits = 0;
  bool shared = false;
  int tensor_min = 32;
  cudaStream_t stream = nullptr;
  cudaEvent_t ev[5] = {};
  double device_bytes = 0;
  size_t blob_bytes = 0, shared_blob_bytes = 0;
  // weights
  float* router = nullptr;  // [router_rows][H]
  float* bias = nullptr;
  // expert variants (device copies, or null)
  float *router_bias = nullptr, *gate_bias = nullptr, *up_bias = nullptr, *down_bias = nullptr;
  std::vector<uint8_t*> blobs;    // resident device blobs [E+1] (E = shared), empty entries when offloaded
  uint8_t** wptr = nullptr;       // device [E+1]
  uint8_t** wptr_host = nullptr;  // pinned [E+1]
  std::unique_ptr<ExpertStore> store;
  // workspace
  float *x = nullptr, *logits = nullptr, *rw = nullptr, *sg = nullptr, *h_f32 = nullptr, *out_rows = nullptr,
        *y = nullptr;
  int32_t* ids = nullptr;
  PlanDev plan{};
  uint8_t *x_act = nullptr, *h_act = nullptr;
  size_t h_stride = 0;
  int rows_bound = 0;
  std::vector<int32_t> host_counts;
  int host_scalars[4] = {0, 0, 0, 0};
  // Expert parallelism: the last ep_route's tokens and plan rows on the host, and the workspace
  // of ep_compute (its own plan and rows, grown on demand, so the routed pass's plan survives).
  int ep_T = -1;
  std::vector<int32_t> ep_token_slot;
  int ep_routed_rows = 0;  // offsets[E]: rows of the routed segments in the local plan
  struct EpWork {
    PlanDev plan{};
    uint8_t *x_act = nullptr, *h_act = nullptr;
    float *h_f32 = nullptr, *out = nullptr;
    int rows_cap = 0;
    void release() {
      for (void* p :
           {(void*)plan.counts, (void*)plan.offsets, (void*)plan.active, (void*)plan.scalars, (void*)plan.slot_token,
            (void*)plan.slot_scale, (void*)x_act, (void*)h_act, (void*)h_f32, (void*)out})
        if (p) cudaFree(p);
      *this = EpWork();
    }
  } epw;

  ~moecap_cuda_layer() {
    if (stream) cudaStreamSynchronize(stream);
    store.reset();
    epw.release();
    for (void* p : {(void*)router,
                    (void*)bias,
                    (void*)router_bias,
                    (void*)gate_bias,
                    (void*)up_bias,
                    (void*)down_bias,
                    (void*)wptr,
                    (void*)x,
                    (void*)logits,
                    (void*)rw,
                    (void*)sg,
                    (void*)h_f32,
                    (void*)out_rows,
                    (void*)y,
                    (void*)ids,
                    (void*)plan.counts,
                    (void*)plan.offsets,
                    (void*)plan.active,
                    (void*)plan.scalars,
                    (void*)plan.scratch,
                    (void*)plan.token_slot,
                    (void*)plan.slot_token,
                    (void*)plan.slot_scale,
                    (void*)x_act,
                    (void*)h_act})
      if (p) cudaFree(p);
    for (uint8_t* b : blobs)
      if (b) cudaFree(b);
    if (wptr_host) cudaFreeHost(wptr_host);
    for (auto e : ev)
      if (e) cudaEventDestroy(e);
    if (stream) cudaStreamDestroy(stream);
  }

  void create(const moecap_cuda_config_t& c, const moecap_cuda_weights_t& w) {
    cfg = c;
    moecap::validate_config(to_layer_config(c));
    if (c.dtype < 0 || c.dtype >= kGpuDTypes) moecap::throw_range("dtype must be f32, bf16, int8, int4, mxfp4 or fp8");
    if (c.scoring < MOECAP_CUDA_SOFTMAX || c.scoring > MOECAP_CUDA_SPARSEMIXER)
      moecap::throw_range("scoring must be MOECAP_CUDA_SOFTMAX, _SIGMOID or _SPARSEMIXER");
    if (c.experts > 1024) moecap::throw_range("experts must be at most 1024 for the CUDA router");
    if (c.group_count > 32) moecap::throw_range("groups.count must be at most 32 for the CUDA router");
    if (c.group_score != MOECAP_CUDA_GROUP_TOP2_SUM && c.group_score != MOECAP_CUDA_GROUP_MAX)
      moecap::throw_range("group_score must be MOECAP_CUDA_GROUP_TOP2_SUM or _MAX (groups.score 'top2-sum' or 'max')");
    if (c.max_tokens <= 0) moecap::throw_range("maxTokens must be a positive integer");
    if (c.offload && c.cache_slots <= 0) moecap::throw_range("offload needs cacheSlots >= 1");
    if (c.cache_policy < MOECAP_CUDA_LRU || c.cache_policy > MOECAP_CUDA_STATIC)
      moecap::throw_range(
          "cache_policy must be MOECAP_CUDA_LRU, _LFU, _LFRU or _STATIC (lru, lfu, lfru, static), got " +
          std::to_string(c.cache_policy));
    if (c.held && c.offload) moecap::throw_range("held (an expert-parallel share) does not work with offload yet");
    if (c.expert_path < 0 || c.expert_path > MOECAP_CUDA_PATH_TENSOR_BASIC)
      moecap::throw_range("expertPath is not a MOECAP_CUDA_PATH_* value");
    E = c.experts, H = c.hidden, F = c.intermediate, Fs = c.shared_intermediate, k = c.top_k, dt = c.dtype;
    max_T = c.max_tokens;
    shared = Fs > 0;
    tensor_min = c.tensor_min_tokens > 0 ? c.tensor_min_tokens : 32;
    router_rows = E + (shared && c.shared_gated ? 1 : 0);
    ld_logits = router_rows;
    check(cudaSetDevice(c.device), "cudaSetDevice");
    check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
    for (auto& e : ev) check(cudaEventCreate(&e), "cudaEventCreate");

    const int threads = c.host_threads > 0 ? c.host_threads : int(std::max(1u, std::thread::hardware_concurrency()));
    std::unique_ptr<moecap::WeightSource> src;
    if (w.use_seed) {
      src.reset(new moecap::SeededWeights(w.seed));
    } else {
      // Pre-packed experts (experts_packed, shared_packed) stand in for their fp32 masters.
      if (!w.router || (!w.experts_packed && (!w.gate || !w.up || !w.down)))
        moecap::throw_type("weights: router, and gate, up and down (or experts_packed) are required");
      if (shared && !w.shared_packed && (!w.shared_gate || !w.shared_up || !w.shared_down))
        moecap::throw_type("weights: the shared expert needs sharedGate, sharedUp and sharedDown (or shared_packed)");
      if (shared && c.shared_gated && !w.shared_gate_weight)
        moecap::throw_type("weights: sharedGateWeight is required");
      auto* a = new ArrayWeights();
      a->w = w;
      a->H = H, a->F = F, a->Fs = Fs;
      src.reset(a);
    }

    // Router (fp32 rows, + the shared gate row) and bias.
    std::vector<float> host(size_t(router_rows) * H);
    for (int e = 0; e < E; ++e) src->row(moecap::Matrix::Router, 0, e, H, host.data() + size_t(e) * H);
    if (router_rows > E) src->row(moecap::Matrix::SharedGateWeight, 0, 0, H, host.data() + size_t(E) * H);
    router = dev_alloc<float>(host.size(), "cudaMalloc(router)");
    check(cudaMemcpy(router, host.data(), host.size() * 4, cudaMemcpyHostToDevice), "cudaMemcpy(router)");
    device_bytes += double(host.size()) * 4;
    if (c.selection_bias) {
      bias = dev_alloc<float>(size_t(E), "cudaMalloc(bias)");
      check(cudaMemcpy(bias, c.selection_bias, size_t(E) * 4, cudaMemcpyHostToDevice), "cudaMemcpy(bias)");
    }
    // Expert variants: small, always resident (offload moves only the packed experts).
    auto upload = [&](const float* host_v, size_t n, const char* what) -> float* {
      if (!host_v) return nullptr;
      float* d = dev_alloc<float>(n, what);
      check(cudaMemcpy(d, host_v, n * 4, cudaMemcpyHostToDevice), what);
      device_bytes += double(n) * 4;
      return d;
    };
    router_bias = upload(c.router_bias, size_t(E), "cudaMemcpy(router_bias)");
    gate_bias = upload(c.gate_bias, size_t(E) * F, "cudaMemcpy(gate_bias)");
    up_bias = upload(c.up_bias, size_t(E) * F, "cudaMemcpy(up_bias)");
    down_bias = upload(c.down_bias, size_t(E) * H, "cudaMemcpy(down_bias)");

    // Experts: the caller's pre-packed blobs (a checkpoint's stored codes, packed by the core), or
    // packed here on the host (threads); then uploaded, or kept in the offload store.
    blob_bytes = expert_layout(dt, H, F).bytes;
    shared_blob_bytes = shared ? expert_layout(dt, H, Fs).bytes : 0;
    blobs.assign(size_t(E) + 1, nullptr);
    std::vector<uint8_t> staging(std::max(blob_bytes, shared_blob_bytes));
    // Expert e's blob into `out` (blob_bytes): the caller's bytes, or packed from the masters.
    auto routed_blob = [&](int e, uint8_t* out) {
      if (w.experts_packed) std::memcpy(out, w.experts_packed + size_t(e) * blob_bytes, blob_bytes);
      else pack_expert(dt, *src, moecap::Matrix::Gate, moecap::Matrix::Up, moecap::Matrix::Down, e, H, F, out, threads);
    };
    if (c.offload) {
      // Static policy: as on the CPU, slots kept for the experts outside the hot set.
      const int slots = std::min(c.cache_slots, E);
      store.reset(new ExpertStore(blob_bytes, E, slots, moecap::CachePolicy(c.cache_policy),
                                  moecap::static_stream_slots(k, slots)));
      for (int e = 0; e < E; ++e) routed_blob(e, store->host_blob(e));
      device_bytes += store->device_bytes();
    } else {
      for (int e = 0; e < E; ++e) {
        if (c.held && !c.held[e]) continue;  // another rank's expert
        routed_blob(e, staging.data());
        blobs[e] = dev_alloc<uint8_t>(blob_bytes, "cudaMalloc(expert weights)");
        check(cudaMemcpy(blobs[e], staging.data(), blob_bytes, cudaMemcpyHostToDevice), "cudaMemcpy(expert)");
        device_bytes += double(blob_bytes);
      }
    }
    if (shared) {  // the shared expert is used by every token: always resident
      if (w.shared_packed) std::memcpy(staging.data(), w.shared_packed, shared_blob_bytes);
      else
        pack_expert(dt, *src, moecap::Matrix::SharedGate, moecap::Matrix::SharedUp, moecap::Matrix::SharedDown, 0, H,
                    Fs, staging.data(), threads);
      blobs[E] = dev_alloc<uint8_t>(shared_blob_bytes, "cudaMalloc(shared expert)");
      check(cudaMemcpy(blobs[E], staging.data(), shared_blob_bytes, cudaMemcpyHostToDevice), "cudaMemcpy(shared)");
      device_bytes += double(shared_blob_bytes);
    }
    check(cudaHostAlloc(reinterpret_cast<void**>(&wptr_host), sizeof(uint8_t*) * (E + 1), cudaHostAllocDefault),
          "cudaHostAlloc(pointer table)");
    for (int e = 0; e <= E; ++e) wptr_host[e] = blobs[e];
    wptr = dev_alloc<uint8_t*>(size_t(E) + 1, "cudaMalloc(pointer table)");
    check(cudaMemcpy(wptr, wptr_host, sizeof(uint8_t*) * (E + 1), cudaMemcpyHostToDevice), "cudaMemcpy(table)");

    // Workspace for max_T tokens (rows padded for the tensor-core path's tiles).
    const int T = max_T;
    rows_bound = int(plan_rows_bound(T, k, E, kTensorBM, shared));
    const int fpm = std::max(padded_k(F), shared ? padded_k(Fs) : 0);
    h_stride = act_row_bytes(dt, fpm);  // = the stride make_act_rows writes h rows at (16-byte multiple)
    double ws = 0;
    auto track = [&](size_t bytes) { ws += double(bytes); };
    x = dev_alloc<float>(size_t(T) * H, "cudaMalloc(x)"), track(size_t(T) * H * 4);
    y = dev_alloc<float>(size_t(T) * H, "cudaMalloc(y)"), track(size_t(T) * H * 4);
    logits = dev_alloc<float>(size_t(T) * ld_logits, "cudaMalloc(logits)");
    ids = dev_alloc<int32_t>(size_t(T) * k, "cudaMalloc(ids)");
    rw = dev_alloc<float>(size_t(T) * k, "cudaMalloc(weights)");
    sg = dev_alloc<float>(size_t(T), "cudaMalloc(shared gate)");
    plan.counts = dev_alloc<int>(size_t(E) + 1, "cudaMalloc(plan)");
    plan.offsets = dev_alloc<int>(size_t(E) + 2, "cudaMalloc(plan)");
    plan.active = dev_alloc<int>(size_t(E) + 1, "cudaMalloc(plan)");
    plan.scalars = dev_alloc<int>(4, "cudaMalloc(plan)");
    plan.scratch = dev_alloc<int>(plan_scratch_ints(T, k, E), "cudaMalloc(plan scratch)");
    plan.token_slot = dev_alloc<int32_t>(size_t(T) * k, "cudaMalloc(plan)");
    plan.slot_token = dev_alloc<int32_t>(size_t(rows_bound), "cudaMalloc(plan)");
    plan.slot_scale = dev_alloc<float>(size_t(rows_bound), "cudaMalloc(plan)");
    x_act = dev_alloc<uint8_t>(size_t(T) * act_row_bytes(dt, H), "cudaMalloc(x rows)");
    track(size_t(T) * act_row_bytes(dt, H));
    h_act = dev_alloc<uint8_t>(size_t(rows_bound) * h_stride, "cudaMalloc(h rows)");
    track(size_t(rows_bound) * h_stride);
    check(cudaMemset(h_act, 0, size_t(rows_bound) * h_stride), "cudaMemset(h rows)");
    if (act_dtype(dt) == kI8) {  // h is re-encoded as int8 rows for the down projection
      h_f32 = dev_alloc<float>(size_t(rows_bound) * fpm, "cudaMalloc(h fp32)");
      track(size_t(rows_bound) * fpm * 4);
    }
    out_rows = dev_alloc<float>(size_t(rows_bound) * H, "cudaMalloc(expert outputs)");
    track(size_t(rows_bound) * H * 4);
    device_bytes += ws;
    host_counts.resize(size_t(E) + 1);
  }

  ExpertArgs expert_args(int T) const {
    ExpertArgs a;
    a.dtype = dt;
    a.E = E, a.H = H, a.F = F, a.Fs = Fs;
    a.max_rows_per_seg = T;
    a.wptr = wptr;
    a.counts = plan.counts;
    a.offsets = plan.offsets;
    a.active = plan.active;
    a.scalars = plan.scalars;
    a.grid_segments = std::min(E, T * k) + (shared ? 1 : 0);
    a.slot_token = plan.slot_token;
    a.slot_scale = plan.slot_scale;
    a.x_act = x_act;
    a.h_act = h_act;
    a.h_stride = h_stride;
    a.h_f32 = h_f32;
    a.out = out_rows;
    a.rows_bound = int(plan_rows_bound(T, k, E, kTensorBM, shared));
    a.tensor_variant = cfg.expert_path == MOECAP_CUDA_PATH_TENSOR_BASIC ? 1 : 0;
    a.gate_bias = gate_bias, a.up_bias = up_bias, a.down_bias = down_bias;
    a.clamp_limit = cfg.swiglu_limit;
    a.alpha = cfg.swiglu_alpha > 0 ? cfg.swiglu_alpha : 1.0f;
    a.score_on_input = cfg.score_on_input;
    return a;
  }

  void run_experts(const ExpertArgs& a, int T, bool tensor) {
    if (tensor) launch_experts_tensor(a, stream);
    else launch_experts_simt(a, T, stream);
  }

  void forward(const float* hx, int T, float* hy, int32_t* hids, float* hw, moecap_cuda_stats_t* st) {
    if (T <= 0 || T > max_T)
      moecap::throw_range("x: tokens must be in [1, " + std::to_string(max_T) + "] (maxTokens), got " +
                          std::to_string(T));
    check(cudaSetDevice(cfg.device), "cudaSetDevice");
    const bool tensor = dt == kBF16 && (cfg.expert_path == MOECAP_CUDA_PATH_TENSOR ||
                                        cfg.expert_path == MOECAP_CUDA_PATH_TENSOR_BASIC ||
                                        (cfg.expert_path == MOECAP_CUDA_PATH_AUTO && T >= tensor_min));
    const int block = tensor ? kTensorBM : 1;
    const int64_t cap = capacity_for(cfg.capacity_factor, T, k, E);
    check(cudaMemcpyAsync(x, hx, size_t(T) * H * 4, cudaMemcpyHostToDevice, stream), "cudaMemcpyAsync(x)");
    check(cudaEventRecord(ev[0], stream), "cudaEventRecord");  // times exclude the x / y transfers
    launch_router_logits(x, router, T, H, router_rows, logits, ld_logits, stream);
    RouterArgs ra;
    ra.tokens = T, ra.hidden = H, ra.experts = E, ra.top_k = k;
    ra.scoring = cfg.scoring, ra.renormalize = cfg.renormalize, ra.scaling = cfg.routed_scaling_factor;
    ra.jitter_eps = cfg.jitter_eps;
    ra.bias = bias, ra.group_count = cfg.group_count, ra.group_keep = cfg.group_keep;
    ra.logit_bias = router_bias;
    ra.group_max = cfg.group_score == MOECAP_CUDA_GROUP_MAX;
    ra.shared_gated = router_rows > E;
    launch_router_topk(logits, ld_logits, ra, ids, rw, sg, stream);
    launch_build_plan(ids, rw, sg, T, k, E, cap, block, shared, plan, stream);
    launch_make_act_rows(dt, x, H, T, H, x_act, nullptr, stream);
    check(cudaEventRecord(ev[1], stream), "cudaEventRecord");

    ExpertArgs a = expert_args(T);
    OffloadStats ost;
    if (!store) {
      run_experts(a, T, tensor);
    } else {
      // The host needs the routed experts: one synchronisation, then experts in copy order.
      check(cudaMemcpyAsync(host_counts.data(), plan.counts, sizeof(int) * (E + 1), cudaMemcpyDeviceToHost, stream),
            "cudaMemcpyAsync(counts)");
      check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
      std::vector<int> needed;
      for (int e = 0; e < E; ++e)
        if (host_counts[e] > 0) needed.push_back(e);
      // Waves when the slots are fewer than the experts: each expert's rows go through the same
      // kernel whatever wave it is in, and combine reads them in a fixed order, so the output is
      // bitwise that of the all-resident layer.
      store->run_pass(needed, stream, [&](int e, uint8_t* blob) {
        wptr_host[e] = blob;
        check(cudaMemcpyAsync(wptr + e, wptr_host + e, sizeof(uint8_t*), cudaMemcpyHostToDevice, stream),
              "cudaMemcpyAsync(pointer)");
        a.fixed_seg = e;
        run_experts(a, T, tensor);
      });
      if (shared) {
        a.fixed_seg = E;
        run_experts(a, T, tensor);
      }
    }
    check(cudaEventRecord(ev[2], stream), "cudaEventRecord");
    launch_combine(out_rows, plan.token_slot, plan.offsets, T, k, H, E, shared, y, stream);
    check(cudaEventRecord(ev[3], stream), "cudaEventRecord");
    if (hy) check(cudaMemcpyAsync(hy, y, size_t(T) * H * 4, cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync(y)");
    if (hids)
      check(cudaMemcpyAsync(hids, ids, size_t(T) * k * 4, cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync(ids)");
    if (hw) check(cudaMemcpyAsync(hw, rw, size_t(T) * k * 4, cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync(w)");
    check(cudaMemcpyAsync(host_counts.data(), plan.counts, sizeof(int) * (E + 1), cudaMemcpyDeviceToHost, stream),
          "cudaMemcpyAsync(counts)");
    check(cudaMemcpyAsync(host_scalars, plan.scalars, sizeof host_scalars, cudaMemcpyDeviceToHost, stream),
          "cudaMemcpyAsync(scalars)");
    check(cudaStreamSynchronize(stream), "forward");
    if (store) store->end_pass(ost);
    if (!st) return;
    const size_t size = st->size;
    const bool full = size >= sizeof(moecap_cuda_stats_t);
    int32_t* counts_out = full ? st->expert_counts : nullptr;
    int32_t* resident_out = full ? st->resident : nullptr;
    std::memset(st, 0, std::min(size, sizeof *st));
    st->size = size;
    st->expert_counts = counts_out;
    st->resident = resident_out;
    st->tokens = T;
    st->distinct_experts = host_scalars[kDistinct];
    int64_t kept = 0;
    for (int e = 0; e < E; ++e) kept += host_counts[e];
    st->assignments = kept;
    st->dropped = host_scalars[kDropped];
    st->capacity = cfg.capacity_factor > 0 ? cap : -1;
    st->expert_bytes = double(st->distinct_experts) * double(blob_bytes);
    st->shared_bytes = double(shared_blob_bytes);
    st->router_bytes = double(E) * H * 4;
    st->flops = 2.0 * H * E * T + 6.0 * H * F * double(kept) + 6.0 * H * Fs * double(T);
    float ms = 0;
    cudaEventElapsedTime(&ms, ev[0], ev[3]), st->total_ms = ms;
    cudaEventElapsedTime(&ms, ev[0], ev[1]), st->route_ms = ms;
    cudaEventElapsedTime(&ms, ev[1], ev[2]), st->experts_ms = ms;
    cudaEventElapsedTime(&ms, ev[2], ev[3]), st->combine_ms = ms;
    st->used_tensor_path = tensor;
    st->cache_hits = ost.hits;
    st->cache_misses = ost.misses;
    st->evictions = ost.evictions;
    st->h2d_bytes = ost.h2d_bytes;
    st->h2d_ms = ost.h2d_ms;
    if (full) {
      st->loads = ost.loads;
      st->prefetch_issued = ost.prefetch_issued;
      st->prefetch_used = ost.prefetch_used;
      st->waves = ost.waves;
      if (store && resident_out) {
        const std::vector<int> r = store->table().resident();
        std::copy(r.begin(), r.end(), resident_out);
        st->resident_count = (int)r.size();
      }
    }
    if (counts_out) std::memcpy(counts_out, host_counts.data(), sizeof(int32_t) * E);
  }

  // ---- expert parallelism ----
  bool tensor_for(int global_T) const {
    return dt == kBF16 &&
           (cfg.expert_path == MOECAP_CUDA_PATH_TENSOR || cfg.expert_path == MOECAP_CUDA_PATH_TENSOR_BASIC ||
            (cfg.expert_path == MOECAP_CUDA_PATH_AUTO && global_T >= tensor_min));
  }

  void ep_check(int global_T) const {
    if (store) moecap::throw_range("expert parallelism on the CUDA backend does not work with offload yet");
    if (cfg.capacity_factor > 0) moecap::throw_range("expert parallelism does not work with a capacity factor yet");
    if (global_T <= 0) moecap::throw_range("global_tokens must be positive");
  }

  void ep_route(const float* hx, int T, int global_T, int32_t* hids, float* hw, uint8_t* hx_act) {
    ep_check(global_T);
    if (T < 0 || T > max_T)
      moecap::throw_range("x: tokens must be in [0, " + std::to_string(max_T) + "] (maxTokens), got " +
                          std::to_string(T));
    check(cudaSetDevice(cfg.device), "cudaSetDevice");
    ep_T = T;
    ep_routed_rows = 0;
    ep_token_slot.assign(size_t(T) * k, -1);
    if (T == 0) return;
    // forward()'s first steps, with the plan padded as a pass of global_T tokens pads it.
    const int block = tensor_for(global_T) ? kTensorBM : 1;
    check(cudaMemcpyAsync(x, hx, size_t(T) * H * 4, cudaMemcpyHostToDevice, stream), "cudaMemcpyAsync(x)");
    launch_router_logits(x, router, T, H, router_rows, logits, ld_logits, stream);
    RouterArgs ra;
    ra.tokens = T, ra.hidden = H, ra.experts = E, ra.top_k = k;
    ra.scoring = cfg.scoring, ra.renormalize = cfg.renormalize, ra.scaling = cfg.routed_scaling_factor;
    ra.jitter_eps = cfg.jitter_eps;
    ra.bias = bias, ra.group_count = cfg.group_count, ra.group_keep = cfg.group_keep;
    ra.group_max = cfg.group_score == MOECAP_CUDA_GROUP_MAX;
    ra.shared_gated = router_rows > E;
    launch_router_topk(logits, ld_logits, ra, ids, rw, sg, stream);
    launch_build_plan(ids, rw, sg, T, k, E, capacity_for(0, T, k, E), block, shared, plan, stream);
    launch_make_act_rows(dt, x, H, T, H, x_act, nullptr, stream);
    std::vector<int> offsets(size_t(E) + 2);
    check(cudaMemcpyAsync(hids, ids, size_t(T) * k * 4, cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync(ids)");
    check(cudaMemcpyAsync(hw, rw, size_t(T) * k * 4, cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync(w)");
    check(cudaMemcpyAsync(hx_act, x_act, size_t(T) * act_row_bytes(dt, H), cudaMemcpyDeviceToHost, stream),
          "cudaMemcpyAsync(x rows)");
    check(cudaMemcpyAsync(ep_token_slot.data(), plan.token_slot, size_t(T) * k * 4, cudaMemcpyDeviceToHost, stream),
          "cudaMemcpyAsync(token slots)");
    check(cudaMemcpyAsync(offsets.data(), plan.offsets, sizeof(int) * (E + 2), cudaMemcpyDeviceToHost, stream),
          "cudaMemcpyAsync(offsets)");
    check(cudaStreamSynchronize(stream), "ep_route");
    ep_routed_rows = offsets[size_t(E)];
  }

  void ep_grow(int rows) {
    if (rows <= epw.rows_cap) return;
    epw.release();
    const int cap = std::max(rows, 64);
    const int fpm = std::max(padded_k(F), shared ? padded_k(Fs) : 0);
    epw.plan.counts = dev_alloc<int>(size_t(E) + 1, "cudaMalloc(ep plan)");
    epw.plan.offsets = dev_alloc<int>(size_t(E) + 2, "cudaMalloc(ep plan)");
    epw.plan.active = dev_alloc<int>(size_t(E) + 1, "cudaMalloc(ep plan)");
    epw.plan.scalars = dev_alloc<int>(4, "cudaMalloc(ep plan)");
    epw.plan.slot_token = dev_alloc<int32_t>(size_t(cap), "cudaMalloc(ep plan)");
    epw.plan.slot_scale = dev_alloc<float>(size_t(cap), "cudaMalloc(ep plan)");
    epw.x_act = dev_alloc<uint8_t>(size_t(cap) * act_row_bytes(dt, H), "cudaMalloc(ep rows)");
    epw.h_act = dev_alloc<uint8_t>(size_t(cap) * h_stride, "cudaMalloc(ep h rows)");
    check(cudaMemset(epw.h_act, 0, size_t(cap) * h_stride), "cudaMemset(ep h rows)");
    if (act_dtype(dt) == kI8) epw.h_f32 = dev_alloc<float>(size_t(cap) * fpm, "cudaMalloc(ep h fp32)");
    epw.out = dev_alloc<float>(size_t(cap) * H, "cudaMalloc(ep outputs)");
    epw.rows_cap = cap;
  }

  void ep_compute(int global_T, const int32_t* counts, const uint8_t* rows, const float* scales, float* hout) {
    ep_check(global_T);
    check(cudaSetDevice(cfg.device), "cudaSetDevice");
    const bool tensor = tensor_for(global_T);
    const int block = tensor ? kTensorBM : 1;
    // The plan on the host: segment e holds expert e's rows in the order given (slot = row index).
    std::vector<int> cnt(size_t(E) + 1, 0), off(size_t(E) + 2, 0), active;
    int64_t n = 0;
    for (int e = 0; e < E; ++e) {
      if (counts[e] < 0) moecap::throw_range("counts must be non-negative");
      if (counts[e] > 0 && !blobs[size_t(e)])
        moecap::throw_range("expert " + std::to_string(e) + " is not held by this layer (placements differ?)");
      cnt[size_t(e)] = counts[e];
      n += counts[e];
      if (counts[e] > 0) active.push_back(e);
    }
    if (n == 0) return;
    padded_offsets(cnt.data(), E + 1, block, off.data());
    const int total = off[size_t(E) + 1];
    std::vector<int32_t> slot_token(size_t(total), -1);
    std::vector<float> slot_scale(size_t(total), 0.0f);
    for (int e = 0, r = 0; e < E; ++e)
      for (int i = 0; i < cnt[size_t(e)]; ++i, ++r) {
        slot_token[size_t(off[size_t(e)] + i)] = r;
        slot_scale[size_t(off[size_t(e)] + i)] = scales[r];
      }
    const int scalars[4] = {int(active.size()), int(active.size()), 0, total};
    active.resize(size_t(E) + 1, 0);
    ep_grow(std::max<int>(total, int(n)));
    const size_t arb = act_row_bytes(dt, H);
    check(cudaMemcpyAsync(epw.plan.counts, cnt.data(), sizeof(int) * (E + 1), cudaMemcpyHostToDevice, stream), "ep");
    check(cudaMemcpyAsync(epw.plan.offsets, off.data(), sizeof(int) * (E + 2), cudaMemcpyHostToDevice, stream), "ep");
    check(cudaMemcpyAsync(epw.plan.active, active.data(), sizeof(int) * (E + 1), cudaMemcpyHostToDevice, stream), "ep");
    check(cudaMemcpyAsync(epw.plan.scalars, scalars, sizeof scalars, cudaMemcpyHostToDevice, stream), "ep");
    check(cudaMemcpyAsync(epw.plan.slot_token, slot_token.data(), 4 * size_t(total), cudaMemcpyHostToDevice, stream),
          "ep");
    check(cudaMemcpyAsync(epw.plan.slot_scale, slot_scale.data(), 4 * size_t(total), cudaMemcpyHostToDevice, stream),
          "ep");
    check(cudaMemcpyAsync(epw.x_act, rows, size_t(n) * arb, cudaMemcpyHostToDevice, stream), "cudaMemcpyAsync(rows)");
    ExpertArgs a = expert_args(global_T);
    a.counts = epw.plan.counts, a.offsets = epw.plan.offsets, a.active = epw.plan.active;
    a.scalars = epw.plan.scalars, a.slot_token = epw.plan.slot_token, a.slot_scale = epw.plan.slot_scale;
    a.x_act = epw.x_act, a.h_act = epw.h_act, a.h_f32 = epw.h_f32, a.out = epw.out;
    a.grid_segments = scalars[kNActive];
    a.rows_bound = total;
    run_experts(a, global_T, tensor);
    for (int e = 0, r = 0; e < E; r += cnt[size_t(e)], ++e)
      if (cnt[size_t(e)] > 0)
        check(cudaMemcpyAsync(hout + size_t(r) * H, epw.out + size_t(off[size_t(e)]) * H,
                              sizeof(float) * size_t(cnt[size_t(e)]) * H, cudaMemcpyDeviceToHost, stream),
              "cudaMemcpyAsync(outputs)");
    check(cudaStreamSynchronize(stream), "ep_compute");
  }

  void ep_combine(int global_T, const float* results, float* hy) {
    ep_check(global_T);
    if (ep_T < 0) moecap::throw_range("ep_combine without ep_route");
    const int T = ep_T;
    ep_T = -1;
    if (T == 0) return;
    check(cudaSetDevice(cfg.device), "cudaSetDevice");
    // Each assignment's result at its row of the routed plan, then forward()'s last steps.
    std::vector<float> staged(size_t(ep_routed_rows) * H, 0.0f);
    for (int64_t i = 0; i < int64_t(T) * k; ++i) {
      const int32_t slot = ep_token_slot[size_t(i)];
      if (slot >= 0) std::memcpy(staged.data() + size_t(slot) * H, results + size_t(i) * H, sizeof(float) * H);
    }
    check(cudaMemcpyAsync(out_rows, staged.data(), staged.size() * 4, cudaMemcpyHostToDevice, stream),
          "cudaMemcpyAsync(results)");
    if (shared) {
      ExpertArgs a = expert_args(T);
      a.fixed_seg = E;
      run_experts(a, global_T, tensor_for(global_T));
    }
    launch_combine(out_rows, plan.token_slot, plan.offsets, T, k, H, E, shared, y, stream);
    check(cudaMemcpyAsync(hy, y, size_t(T) * H * 4, cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync(y)");
    check(cudaStreamSynchronize(stream), "ep_combine");
  }
};

void moecap_cuda::set_last_error(const std::string& message) { g_last_error = message; }

namespace {
template <class F>
int guarded(F&& f) {
  try {
    f();
    g_last_error.clear();
    return 0;
  } catch (const std::exception& e) {
    g_last_error = e.what();
    return -1;
  }
}
}  // namespace

extern "C" {

MOECAP_CUDA_API int moecap_cuda_abi_version(void) { return MOECAP_CUDA_ABI_VERSION; }
MOECAP_CUDA_API int moecap_cuda_runtime_version(void) { return CUDART_VERSION; }

MOECAP_CUDA_API int moecap_cuda_probe(int device, moecap_cuda_probe_t* out) {
  if (!out) return -1;
  const size_t size = out->size;
  std::memset(out, 0, sizeof *out);
  out->size = size;
  out->abi_version = MOECAP_CUDA_ABI_VERSION;
  out->runtime_version = CUDART_VERSION;
  out->device = device;
  cudaDriverGetVersion(&out->driver_version);
  if (out->driver_version == 0) {
    std::snprintf(out->reason, sizeof out->reason, "libcuda.so.1 not found (no NVIDIA driver)");
    return 1;
  }
  if (out->driver_version < CUDART_VERSION / 1000 * 1000) {
    std::snprintf(out->reason, sizeof out->reason, "driver supports CUDA %d.%d, library needs %d.%d",
                  out->driver_version / 1000, (out->driver_version % 1000) / 10, CUDART_VERSION / 1000,
                  (CUDART_VERSION % 1000) / 10);
    return 1;
  }
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0) {
    std::snprintf(out->reason, sizeof out->reason, "no CUDA device%s%s", e != cudaSuccess ? ": " : "",
                  e != cudaSuccess ? cudaGetErrorString(e) : "");
    cudaGetLastError();
    return 1;
  }
  out->device_count = n;
  if (device < 0 || device >= n) {
    std::snprintf(out->reason, sizeof out->reason, "device %d does not exist (%d CUDA device%s)", device, n,
                  n == 1 ? "" : "s");
    return 1;
  }
  cudaDeviceProp p;
  if (cudaGetDeviceProperties(&p, device) != cudaSuccess) {
    std::snprintf(out->reason, sizeof out->reason, "cudaGetDeviceProperties(%d) failed", device);
    return 1;
  }
  std::snprintf(out->name, sizeof out->name, "%s", p.name);
  out->cc_major = p.major;
  out->cc_minor = p.minor;
  out->sm_count = p.multiProcessorCount;
  out->total_memory = p.totalGlobalMem;
  int mem_khz = 0, bus_bits = 0;
  cudaDeviceGetAttribute(&mem_khz, cudaDevAttrMemoryClockRate, device);
  cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, device);
  out->memory_bandwidth_gbs = 2.0 * mem_khz * 1e3 * (bus_bits / 8.0) / 1e9;
  if (p.major < 8) {
    std::snprintf(out->reason, sizeof out->reason,
                  "%s has compute capability %d.%d; the library is built for 8.0 and newer", p.name, p.major, p.minor);
    return 1;
  }
  return 0;
}

MOECAP_CUDA_API moecap_cuda_layer* moecap_cuda_layer_create(const moecap_cuda_config_t* config,
                                                            const moecap_cuda_weights_t* weights) {
  if (!config || !weights) {
    g_last_error = "moecap_cuda_layer_create: config and weights are required";
    return nullptr;
  }
  if (config->size != sizeof(moecap_cuda_config_t) || weights->size != sizeof(moecap_cuda_weights_t)) {
    g_last_error = "moecap_cuda_layer_create: struct size mismatch (addon and library built from different headers)";
    return nullptr;
  }
  moecap_cuda_layer* l = new moecap_cuda_layer();
  if (guarded([&] { l->create(*config, *weights); }) != 0) {
    delete l;
    return nullptr;
  }
  return l;
}

MOECAP_CUDA_API int moecap_cuda_layer_forward(moecap_cuda_layer* layer, const float* x, int tokens, float* out,
                                              int32_t* ids, float* weights, moecap_cuda_stats_t* stats) {
  if (!layer || !x) {
    g_last_error = "moecap_cuda_layer_forward: layer and x are required";
    return -1;
  }
  return guarded([&] { layer->forward(x, tokens, out, ids, weights, stats); });
}

MOECAP_CUDA_API int moecap_cuda_layer_prefetch(moecap_cuda_layer* layer, const int32_t* experts, int n) {
  if (!layer) return -1;
  if (!layer->store) return 0;
  return guarded([&] {
    std::vector<int> list;
    for (int i = 0; i < n; ++i)
      if (experts[i] >= 0 && experts[i] < layer->E) list.push_back(experts[i]);
    layer->store->prefetch(list);
  });
}

MOECAP_CUDA_API int moecap_cuda_layer_pin_static(moecap_cuda_layer* layer, int32_t* out, int capacity) {
  if (!layer) return -1;
  if (!layer->store) {
    g_last_error = "offload is not enabled (create the layer with cache slots)";
    return -1;
  }
  int n = 0;
  if (guarded([&] {
        const std::vector<int> p = layer->store->pin_static();
        n = (int)p.size();
        for (int i = 0; i < n && i < capacity; ++i) out[i] = p[size_t(i)];
      }) != 0)
    return -1;
  return n;
}

MOECAP_CUDA_API double moecap_cuda_layer_device_bytes(const moecap_cuda_layer* layer) {
  return layer ? layer->device_bytes : 0;
}

MOECAP_CUDA_API void moecap_cuda_layer_destroy(moecap_cuda_layer* layer) { delete layer; }

MOECAP_CUDA_API size_t moecap_cuda_act_row_bytes(int dtype, int hidden) { return act_row_bytes(dtype, hidden); }

MOECAP_CUDA_API int moecap_cuda_layer_ep_route(moecap_cuda_layer* layer, const float* x, int tokens, int global_tokens,
                                               int32_t* ids, float* weights, uint8_t* x_act) {
  if (!layer || (tokens > 0 && (!x || !ids || !weights || !x_act))) {
    g_last_error = "moecap_cuda_layer_ep_route: layer, x, ids, weights and x_act are required";
    return -1;
  }
  return guarded([&] { layer->ep_route(x, tokens, global_tokens, ids, weights, x_act); });
}

MOECAP_CUDA_API int moecap_cuda_layer_ep_compute(moecap_cuda_layer* layer, int global_tokens, const int32_t* counts,
                                                 const uint8_t* rows, const float* scales, float* out) {
  if (!layer || !counts) {
    g_last_error = "moecap_cuda_layer_ep_compute: layer and counts are required";
    return -1;
  }
  return guarded([&] { layer->ep_compute(global_tokens, counts, rows, scales, out); });
}

MOECAP_CUDA_API int moecap_cuda_layer_ep_combine(moecap_cuda_layer* layer, int global_tokens, const float* results,
                                                 float* y) {
  if (!layer) {
    g_last_error = "moecap_cuda_layer_ep_combine: layer is required";
    return -1;
  }
  return guarded([&] { layer->ep_combine(global_tokens, results, y); });
}

MOECAP_CUDA_API const char* moecap_cuda_last_error(void) { return g_last_error.c_str(); }

}  // extern "C"
