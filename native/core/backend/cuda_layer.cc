#include "backend/cuda_layer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>

#include "backend/gpu_weight_layout.h"
#include "backend/gpu_weight_pack.h"
#include "error.h"

namespace moecap {

namespace {
// The weights the library takes (cuda_abi.h) and the buffers behind them, alive for the create call.
struct AbiWeights {
  std::shared_ptr<const WeightSource> masters;  // the seed or fp32 arrays
  std::vector<uint8_t> packed, shared_packed;   // experts in the GPU layout, or empty
  moecap_cuda_weights_t wt;
};

// A seed, or fp32 arrays (a checkpoint's read into arrays: the library takes whole matrices). A
// checkpoint's experts in a dtype whose codes it may keep (fp8, mxfp4, bf16) are packed here from
// those codes instead, since fp32 cannot carry them bitwise (an fp8 128×128 block scale is not the
// max-based scale the library would give each row); their fp32 arrays are then not read at all.
void abi_weights(const LayerConfig& c, const std::shared_ptr<const WeightSource>& src, const uint8_t* held,
                 AbiWeights& out) {
  const int dt = int(c.dtype), H = c.hidden, F = c.intermediate, E = c.experts, Fs = c.shared_intermediate;
  uint64_t seed = 0;
  const bool prepack = !src->seed(&seed) && !src->arrays() && moecap_cuda::has_stored_codes(dt);
  out.masters = seed_or_arrays(src, H, F, E, Fs, c.shared_gated, !prepack);
  moecap_cuda_weights_t& wt = out.wt;
  std::memset(&wt, 0, sizeof wt);
  wt.size = sizeof wt;
  if (out.masters->seed(&seed)) {
    wt.use_seed = 1;
    wt.seed = seed;
  } else if (const ExplicitWeights* e = out.masters->arrays()) {
    wt.router = e->router.data();
    if (!prepack) wt.gate = e->gate.data(), wt.up = e->up.data(), wt.down = e->down.data();
    if (Fs > 0) {
      wt.shared_gate = e->shared_gate.data(), wt.shared_up = e->shared_up.data(),
      wt.shared_down = e->shared_down.data();
      wt.shared_gate_weight = e->shared_gate_weight.empty() ? nullptr : e->shared_gate_weight.data();
    }
  } else {
    throw_runtime("the CUDA backend takes seeded or explicit fp32 weights");
  }
  if (!prepack) return;
  const int threads = int(std::max(1u, std::thread::hardware_concurrency()));
  out.packed.resize(size_t(E) * moecap_cuda::expert_layout(dt, H, F).bytes);
  moecap_cuda::pack_routed_experts(dt, *src, E, H, F, held, out.packed.data(), threads);
  wt.experts_packed = out.packed.data();
  if (Fs > 0) {
    out.shared_packed.resize(moecap_cuda::expert_layout(dt, H, Fs).bytes);
    moecap_cuda::pack_expert(dt, *src, Matrix::SharedGate, Matrix::SharedUp, Matrix::SharedDown, 0, H, Fs,
                             out.shared_packed.data(), threads);
    wt.shared_packed = out.shared_packed.data();
  }
}
}  // namespace

CudaLayer::CudaLayer(const CudaApi* api, const LayerConfig& c, std::shared_ptr<const WeightSource> weights,
                     const CudaLayerOptions& o)
    : api_(api), cfg_(c), weights_(std::move(weights)), opt_(o) {
  if (!api_) throw_runtime("the CUDA backend is not loaded", ErrorCode::BackendUnavailable);
  if (opt_.cache_slots == 0 && opt_.cache_bytes > 0) {
    opt_.cache_slots = int(std::min(double(c.experts), std::floor(opt_.cache_bytes / expert_bytes())));
    if (opt_.cache_slots < 1)
      throw_option("offload.capacity.bytes (" + std::to_string(opt_.cache_bytes) + ") holds no expert of " +
                   std::to_string(expert_bytes()) + " bytes in the GPU layout");
  }
  moecap_cuda_config_t g;
  std::memset(&g, 0, sizeof g);
  g.size = sizeof g;
  g.hidden = c.hidden, g.intermediate = c.intermediate, g.experts = c.experts, g.top_k = c.top_k;
  g.scoring = c.scoring == Scoring::Sigmoid       ? MOECAP_CUDA_SIGMOID
              : c.scoring == Scoring::SparseMixer ? MOECAP_CUDA_SPARSEMIXER
                                                  : MOECAP_CUDA_SOFTMAX;
  g.jitter_eps = c.jitter_eps;
  g.renormalize = c.renormalize;
  g.routed_scaling_factor = c.routed_scaling_factor;
  g.selection_bias = c.selection_bias.empty() ? nullptr : c.selection_bias.data();
  g.group_count = c.group_count, g.group_keep = c.group_keep;
  g.group_score = int(c.group_score);  // the MOECAP_CUDA_GROUP_* values are moecap::GroupScore's
  g.shared_intermediate = c.shared_intermediate, g.shared_gated = c.shared_gated;
  g.capacity_factor = c.capacity_factor;
  g.dtype = int(c.dtype);
  g.device = o.device;
  g.max_tokens = o.max_tokens;
  g.offload = opt_.cache_slots > 0;
  g.cache_slots = opt_.cache_slots;
  g.cache_policy = int(opt_.policy);  // the MOECAP_CUDA_* values are moecap::CachePolicy's
  auto ptr = [](const std::vector<float>& v) { return v.empty() ? nullptr : v.data(); };
  g.router_bias = ptr(c.router_bias);
  g.gate_bias = ptr(c.gate_bias), g.up_bias = ptr(c.up_bias), g.down_bias = ptr(c.down_bias);
  g.swiglu_limit = c.swiglu_limit, g.swiglu_alpha = c.swiglu_alpha;
  g.score_on_input = c.score_on_input;
  std::vector<uint8_t> held(opt_.held.begin(), opt_.held.end());
  if (!held.empty()) {
    if (int(held.size()) != c.experts) throw_runtime("CUDA layer: held must have one entry per expert");
    g.held = held.data();
  }
  AbiWeights w;
  abi_weights(c, weights_, g.held, w);
  layer_ = api_->layer_create(&g, &w.wt);
  if (!layer_) throw_runtime(std::string("CUDA layer: ") + api_->last_error(), ErrorCode::BackendUnavailable);
}

CudaLayer::~CudaLayer() {
  if (layer_) api_->layer_destroy(layer_);
}

double CudaLayer::device_bytes() const { return api_->layer_device_bytes(layer_); }

LayerInfo CudaLayer::info() const {
  LayerInfo i;
  i.isa = "cuda";
  i.threads = 0;
  i.max_tokens = opt_.max_tokens;
  i.packed_bytes = device_bytes();
  i.expert_bytes = expert_bytes();
  return i;
}

void CudaLayer::check_pass(int T, bool) const {
  if (T > opt_.max_tokens)
    throw_range("x: " + std::to_string(T) + " tokens exceed maxTokens (" + std::to_string(opt_.max_tokens) +
                ") of this CUDA layer");
}

void CudaLayer::reference(const float* x, int T, const std::vector<int32_t>& sample, ReferenceResult& out) {
  std::lock_guard<std::mutex> lock(reference_mutex_);
  if (!reference_layer_) {
    LayerConfig c = cfg_;
    c.dtype = DType::I4;
    reference_layer_.reset(new MoeLayer(c, weights_, "auto"));
  }
  reference_layer_->reference(x, T, sample, out);
}

double CudaLayer::expert_bytes() const {
  return double(moecap_cuda::expert_layout(int(cfg_.dtype), cfg_.hidden, cfg_.intermediate).bytes);
}

void CudaLayer::forward(const float* x, int T, ForwardResult& out) {
  std::lock_guard<std::mutex> lock(mutex_);
  const int k = cfg_.top_k, H = cfg_.hidden, E = cfg_.experts;
  out.output.resize(size_t(T) * H);
  out.ids.resize(size_t(T) * k);
  out.weights.resize(size_t(T) * k);
  ForwardStats& st = out.stats;
  st.expert_counts.assign(size_t(E), 0);
  moecap_cuda_stats_t s;
  std::memset(&s, 0, sizeof s);
  s.size = sizeof s;
  s.expert_counts = st.expert_counts.data();
  std::vector<int32_t> resident(static_cast<size_t>(E));
  s.resident = resident.data();
  if (api_->layer_forward(layer_, x, T, out.output.data(), out.ids.data(), out.weights.data(), &s) != 0)
    throw_runtime(std::string("CUDA forward: ") + api_->last_error());
  st.tokens = s.tokens;
  st.distinct_experts = s.distinct_experts;
  st.assignments = s.assignments;
  st.dropped = s.dropped;
  st.capacity = s.capacity;
  st.expert_bytes = s.expert_bytes;
  st.shared_bytes = s.shared_bytes;
  st.router_bytes = s.router_bytes;
  st.flops = s.flops;
  // CUDA event times of the pass on the device (x and y transfers excluded), in ns.
  st.total_ns = int64_t(s.total_ms * 1e6);
  st.route_ns = int64_t(s.route_ms * 1e6);
  st.experts_ns = int64_t(s.experts_ms * 1e6);
  st.combine_ns = int64_t(s.combine_ms * 1e6);
  if (opt_.cache_slots > 0) {
    // The CPU offload's counters: the slow tier is pinned host memory, a load is a host → device
    // copy and its time is the copy stream's busy time (stall time is not measured on the GPU).
    st.offloaded = true;
    st.offload = OffloadStats();
    st.offload.passes = 1;
    st.offload.hits = s.cache_hits;
    st.offload.misses = s.cache_misses;
    st.offload.evictions = s.evictions;
    st.offload.loads = s.loads;
    st.offload.bytes_read = s.h2d_bytes;
    st.offload.io_ns = int64_t(s.h2d_ms * 1e6);
    st.offload.prefetch_issued = s.prefetch_issued;
    st.offload.prefetch_used = s.prefetch_used;
    st.offload.waves = s.waves;
    st.resident.assign(resident.begin(), resident.begin() + s.resident_count);
  }
}

std::vector<int> CudaLayer::pin_static() {
  if (opt_.cache_slots <= 0)
    throw_runtime("offload is not enabled (create it with an `offload` option or cudaCacheSlots)",
                  ErrorCode::InvalidOption);
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<int32_t> out(size_t(cfg_.experts));
  const int n = api_->layer_pin_static(layer_, out.data(), cfg_.experts);
  if (n < 0) throw_runtime(std::string("CUDA pinStatic: ") + api_->last_error());
  return std::vector<int>(out.begin(), out.begin() + n);
}

size_t CudaLayer::ep_row_bytes() const { return api_->act_row_bytes(int(cfg_.dtype), cfg_.hidden); }

void CudaLayer::ep_route(const float* x, int T, int global_T, ForwardResult& out, std::vector<uint8_t>& x_act) {
  std::lock_guard<std::mutex> lock(mutex_);
  const int k = cfg_.top_k;
  out.ids.resize(size_t(T) * k);
  out.weights.resize(size_t(T) * k);
  x_act.resize(size_t(T) * ep_row_bytes());
  if (api_->layer_ep_route(layer_, x, T, global_T, out.ids.data(), out.weights.data(), x_act.data()) != 0)
    throw_runtime(std::string("CUDA expert-parallel route: ") + api_->last_error());
}

void CudaLayer::ep_compute(int global_T, const int32_t* counts, const uint8_t* rows, const float* scales, float* out) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (api_->layer_ep_compute(layer_, global_T, counts, rows, scales, out) != 0)
    throw_runtime(std::string("CUDA expert-parallel compute: ") + api_->last_error());
}

void CudaLayer::ep_combine(int global_T, const float* results, ForwardResult& out) {
  std::lock_guard<std::mutex> lock(mutex_);
  out.output.resize(out.ids.size() / size_t(cfg_.top_k) * size_t(cfg_.hidden));
  if (api_->layer_ep_combine(layer_, global_T, results, out.output.data()) != 0)
    throw_runtime(std::string("CUDA expert-parallel combine: ") + api_->last_error());
}

}  // namespace moecap
