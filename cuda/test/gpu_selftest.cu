// gpu_selftest: the CUDA backend against the CPU core, then timings against ceilings measured in
// the same run. No Node needed. Exit codes: 0 all checks passed, 1 a check failed, 77 no usable
// CUDA device (skipped), 2 a CUDA call failed.
//   gpu_selftest [--quick] [--no-bench] [--no-checks] [--seed N]
// Checks (fresh random inputs each run unless --seed; odd sizes, ties, grouped top-k, all dtypes):
//   router_topk     ids bitwise equal to moecap::route_token on the same fp32 logits (softmax,
//                   sigmoid, sparsemixer); weights rel 1e-5
//   router_logits   against an fp64 dot product, rel 1e-5
//   plan            counts, drops and each assignment's rank within its expert equal to
//                   moecap::build_routing_plan; padding rows empty; offsets = padded scan
//   act_rows        bf16 and int8 rows bitwise equal to moecap::make_activation_row (mxfp4: the
//                   CPU's int8 rows; fp8: bf16 rows, where the CPU core has fp32 ones)
//   layer           full forward through the C ABI vs moecap::MoeLayer (same seeded weights):
//                   ids equal (except near-ties of the fp32 logits, reported), output rel error
//                   per dtype (f32, bf16, int8, int4, mxfp4, fp8); SIMT and tensor-core paths; offload == resident
//                   bitwise (every cache policy, capacity 1 and E/2, prefetch, static pins; counters checked); repeat
//                   forward bitwise equal (deterministic); mxfp4/fp8 also from a release's stored codes
//                   (stored_code_weights.h) handed over pre-packed, as CudaLayer does for a checkpoint
// Bench (OLMoE and Mixtral shapes, bf16, int4/int8 and mxfp4/fp8 decode, bf16 prefill, offloaded decode):
//   CUDA events, warm-up, median; ceilings: device-to-device copy, pinned host-to-device copy,
//   dense bf16 GEMM (cuBLAS via dlopen when present, else this library's tensor-core kernel).
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstdarg>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda_abi.h"
#include "dispatch/routing_plan.h"
#include "kernels.h"
#include "layer/moe_layer.h"
#include "router/router_topk.h"
#include "weights/activation_rows.h"
#include "weights/numeric.h"
#include "weights/weight_source.h"
#include "backend/gpu_weight_pack.h"
#include "stored_code_weights.h"

using namespace moecap_cuda;

namespace {

int g_failures = 0;
std::mt19937_64 g_rng;

#define CK(call)                                                                                      \
  do {                                                                                                \
    cudaError_t e_ = (call);                                                                          \
    if (e_ != cudaSuccess) {                                                                          \
      std::printf("CUDA error %s at %s:%d: %s\n", cudaGetErrorString(e_), __FILE__, __LINE__, #call); \
      std::exit(2);                                                                                   \
    }                                                                                                 \
  } while (0)

void report(bool ok, const char* name, const std::string& detail) {
  std::printf("%s  %-14s %s\n", ok ? "PASS" : "FAIL", name, detail.c_str());
  if (!ok) ++g_failures;
}

std::vector<float> gaussian(size_t n, float std = 1.0f) {
  std::normal_distribution<float> d(0.0f, std);
  std::vector<float> v(n);
  for (auto& x : v) {
    x = d(g_rng);
    if (x == 0.0f) x = 1e-3f;
  }
  return v;
}

template <class T>
T* to_dev(const std::vector<T>& h) {
  T* d = nullptr;
  CK(cudaMalloc(&d, std::max<size_t>(1, h.size()) * sizeof(T)));
  if (!h.empty()) CK(cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}
template <class T>
std::vector<T> to_host(const T* d, size_t n) {
  std::vector<T> h(n);
  if (n) CK(cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost));
  return h;
}
template <class T>
T* dev_zero(size_t n) {
  T* d = nullptr;
  CK(cudaMalloc(&d, std::max<size_t>(1, n) * sizeof(T)));
  CK(cudaMemset(d, 0, std::max<size_t>(1, n) * sizeof(T)));
  return d;
}

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

// A check that throws (the CPU core refusing its inputs, say) is one failed check, named with its
// case and the reason; the checks after it still run.
template <class Check>
void guarded(const char* name, Check&& check) {
  try {
    check();
  } catch (const std::exception& e) {
    report(false, name, fmt("threw: %s", e.what()));
  }
}

// ---------------------------------------------------------------- router
struct RouterCase {
  int T, E, k, scoring, G, Gk;
  bool bias, renorm, ties;
  float scaling;
  int group_max = 0;       // groups scored by their best expert (DeepSeek-V2)
  float bias_shift = 0.f;  // added to every bias: negative makes 0.0-masked experts outrank kept ones
  float jitter = 0.01f;    // sparsemixer's mask threshold
};
const char* scoring_name(int s) { return s == 0 ? "softmax" : s == 1 ? "sigmoid" : "sparsemixer"; }
moecap::Scoring core_scoring(int s) {
  return s == 0 ? moecap::Scoring::Softmax : s == 1 ? moecap::Scoring::Sigmoid : moecap::Scoring::SparseMixer;
}

void check_router(const RouterCase& c) {
  const int H = 97;  // odd
  std::vector<float> x = gaussian(size_t(c.T) * H), w = gaussian(size_t(c.E) * H, 1.0f / std::sqrt(float(H)));
  if (c.ties)  // duplicate router rows → exactly equal logits → the lower index must win
    for (int e = 1; e < c.E; e += 3)
      std::copy(w.begin() + size_t(e - 1) * H, w.begin() + size_t(e) * H, w.begin() + size_t(e) * H);
  std::vector<float> bias = gaussian(size_t(c.E), 0.05f);
  for (float& b : bias) b += c.bias_shift;
  float *dx = to_dev(x), *dw = to_dev(w), *dbias = c.bias ? to_dev(bias) : nullptr;
  float* dlog = dev_zero<float>(size_t(c.T) * c.E);
  launch_router_logits(dx, dw, c.T, H, c.E, dlog, c.E, 0);
  RouterArgs a;
  a.tokens = c.T, a.hidden = H, a.experts = c.E, a.top_k = c.k, a.scoring = c.scoring, a.renormalize = c.renorm;
  a.scaling = c.scaling, a.bias = dbias, a.group_count = c.G, a.group_keep = c.Gk;
  a.group_max = c.group_max;
  a.jitter_eps = c.jitter;
  int32_t* dids = dev_zero<int32_t>(size_t(c.T) * c.k);
  float* dwt = dev_zero<float>(size_t(c.T) * c.k);
  float* dsg = dev_zero<float>(size_t(c.T));
  launch_router_topk(dlog, c.E, a, dids, dwt, dsg, 0);
  CK(cudaDeviceSynchronize());
  std::vector<float> logits = to_host(dlog, size_t(c.T) * c.E), wt = to_host(dwt, size_t(c.T) * c.k);
  std::vector<int32_t> ids = to_host(dids, size_t(c.T) * c.k);

  double max_logit_err = 0;
  for (int t = 0; t < c.T; ++t)
    for (int e = 0; e < c.E; ++e) {
      double d = 0, n = 0;
      for (int h = 0; h < H; ++h) {
        d += double(x[size_t(t) * H + h]) * w[size_t(e) * H + h];
        n += std::fabs(double(x[size_t(t) * H + h]) * w[size_t(e) * H + h]);
      }
      max_logit_err = std::max(max_logit_err, std::fabs(logits[size_t(t) * c.E + e] - d) / (n + 1e-30));
    }
  moecap::RouterParams p;
  p.experts = c.E, p.top_k = c.k, p.scoring = core_scoring(c.scoring), p.jitter_eps = c.jitter;
  p.renormalize = c.renorm, p.scaling = c.scaling, p.bias = c.bias ? bias.data() : nullptr;
  p.group_count = c.G, p.group_keep = c.Gk;
  p.group_score = c.group_max ? moecap::GroupScore::Max : moecap::GroupScore::Top2Sum;
  std::vector<float> scratch(size_t(2 * c.E + 2 * c.G + 16));
  std::vector<int32_t> cids(size_t(c.k));
  std::vector<float> cw(size_t(c.k));
  int id_mismatch = 0;
  double max_w_err = 0;
  for (int t = 0; t < c.T; ++t) {
    moecap::route_token(p, logits.data() + size_t(t) * c.E, scratch.data(), cids.data(), cw.data());
    for (int j = 0; j < c.k; ++j) {
      if (cids[j] != ids[size_t(t) * c.k + j]) ++id_mismatch;
      max_w_err = std::max(max_w_err, double(std::fabs(cw[j] - wt[size_t(t) * c.k + j])) / (std::fabs(cw[j]) + 1e-30));
    }
  }
  const std::string name = fmt("T=%d E=%d k=%d %s%s%s%s", c.T, c.E, c.k, scoring_name(c.scoring),
                               c.G ? fmt(" groups=%d/%d%s", c.Gk, c.G, c.group_max ? " max" : "").c_str() : "",
                               c.bias ? " bias" : "", c.ties ? " ties" : "");
  report(id_mismatch == 0 && max_w_err <= 1e-5, "router_topk",
         fmt("%s: id mismatches %d, max weight rel err %.2e", name.c_str(), id_mismatch, max_w_err));
  report(max_logit_err <= 1e-5, "router_logits", fmt("%s: max rel err vs fp64 %.2e", name.c_str(), max_logit_err));
  for (void* q : {(void*)dx, (void*)dw, (void*)dbias, (void*)dlog, (void*)dids, (void*)dwt, (void*)dsg}) cudaFree(q);
}

// ---------------------------------------------------------------- plan
void check_plan(int T, int k, int E, double cf, int block, bool shared) {
  std::vector<int32_t> ids(size_t(T) * k);
  std::vector<int> perm(static_cast<size_t>(E));
  for (int i = 0; i < E; ++i) perm[i] = i;
  std::vector<float> w = gaussian(size_t(T) * k), sg = gaussian(size_t(T));
  for (int t = 0; t < T; ++t) {
    // Skewed choice (a few hot experts) so capacity limits bite; k distinct ids per token.
    for (int j = 0; j < k; ++j) {
      std::uniform_int_distribution<int> d(j, E - 1);
      int r = g_rng() % 3 == 0 ? j + int(g_rng() % std::max(1, std::min(4, E - j))) : d(g_rng);
      std::swap(perm[j], perm[r]);
      ids[size_t(t) * k + j] = perm[j];
    }
  }
  const int64_t cap = capacity_for(cf, T, k, E);
  moecap::RoutingPlan cpu;
  moecap::build_routing_plan(ids.data(), T, k, E, cap, cpu);
  const size_t rows = plan_rows_bound(T, k, E, block, shared);
  PlanDev p;
  p.counts = dev_zero<int>(size_t(E) + 1);
  p.offsets = dev_zero<int>(size_t(E) + 2);
  p.active = dev_zero<int>(size_t(E) + 1);
  p.scalars = dev_zero<int>(4);
  p.scratch = dev_zero<int>(plan_scratch_ints(T, k, E));
  p.token_slot = dev_zero<int32_t>(size_t(T) * k);
  p.slot_token = dev_zero<int32_t>(rows);
  p.slot_scale = dev_zero<float>(rows);
  int32_t* dids = to_dev(ids);
  float *dw = to_dev(w), *dsg = to_dev(sg);
  launch_build_plan(dids, dw, dsg, T, k, E, cap, block, shared, p, 0);
  CK(cudaDeviceSynchronize());
  auto counts = to_host(p.counts, size_t(E) + 1);
  auto offsets = to_host(p.offsets, size_t(E) + 2);
  auto scalars = to_host(p.scalars, 4);
  auto token_slot = to_host(p.token_slot, size_t(T) * k);
  auto slot_token = to_host(p.slot_token, rows);
  auto slot_scale = to_host(p.slot_scale, rows);
  std::string why;
  for (int e = 0; e < E && why.empty(); ++e)
    if (counts[e] != cpu.counts[e]) why = fmt("count of expert %d: %d vs cpu %d", e, counts[e], cpu.counts[e]);
  std::vector<int> want(size_t(E) + 1);
  for (int e = 0; e < E; ++e) want[e] = cpu.counts[e];
  want[E] = shared ? T : 0;
  std::vector<int> off(size_t(E) + 2);
  padded_offsets(want.data(), E + 1, block, off.data());
  for (int e = 0; e <= E + 1 && why.empty(); ++e)
    if (offsets[e] != off[e]) why = fmt("offset %d: %d vs %d", e, offsets[e], off[e]);
  if (why.empty() && scalars[kDropped] != cpu.dropped)
    why = fmt("dropped %d vs cpu %lld", scalars[kDropped], (long long)cpu.dropped);
  if (why.empty() && scalars[kDistinct] != cpu.distinct)
    why = fmt("distinct %d vs cpu %d", scalars[kDistinct], cpu.distinct);
  for (int a = 0; a < T * k && why.empty(); ++a) {
    const int e = ids[a], cs = cpu.token_slot[a], gs = token_slot[a];
    if ((cs < 0) != (gs < 0)) why = fmt("assignment %d dropped on one side only", a);
    else if (cs >= 0 && cs - cpu.offsets[e] != gs - offsets[e]) why = fmt("assignment %d rank differs", a);
    else if (gs >= 0 && (slot_token[gs] != a / k || slot_scale[gs] != w[a])) why = fmt("row %d content", gs);
  }
  for (int e = 0; e < E && why.empty(); ++e)
    for (int r = offsets[e] + counts[e]; r < offsets[e + 1]; ++r)
      if (slot_token[r] != -1 || slot_scale[r] != 0.0f) {
        why = fmt("padding row %d not empty", r);
        break;
      }
  if (shared)
    for (int t = 0; t < T && why.empty(); ++t)
      if (slot_token[offsets[E] + t] != t || slot_scale[offsets[E] + t] != sg[t]) why = fmt("shared row %d", t);
  report(why.empty(), "plan",
         fmt("T=%d k=%d E=%d cf=%.2f block=%d%s: %s", T, k, E, cf, block, shared ? " shared" : "",
             why.empty()
                 ? fmt("dropped %d, distinct %d, rows %d", scalars[kDropped], scalars[kDistinct], scalars[kTotalRows])
                       .c_str()
                 : why.c_str()));
  for (void* q : {(void*)p.counts, (void*)p.offsets, (void*)p.active, (void*)p.scalars, (void*)p.scratch,
                  (void*)p.token_slot, (void*)p.slot_token, (void*)p.slot_scale, (void*)dids, (void*)dw, (void*)dsg})
    cudaFree(q);
}

// ---------------------------------------------------------------- activation rows
void check_act_rows(int dt, int rows, int K) {
  std::vector<float> x = gaussian(size_t(rows) * K);
  for (int i = 0; i < K; i += 7) x[i] = 0;  // exact zeros and a zero block
  float* dx = to_dev(x);
  uint8_t* dout = dev_zero<uint8_t>(size_t(rows) * act_row_bytes(dt, K));
  launch_make_act_rows(dt, dx, K, rows, K, dout, nullptr, 0);
  CK(cudaDeviceSynchronize());
  auto out = to_host(dout, size_t(rows) * act_row_bytes(dt, K));
  // The CPU core's rows of the same kind: fp8 reads bf16 rows here (fp32 ones on the CPU).
  const moecap::DType cdt = act_dtype(dt) == kBF16 ? moecap::DType::BF16 : moecap::DType(dt);
  std::vector<uint8_t> cpu(moecap::activation_row_bytes(cdt, K));
  int bad = 0;
  const int nb = (K + 31) / 32, Kp = padded_k(K);
  for (int r = 0; r < rows; ++r) {
    moecap::make_activation_row(cdt, x.data() + size_t(r) * K, K, cpu.data());
    const uint8_t* g = out.data() + size_t(r) * act_row_bytes(dt, K);
    if (cdt == moecap::DType::BF16) {
      bad += std::memcmp(g, cpu.data(), size_t(K) * 2) != 0;
    } else {
      moecap::QuantRowView v = moecap::quant_row_view(cpu.data(), K);
      bad += std::memcmp(g, v.q, size_t(K)) != 0;
      bad += std::memcmp(g + Kp, v.scale, size_t(nb) * 4) != 0;
    }
  }
  report(bad == 0, "act_rows",
         fmt("%s (%s) rows=%d K=%d: %d rows differ from make_activation_row", moecap::dtype_name(moecap::DType(dt)),
             cdt == moecap::DType::BF16 ? "bf16" : "int8", rows, K, bad));
  cudaFree(dx);
  cudaFree(dout);
}

// ---------------------------------------------------------------- whole layer
struct LayerCase {
  const char* name;
  int H, F, E, k, Fs;
  bool gated;
  int scoring, G, Gk;
  bool bias;
  float scaling;
  double cf;
  int variant = 0;  // 1: gpt-oss (router bias, expert biases, clamped SwiGLU), 2: Llama 4 (score on the input)
};

// The expert-variant arrays of a case (empty when it has none), shared by the CPU and GPU layers.
struct VariantArrays {
  std::vector<float> router, gate, up, down;
};
VariantArrays variant_arrays(const LayerCase& c) {
  VariantArrays v;
  if (c.variant == 1) {
    v.router = gaussian(size_t(c.E), 0.5f);
    v.gate = gaussian(size_t(c.E) * c.F, 0.3f);
    v.up = gaussian(size_t(c.E) * c.F, 0.3f);
    v.down = gaussian(size_t(c.E) * c.H, 0.3f);
  }
  return v;
}
void set_variant(moecap::LayerConfig& lc, const LayerCase& c, const VariantArrays& v) {
  lc.router_bias = v.router, lc.gate_bias = v.gate, lc.up_bias = v.up, lc.down_bias = v.down;
  if (c.variant == 1) lc.swiglu_limit = 0.5f, lc.swiglu_alpha = 1.702f;  // a small limit so the clamps act
  lc.score_on_input = c.variant == 2;
}
void set_variant(moecap_cuda_config_t& g, const LayerCase& c, const VariantArrays& v) {
  auto ptr = [](const std::vector<float>& a) { return a.empty() ? nullptr : a.data(); };
  g.router_bias = ptr(v.router), g.gate_bias = ptr(v.gate), g.up_bias = ptr(v.up), g.down_bias = ptr(v.down);
  if (c.variant == 1) g.swiglu_limit = 0.5f, g.swiglu_alpha = 1.702f;
  g.score_on_input = c.variant == 2;
}

const char* dt_name(int dt) { return moecap::dtype_name(moecap::DType(dt)); }

moecap_cuda_config_t abi_config(const LayerCase& c, int dt, const std::vector<float>& bias, int maxT) {
  moecap_cuda_config_t g;
  std::memset(&g, 0, sizeof g);
  g.size = sizeof g;
  g.hidden = c.H, g.intermediate = c.F, g.experts = c.E, g.top_k = c.k, g.scoring = c.scoring, g.renormalize = 1;
  g.routed_scaling_factor = c.scaling;
  g.selection_bias = c.bias ? bias.data() : nullptr;
  g.group_count = c.G, g.group_keep = c.Gk, g.shared_intermediate = c.Fs, g.shared_gated = c.gated;
  g.capacity_factor = c.cf, g.dtype = dt, g.device = 0, g.max_tokens = maxT;
  g.jitter_eps = moecap::LayerConfig().jitter_eps;
  return g;
}

moecap_cuda_weights_t seeded(uint64_t seed) {
  moecap_cuda_weights_t w;
  std::memset(&w, 0, sizeof w);
  w.size = sizeof w;
  w.use_seed = 1;
  w.seed = seed;
  return w;
}

// The weights as CudaLayer hands over a checkpoint's: fp32 router (and shared gate) rows, the
// experts packed by the core from the source's stored codes (experts_packed, shared_packed).
struct Prepacked {
  std::vector<float> router, shared_gate_weight;
  std::vector<uint8_t> experts, shared;
  moecap_cuda_weights_t w;
};
void prepack(const moecap::WeightSource& src, const LayerCase& c, int dt, Prepacked& p) {
  std::memset(&p.w, 0, sizeof p.w);
  p.w.size = sizeof p.w;
  p.router.resize(size_t(c.E) * c.H);
  for (int e = 0; e < c.E; ++e) src.row(moecap::Matrix::Router, 0, e, c.H, p.router.data() + size_t(e) * c.H);
  p.w.router = p.router.data();
  p.experts.resize(size_t(c.E) * expert_layout(dt, c.H, c.F).bytes);
  pack_routed_experts(dt, src, c.E, c.H, c.F, nullptr, p.experts.data(), 4);
  p.w.experts_packed = p.experts.data();
  if (c.Fs > 0) {
    p.shared.resize(expert_layout(dt, c.H, c.Fs).bytes);
    pack_expert(dt, src, moecap::Matrix::SharedGate, moecap::Matrix::SharedUp, moecap::Matrix::SharedDown, 0, c.H, c.Fs,
                p.shared.data(), 4);
    p.w.shared_packed = p.shared.data();
  }
  if (c.gated) {
    p.shared_gate_weight.resize(size_t(c.H));
    src.row(moecap::Matrix::SharedGateWeight, 0, 0, c.H, p.shared_gate_weight.data());
    p.w.shared_gate_weight = p.shared_gate_weight.data();
  }
}

struct GpuRun {
  std::vector<float> y, w;
  std::vector<int32_t> ids;
  moecap_cuda_stats_t st;
};

bool gpu_forward(moecap_cuda_layer* l, const std::vector<float>& x, int T, int k, int H, GpuRun& r) {
  r.y.assign(size_t(T) * H, 0);
  r.ids.assign(size_t(T) * k, 0);
  r.w.assign(size_t(T) * k, 0);
  std::memset(&r.st, 0, sizeof r.st);
  r.st.size = sizeof r.st;
  if (moecap_cuda_layer_forward(l, x.data(), T, r.y.data(), r.ids.data(), r.w.data(), &r.st) != 0) {
    report(false, "forward", moecap_cuda_last_error());
    return false;
  }
  return true;
}

// stored: the weights are a release's stored codes (mxfp4/fp8), pre-packed as CudaLayer hands them.
void check_layer(const LayerCase& c, int dt, bool stored = false) {
  const uint64_t seed = g_rng();
  std::vector<float> bias = gaussian(size_t(c.E), 0.05f);
  moecap::LayerConfig lc;
  lc.hidden = c.H, lc.intermediate = c.F, lc.experts = c.E, lc.top_k = c.k;
  lc.scoring = core_scoring(c.scoring);
  lc.routed_scaling_factor = c.scaling;
  if (c.bias) lc.selection_bias = bias;
  lc.group_count = c.G, lc.group_keep = c.Gk, lc.shared_intermediate = c.Fs, lc.shared_gated = c.gated;
  lc.capacity_factor = c.cf, lc.dtype = moecap::DType(dt), lc.threads = 0;
  const VariantArrays va = variant_arrays(c);
  set_variant(lc, c, va);
  std::shared_ptr<moecap::WeightSource> src;
  if (stored) {
    auto s = std::make_shared<StoredCodeWeights>();
    s->dtype = moecap::DType(dt), s->seed = seed;
    src = s;
  } else {
    src = std::make_shared<moecap::SeededWeights>(seed);
  }
  moecap::MoeLayer cpu(lc, src, "auto");
  Prepacked pre;
  if (stored) prepack(*src, c, dt, pre);
  const std::string label = stored ? std::string("stored-codes ") + c.name : std::string(c.name);
  const char* name = label.c_str();
  const int maxT = 67;
  std::vector<int> paths = {MOECAP_CUDA_PATH_SIMT};
  if (dt == kBF16) {
    paths.push_back(MOECAP_CUDA_PATH_TENSOR);
    paths.push_back(MOECAP_CUDA_PATH_TENSOR_BASIC);
  }
  for (int path : paths) {
    moecap_cuda_config_t g = abi_config(c, dt, bias, maxT);
    g.expert_path = path;
    set_variant(g, c, va);
    moecap_cuda_weights_t w = stored ? pre.w : seeded(seed);
    moecap_cuda_layer* l = moecap_cuda_layer_create(&g, &w);
    if (!l) {
      report(false, "layer", fmt("%s %s create: %s", name, dt_name(dt), moecap_cuda_last_error()));
      continue;
    }
    g.offload = 1;
    g.cache_slots = std::max(1, c.k - 1);  // fewer slots than experts per token: waves and evictions
    moecap_cuda_layer* lo = moecap_cuda_layer_create(&g, &w);
    if (!lo) report(false, "offload", fmt("%s create: %s", name, moecap_cuda_last_error()));
    for (int T : {1, 5, maxT}) {
      std::vector<float> x = gaussian(size_t(T) * c.H);
      moecap::ForwardResult ref;
      cpu.forward(x.data(), T, ref);
      GpuRun r, r2, ro;
      if (!gpu_forward(l, x, T, c.k, c.H, r) || !gpu_forward(l, x, T, c.k, c.H, r2)) continue;
      // Tokens whose routing differs can only be fp32 near-ties of CPU vs GPU logits; count them
      // and leave them out of the output comparison.
      int differ = 0;
      double num = 0, den = 0;
      for (int t = 0; t < T; ++t) {
        bool same = true;
        for (int j = 0; j < c.k; ++j) same &= ref.ids[size_t(t) * c.k + j] == r.ids[size_t(t) * c.k + j];
        if (!same) {
          ++differ;
          continue;
        }
        for (int h = 0; h < c.H; ++h) {
          const double d = double(r.y[size_t(t) * c.H + h]) - ref.output[size_t(t) * c.H + h];
          num += d * d;
          den += double(ref.output[size_t(t) * c.H + h]) * ref.output[size_t(t) * c.H + h];
        }
      }
      const double rel = std::sqrt(num / (den + 1e-300));
      // int8/int4/mxfp4: int8 activation rows on both sides; they differ only where a value of h
      // lands on the other side of an int8 rounding (at most 7e-4 seen on an H200). fp8: bf16 rows
      // here (x and h), fp32 ones on the CPU core: 73 fp8 checks of two H200 runs (random seeds)
      // ranged 2e-3..5.3e-3, so its budget is bf16 operands' 1e-2.
      const double tol = dt == kF32 ? 1e-5 : dt == kBF16 ? 2e-3 : dt == kFP8 ? 1e-2 : 5e-3;
      const bool det = r.y == r2.y && r.ids == r2.ids;
      const bool ok = rel <= tol && differ <= std::max(0, T / 50) && det && r.st.dropped == ref.stats.dropped;
      report(ok, "layer",
             fmt("%s %s %s T=%d: rel err %.2e (tol %.0e), routing differs on %d tokens, dropped %lld/%lld, "
                 "repeat %s",
                 name, dt_name(dt),
                 path == MOECAP_CUDA_PATH_TENSOR         ? "tensor"
                 : path == MOECAP_CUDA_PATH_TENSOR_BASIC ? "tensor-basic"
                                                         : "simt",
                 T, rel, tol, differ, (long long)r.st.dropped, (long long)ref.stats.dropped,
                 det ? "bitwise equal" : "DIFFERS"));
      if (lo && gpu_forward(lo, x, T, c.k, c.H, ro))
        report(ro.y == r.y && ro.ids == r.ids, "offload",
               fmt("%s %s T=%d slots=%d: %s, hits %lld misses %lld evictions %lld", name, dt_name(dt), T, g.cache_slots,
                   ro.y == r.y ? "bitwise equal to resident" : "DIFFERS from resident", (long long)ro.st.cache_hits,
                   (long long)ro.st.cache_misses, (long long)ro.st.evictions));
    }
    moecap_cuda_layer_destroy(l);
    if (lo) moecap_cuda_layer_destroy(lo);
  }
}

// Expert parallelism (moecap_cuda_layer_ep_*): two "ranks" in this process, each a layer holding
// half the experts (contiguous) and a share of the tokens (split in order), the exchange done
// here on the host as the core's does it (an expert's rows in origin, then token order). The
// output and routing must equal the single-process layer's bitwise (T = 67 takes the bf16 tensor
// path, T = 1 leaves rank 0 without tokens).
void check_ep(const LayerCase& c, int dt) {
  const uint64_t seed = g_rng();
  std::vector<float> bias = gaussian(size_t(c.E), 0.05f);
  const int maxT = 67, P = 2;
  moecap_cuda_weights_t w = seeded(seed);
  moecap_cuda_config_t g = abi_config(c, dt, bias, maxT);
  moecap_cuda_layer* full = moecap_cuda_layer_create(&g, &w);
  std::vector<std::vector<uint8_t>> held(P, std::vector<uint8_t>(size_t(c.E), 0));
  std::vector<moecap_cuda_layer*> rank(P, nullptr);
  for (int e = 0; e < c.E; ++e) held[size_t(e * P / c.E)][size_t(e)] = 1;
  for (int r = 0; r < P; ++r) {
    moecap_cuda_config_t gr = g;
    gr.held = held[size_t(r)].data();
    rank[size_t(r)] = moecap_cuda_layer_create(&gr, &w);
  }
  if (!full || !rank[0] || !rank[1]) {
    report(false, "ep", fmt("%s %s create: %s", c.name, dt_name(dt), moecap_cuda_last_error()));
  } else {
    const size_t arb = moecap_cuda_act_row_bytes(dt, c.H);
    for (int T : {1, 5, maxT}) {
      std::vector<float> x = gaussian(size_t(T) * c.H);
      GpuRun ref;
      if (!gpu_forward(full, x, T, c.k, c.H, ref)) continue;
      bool ok = true;
      std::string why;
      auto fail = [&](const std::string& m) {
        if (ok) why = m;
        ok = false;
      };
      std::vector<int> first(P + 1);
      for (int r = 0; r <= P; ++r) first[size_t(r)] = T * r / P;
      std::vector<std::vector<int32_t>> ids(P);
      std::vector<std::vector<float>> wts(P), res(P);
      std::vector<std::vector<uint8_t>> act(P);
      for (int r = 0; r < P; ++r) {
        const int Tr = first[size_t(r) + 1] - first[size_t(r)];
        ids[size_t(r)].assign(size_t(Tr) * c.k, 0), wts[size_t(r)].assign(size_t(Tr) * c.k, 0);
        act[size_t(r)].assign(size_t(Tr) * arb + 1, 0), res[size_t(r)].assign(size_t(Tr) * c.k * c.H + 1, 0);
        if (moecap_cuda_layer_ep_route(rank[size_t(r)], x.data() + size_t(first[size_t(r)]) * c.H, Tr, T,
                                       ids[size_t(r)].data(), wts[size_t(r)].data(), act[size_t(r)].data()) != 0)
          fail(std::string("ep_route: ") + moecap_cuda_last_error());
      }
      for (int q = 0; ok && q < P; ++q) {
        std::vector<int32_t> counts(size_t(c.E), 0);
        std::vector<uint8_t> rows;
        std::vector<float> scales;
        std::vector<std::pair<int, int64_t>> back;  // (origin, assignment) of each row
        for (int e = 0; e < c.E; ++e) {
          if (!held[size_t(q)][size_t(e)]) continue;
          for (int r = 0; r < P; ++r)
            for (size_t a = 0; a < ids[size_t(r)].size(); ++a)
              if (ids[size_t(r)][a] == e) {
                const uint8_t* row = act[size_t(r)].data() + (a / size_t(c.k)) * arb;
                rows.insert(rows.end(), row, row + arb);
                scales.push_back(wts[size_t(r)][a]);
                back.emplace_back(r, int64_t(a));
                ++counts[size_t(e)];
              }
        }
        std::vector<float> out(back.size() * c.H + 1);
        if (!back.empty() && moecap_cuda_layer_ep_compute(rank[size_t(q)], T, counts.data(), rows.data(), scales.data(),
                                                          out.data()) != 0)
          fail(std::string("ep_compute: ") + moecap_cuda_last_error());
        for (size_t i = 0; i < back.size(); ++i)
          std::memcpy(res[size_t(back[i].first)].data() + size_t(back[i].second) * c.H, out.data() + i * c.H,
                      sizeof(float) * c.H);
      }
      std::vector<float> y(size_t(T) * c.H + 1, 0);
      std::vector<int32_t> all_ids;
      for (int r = 0; ok && r < P; ++r) {
        if (moecap_cuda_layer_ep_combine(rank[size_t(r)], T, res[size_t(r)].data(),
                                         y.data() + size_t(first[size_t(r)]) * c.H) != 0)
          fail(std::string("ep_combine: ") + moecap_cuda_last_error());
        all_ids.insert(all_ids.end(), ids[size_t(r)].begin(), ids[size_t(r)].end());
      }
      y.pop_back();
      int differ = 0;
      for (size_t i = 0; i < y.size(); ++i) differ += std::memcmp(&y[i], &ref.y[i], 4) != 0;
      if (ok && all_ids != ref.ids) fail("routing differs from the single-process layer");
      if (ok && differ) fail(fmt("%d of %zu outputs differ from the single-process layer", differ, y.size()));
      report(ok, "ep",
             fmt("%s %s T=%d over 2 ranks: %s", c.name, dt_name(dt), T,
                 ok ? "bitwise equal to the single-process layer" : why.c_str()));
    }
  }
  if (full) moecap_cuda_layer_destroy(full);
  for (auto* l : rank)
    if (l) moecap_cuda_layer_destroy(l);
}

// Offload == resident, bitwise, for every policy at capacity 1 and a mid capacity, over a
// sequence of passes run twice (hits and evictions in the second round; static pins before it;
// prefetch of the next pass for LRU). Counters against values computed here from the resident
// run's expert counts: hits + misses = experts the pass routed to; loads = misses + prefetches;
// h2d bytes = loads × the GPU blob size; waves = ceil(experts / slots) (≥ that once pinned);
// capacity 1: at most one hit; everything prefetched is used when the pass fits the slots.
bool forward_counted(moecap_cuda_layer* l, const std::vector<float>& x, int T, const LayerCase& c, GpuRun& r,
                     std::vector<int32_t>& counts, std::vector<int32_t>& resident) {
  r.y.assign(size_t(T) * c.H, 0);
  r.ids.assign(size_t(T) * c.k, 0);
  r.w.assign(size_t(T) * c.k, 0);
  counts.assign(size_t(c.E), 0);
  resident.assign(size_t(c.E), -1);
  std::memset(&r.st, 0, sizeof r.st);
  r.st.size = sizeof r.st;
  r.st.expert_counts = counts.data();
  r.st.resident = resident.data();
  if (moecap_cuda_layer_forward(l, x.data(), T, r.y.data(), r.ids.data(), r.w.data(), &r.st) != 0) {
    report(false, "offload", fmt("%s forward: %s", c.name, moecap_cuda_last_error()));
    return false;
  }
  return true;
}

void check_offload(const LayerCase& c, int dt) {
  const uint64_t seed = g_rng();
  std::vector<float> bias = gaussian(size_t(c.E), 0.05f);
  const int maxT = 67;
  moecap_cuda_config_t g = abi_config(c, dt, bias, maxT);
  moecap_cuda_weights_t w = seeded(seed);
  moecap_cuda_layer* l = moecap_cuda_layer_create(&g, &w);
  if (!l) {
    report(false, "offload", fmt("%s %s create: %s", c.name, dt_name(dt), moecap_cuda_last_error()));
    return;
  }
  const std::vector<int> Ts = {1, 5, maxT, 1, 3, 1, 9};
  std::vector<std::vector<float>> xs;
  for (int T : Ts) xs.push_back(gaussian(size_t(T) * c.H));
  std::vector<GpuRun> ref(Ts.size());
  std::vector<std::vector<int>> routed(Ts.size());  // distinct experts of each pass
  std::vector<int32_t> counts, res;
  for (size_t i = 0; i < Ts.size(); ++i) {
    if (!forward_counted(l, xs[i], Ts[i], c, ref[i], counts, res)) return moecap_cuda_layer_destroy(l);
    for (int e = 0; e < c.E; ++e)
      if (counts[size_t(e)] > 0) routed[i].push_back(e);
  }
  moecap_cuda_layer_destroy(l);
  const double blob = double(moecap_cuda::expert_layout(dt, c.H, c.F).bytes);
  const char* pname[] = {"lru", "lfu", "lfru", "static"};
  for (int policy = MOECAP_CUDA_LRU; policy <= MOECAP_CUDA_STATIC; ++policy)
    for (int slots : {1, std::max(2, c.E / 2)}) {
      g.offload = 1, g.cache_slots = slots, g.cache_policy = policy;
      moecap_cuda_layer* lo = moecap_cuda_layer_create(&g, &w);
      if (!lo) {
        report(false, "offload", fmt("%s %s create: %s", c.name, pname[policy], moecap_cuda_last_error()));
        continue;
      }
      bool same = true, pinned = false;
      std::string bad;
      int64_t hits = 0, misses = 0, evictions = 0, waves = 0, prefetched = 0;
      for (int round = 0; round < 2 && bad.empty(); ++round)
        for (size_t i = 0; i < Ts.size() && bad.empty(); ++i) {
          if (policy == MOECAP_CUDA_STATIC && round == 1 && i == 0) {
            std::vector<int32_t> pins(size_t(c.E));
            const int n = moecap_cuda_layer_pin_static(lo, pins.data(), c.E);
            const int stream = std::max(1, std::min(c.k, slots / 2));
            if (n < 0 || n > std::max(0, slots - stream)) bad = fmt("pin_static returned %d", n);
            pinned = n > 0;
          }
          const std::vector<int>& need = routed[i];
          const bool fits = (int)need.size() <= slots;
          const bool pre = policy == MOECAP_CUDA_LRU && round == 1 && slots > 1;
          if (pre) moecap_cuda_layer_prefetch(lo, need.data(), (int)need.size());
          GpuRun r;
          if (!forward_counted(lo, xs[i], Ts[i], c, r, counts, res)) {
            bad = "forward failed";
            break;
          }
          same &= r.y == ref[i].y && r.ids == ref[i].ids;
          const moecap_cuda_stats_t& st = r.st;
          const int64_t n = (int64_t)need.size(), eff = std::min(slots, c.E);
          const int64_t want_waves = (n + eff - 1) / eff;
          if (st.cache_hits + st.cache_misses != n)
            bad = fmt("hits %lld + misses %lld != %lld routed experts", (long long)st.cache_hits,
                      (long long)st.cache_misses, (long long)n);
          else if (st.loads != st.cache_misses + st.prefetch_issued)
            bad = fmt("loads %lld != misses + prefetches", (long long)st.loads);
          else if (st.h2d_bytes != double(st.loads) * blob)
            bad = fmt("h2d bytes %.0f != %lld loads x %.0f", st.h2d_bytes, (long long)st.loads, blob);
          else if (pinned ? st.waves < want_waves : st.waves != want_waves)
            bad = fmt("waves %lld, want %lld", (long long)st.waves, (long long)want_waves);
          else if (slots == 1 && st.cache_hits > 1) bad = fmt("capacity 1 with %lld hits", (long long)st.cache_hits);
          else if (st.resident_count > eff || st.resident_count < std::min<int64_t>(n, eff))
            bad = fmt("%d resident", st.resident_count);
          else if (pre && fits && (st.cache_misses != 0 || st.prefetch_used != st.prefetch_issued))
            bad = fmt("prefetched pass: misses %lld, prefetch used %lld of %lld", (long long)st.cache_misses,
                      (long long)st.prefetch_used, (long long)st.prefetch_issued);
          for (int j = 1; j < st.resident_count && bad.empty(); ++j)
            if (res[size_t(j - 1)] >= res[size_t(j)]) bad = "resident list not ascending";
          hits += st.cache_hits, misses += st.cache_misses, evictions += st.evictions, waves += st.waves;
          prefetched += st.prefetch_issued;
        }
      report(same && bad.empty(), "offload",
             fmt("%s %s %s slots=%d: %s%s%s; hits %lld misses %lld evictions %lld waves %lld prefetched %lld", c.name,
                 dt_name(dt), pname[policy], slots, same ? "bitwise equal to resident" : "DIFFERS from resident",
                 bad.empty() ? "" : ", ", bad.c_str(), (long long)hits, (long long)misses, (long long)evictions,
                 (long long)waves, (long long)prefetched));
      moecap_cuda_layer_destroy(lo);
    }
}

// ---------------------------------------------------------------- ceilings
struct Ceilings {
  double d2d_gbs = 0, h2d_gbs = 0, gemm_tflops = 0;
  std::string gemm_source;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

template <class F>
double time_ms(F&& f, int warm, int reps) {
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  for (int i = 0; i < warm; ++i) f();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    CK(cudaEventRecord(a));
    f();
    CK(cudaEventRecord(b));
    CK(cudaEventSynchronize(b));
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return median(t);
}

// cuBLAS through dlopen (no link dependency): C = Aᵀ·B in bf16 with fp32 compute.
double cublas_bf16_tflops(int n, std::string& source) {
  const char* names[] = {"libcublas.so.13",
                         "libcublas.so.12",
                         "libcublas.so",
                         "/usr/local/cuda/lib64/libcublas.so.13",
                         "/usr/local/cuda/lib64/libcublas.so.12",
                         "/usr/local/cuda/lib64/libcublas.so"};
  void* h = nullptr;
  for (const char* nm : names)
    if ((h = dlopen(nm, RTLD_NOW | RTLD_LOCAL))) {
      source = std::string("cuBLAS (") + nm + ")";
      break;
    }
  if (!h) return 0;
  using Create = int (*)(void**);
  using Gemm = int (*)(void*, int, int, int, int, int, const void*, const void*, int, int, const void*, int, int,
                       const void*, void*, int, int, int, int);
  auto create = reinterpret_cast<Create>(dlsym(h, "cublasCreate_v2"));
  auto gemm = reinterpret_cast<Gemm>(dlsym(h, "cublasGemmEx"));
  if (!create || !gemm) return 0;
  void* handle = nullptr;
  if (create(&handle) != 0) return 0;
  void *A, *B, *C;
  CK(cudaMalloc(&A, size_t(n) * n * 2));
  CK(cudaMalloc(&B, size_t(n) * n * 2));
  CK(cudaMalloc(&C, size_t(n) * n * 2));
  CK(cudaMemset(A, 0x3c, size_t(n) * n * 2));
  CK(cudaMemset(B, 0x3c, size_t(n) * n * 2));
  const float one = 1, zero = 0;
  int rc = 0;
  // CUBLAS_OP_T = 1, CUBLAS_OP_N = 0, CUDA_R_16BF = 14, CUBLAS_COMPUTE_32F = 68, CUBLAS_GEMM_DEFAULT = -1
  const double ms =
      time_ms([&] { rc |= gemm(handle, 1, 0, n, n, n, &one, A, 14, n, B, 14, n, &zero, C, 14, n, 68, -1); }, 3, 10);
  cudaFree(A);
  cudaFree(B);
  cudaFree(C);
  if (rc != 0) return 0;
  return 2.0 * n * n * double(n) / (ms * 1e-3) / 1e12;
}

Ceilings measure_ceilings() {
  Ceilings c;
  const size_t bytes = size_t(1) << 30;
  void *a, *b, *hp;
  CK(cudaMalloc(&a, bytes));
  CK(cudaMalloc(&b, bytes));
  CK(cudaMemset(a, 1, bytes));
  double ms = time_ms([&] { CK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice)); }, 2, 10);
  c.d2d_gbs = 2.0 * bytes / (ms * 1e-3) / 1e9;  // read + write
  CK(cudaHostAlloc(&hp, bytes, cudaHostAllocDefault));
  std::memset(hp, 1, bytes);
  ms = time_ms([&] { CK(cudaMemcpyAsync(a, hp, bytes, cudaMemcpyHostToDevice)); }, 1, 5);
  c.h2d_gbs = bytes / (ms * 1e-3) / 1e9;
  cudaFreeHost(hp);
  cudaFree(a);
  cudaFree(b);
  c.gemm_tflops = cublas_bf16_tflops(8192, c.gemm_source);
  if (c.gemm_tflops <= 0) c.gemm_source = "none (no libcublas found: prefill ratio not computed)";
  return c;
}

// ---------------------------------------------------------------- bench
struct BenchRow {
  std::string shape, what;
  double ms, value, ceiling, ratio;
  std::string unit;
};

std::vector<BenchRow> g_rows;

void bench_layer(const char* shape, int H, int F, int E, int k, int dt, const std::vector<int>& Ts, const Ceilings& c,
                 bool offload, int slots, int path = MOECAP_CUDA_PATH_AUTO) {
  LayerCase lc{shape, H, F, E, k, 0, false, 0, 0, 0, false, 1.0f, 0};
  const int maxT = *std::max_element(Ts.begin(), Ts.end());
  std::vector<float> none;
  moecap_cuda_config_t g = abi_config(lc, dt, none, maxT);
  g.offload = offload;
  g.cache_slots = slots;
  g.expert_path = path;
  moecap_cuda_weights_t w = seeded(1234);
  auto t0 = std::chrono::steady_clock::now();
  moecap_cuda_layer* l = moecap_cuda_layer_create(&g, &w);
  if (!l) {
    report(false, "bench", fmt("%s %s create: %s", shape, dt_name(dt), moecap_cuda_last_error()));
    return;
  }
  const double create_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("      bench %s %s%s: layer built in %.1f s, %.2f GiB on the device\n", shape, dt_name(dt),
              offload ? " offload" : "", create_s, moecap_cuda_layer_device_bytes(l) / 1073741824.0);
  for (int T : Ts) {
    const int reps = T >= 1024 ? 8 : 30;
    std::vector<double> ex, tot, h2d_ms, h2d_b, ebytes, flops;
    for (int i = 0; i < reps + 3; ++i) {
      std::vector<float> x = gaussian(size_t(T) * H);  // fresh tokens: fresh experts each pass
      GpuRun r;
      if (!gpu_forward(l, x, T, k, H, r)) break;
      if (i < 3) continue;
      ex.push_back(r.st.experts_ms);
      tot.push_back(r.st.total_ms);
      h2d_ms.push_back(r.st.h2d_ms);
      h2d_b.push_back(r.st.h2d_bytes);
      ebytes.push_back(r.st.expert_bytes + r.st.shared_bytes);
      flops.push_back(r.st.flops - 2.0 * H * E * T);
    }
    if (ex.empty()) continue;
    const double ms = median(ex);
    BenchRow b;
    b.shape = shape;
    if (offload) {
      const double gbs = median(h2d_b) / (median(h2d_ms) * 1e-3) / 1e9;
      b.what = fmt("%s offload T=%d", dt_name(dt), T);
      b.ms = median(tot), b.value = gbs, b.ceiling = c.h2d_gbs, b.unit = "GB/s H2D";
      std::printf("      %s: copy busy %.3f ms of %.3f ms expert phase (overlap = copy time hidden under compute)\n",
                  b.what.c_str(), median(h2d_ms), ms);
    } else if (T <= 64) {
      b.what = fmt("%s decode T=%d", dt_name(dt), T);
      b.ms = ms, b.value = median(ebytes) / (ms * 1e-3) / 1e9, b.ceiling = c.d2d_gbs, b.unit = "GB/s";
    } else {
      b.what = fmt("%s prefill T=%d%s", dt_name(dt), T, path == MOECAP_CUDA_PATH_TENSOR_BASIC ? " basic" : "");
      b.ms = ms, b.value = median(flops) / (ms * 1e-3) / 1e12, b.ceiling = c.gemm_tflops, b.unit = "TFLOP/s";
    }
    b.ratio = b.ceiling > 0 ? b.value / b.ceiling : 0;
    std::printf("      %-8s %-26s %9.3f ms %9.1f %-9s (%.0f%% of %.1f)  total %.3f ms\n", shape, b.what.c_str(), b.ms,
                b.value, b.unit.c_str(), 100 * b.ratio, b.ceiling, median(tot));
    g_rows.push_back(b);
  }
  moecap_cuda_layer_destroy(l);
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, bench = true, checks = true;
  uint64_t seed = std::random_device{}() ^ (uint64_t(std::chrono::steady_clock::now().time_since_epoch().count()) << 1);
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) quick = true;
    else if (!std::strcmp(argv[i], "--no-bench")) bench = false;
    else if (!std::strcmp(argv[i], "--no-checks")) checks = false;
    else if (!std::strcmp(argv[i], "--seed") && i + 1 < argc) seed = std::strtoull(argv[++i], nullptr, 10);
  }
  g_rng.seed(seed);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // a crash after a check keeps every line before it
  moecap_cuda_probe_t p;
  std::memset(&p, 0, sizeof p);
  p.size = sizeof p;
  if (moecap_cuda_probe(0, &p) != 0) {
    std::printf("no CUDA device: %s\n", p.reason);
    return 77;
  }
  std::printf("device: %s, sm_%d%d, %d SMs, %.1f GiB, driver %d, runtime %d; seed %llu\n", p.name, p.cc_major,
              p.cc_minor, p.sm_count, p.total_memory / 1073741824.0, p.driver_version, p.runtime_version,
              (unsigned long long)seed);

  if (checks) {
    // Router: odd sizes, ties, grouped, sigmoid + bias + scaling.
    for (const RouterCase& c : std::vector<RouterCase>{{1, 8, 2, 0, 0, 0, false, true, false, 1.0f},
                                                       {37, 60, 4, 0, 0, 0, false, true, true, 1.0f},
                                                       {129, 64, 8, 0, 0, 0, false, false, false, 1.0f},
                                                       {77, 256, 8, 1, 8, 4, true, true, false, 2.5f},
                                                       {33, 256, 8, 1, 8, 4, true, true, true, 2.5f},
                                                       {51, 33, 33, 1, 0, 0, false, true, false, 1.0f},
                                                       {19, 128, 6, 0, 16, 3, false, true, true, 16.0f},
                                                       {45, 160, 6, 0, 8, 3, false, true, false, 16.0f, 1},
                                                       {41, 96, 8, 1, 8, 2, true, true, false, 2.5f, 0, -0.6f},
                                                       {29, 72, 6, 1, 6, 2, true, false, true, 1.0f, 1, -0.6f}})
      guarded("router", [&] { check_router(c); });
    // Sparsemixer (Phi-3.5-MoE, top-2): default and a wide mask threshold, ties, scaling.
    for (const RouterCase& c : std::vector<RouterCase>{{1, 16, 2, 2, 0, 0, false, false, false, 1.0f},
                                                       {53, 16, 2, 2, 0, 0, false, false, true, 1.0f},
                                                       {67, 61, 2, 2, 0, 0, false, false, false, 1.0f, 0, 0.f, 0.3f},
                                                       {31, 8, 2, 2, 0, 0, false, false, true, 2.0f, 0, 0.f, 1.0f}})
      guarded("router", [&] { check_router(c); });
    // Plan: one-token path, odd T, capacity drops, tensor padding, shared expert.
    guarded("plan", [&] { check_plan(1, 8, 64, 0, 1, false); });
    guarded("plan", [&] { check_plan(1, 2, 8, 0, 1, true); });
    guarded("plan", [&] { check_plan(7, 3, 13, 0, 1, false); });
    guarded("plan", [&] { check_plan(517, 8, 64, 1.0, 1, true); });
    guarded("plan", [&] { check_plan(517, 8, 64, 0, 64, true); });
    guarded("plan", [&] { check_plan(4099, 2, 8, 1.25, 64, false); });
    guarded("plan", [&] { check_plan(333, 6, 160, 0.75, 64, true); });
    // Activation rows.
    guarded("act rows", [&] { check_act_rows(kBF16, 9, 201); });
    guarded("act rows", [&] { check_act_rows(kI8, 9, 201); });
    guarded("act rows", [&] { check_act_rows(kI8, 3, 1024); });
    guarded("act rows", [&] { check_act_rows(kMX4, 9, 201); });
    guarded("act rows", [&] { check_act_rows(kFP8, 9, 201); });
    // Whole layer: every dtype, odd sizes, shared + gated, grouped sigmoid with bias, capacity.
    const std::vector<LayerCase> layers = {
        {"plain", 200, 72, 12, 3, 0, false, 0, 0, 0, false, 1.0f, 0},
        {"shared", 136, 100, 9, 2, 40, true, 0, 0, 0, false, 1.0f, 0},
        {"grouped", 96, 48, 16, 4, 0, false, 1, 4, 2, true, 2.5f, 0},
        // F = 45: int8/int4 blocks of 13 in the tail. A tail of one seeded value (F = 33) falls below
        // the int8 fp16-scale floor (max|w| >= 127 * 2^-17) in about one row of 100, and the CPU
        // core rightly refuses such a layer.
        {"capacity", 64, 45, 8, 2, 0, false, 0, 0, 0, false, 1.0f, 1.0},
        {"sparsemixer", 104, 56, 16, 2, 0, false, 2, 0, 0, false, 1.0f, 0},
    };
    for (const auto& c : layers)
      for (int dt = 0; dt < kGpuDTypes; ++dt)
        guarded(fmt("layer %s %s", c.name, dt_name(dt)).c_str(), [&] { check_layer(c, dt); });
    // Expert variants against the CPU core: gpt-oss (router bias, expert biases, clamped SwiGLU)
    // and Llama 4 (sigmoid, the score applied to the expert input, shared expert).
    const std::vector<LayerCase> variants = {
        {"gpt-oss", 96, 40, 8, 2, 0, false, 0, 0, 0, false, 1.0f, 0, 1},
        {"llama4", 72, 36, 6, 2, 36, false, 1, 0, 0, false, 1.0f, 0, 2},
    };
    for (const auto& c : variants)
      for (int dt = 0; dt < kGpuDTypes; ++dt)
        guarded(fmt("layer %s %s", c.name, dt_name(dt)).c_str(), [&] { check_layer(c, dt); });
    // A release's stored codes (fp8 128×128 block scales, raised mxfp4 scales), pre-packed by the core.
    for (const auto& c : layers)
      for (int dt : {kMX4, kFP8})
        guarded(fmt("layer stored-codes %s %s", c.name, dt_name(dt)).c_str(), [&] { check_layer(c, dt, true); });
    // Expert parallelism: two ranks in this process, bitwise vs the single-process layer (no capacity factor).
    for (const auto& c : layers)
      if (c.cf == 0)
        for (int dt = 0; dt < kGpuDTypes; ++dt)
          guarded(fmt("ep %s %s", c.name, dt_name(dt)).c_str(), [&] { check_ep(c, dt); });
    // Offload: every policy, capacity 1 and E/2, against the resident layer (bf16: tensor path at T = 67).
    for (const auto& c : layers)
      for (int dt : {kBF16, kI4, kMX4, kFP8})
        guarded(fmt("offload %s %s", c.name, dt_name(dt)).c_str(), [&] { check_offload(c, dt); });
    std::printf("checks: %d failed\n", g_failures);
  }

  if (bench) {
    moecap_cuda_nvml_t n0, n1;
    std::memset(&n0, 0, sizeof n0);
    n0.size = n1.size = sizeof n0;
    const bool nvml = moecap_cuda_nvml_sample(0, &n0) == 0;
    if (!nvml) std::printf("nvml: unavailable: %s\n", n0.reason);
    const auto bench_start = std::chrono::steady_clock::now();
    const Ceilings c = measure_ceilings();
    std::printf(
        "ceilings (measured now): device copy %.0f GB/s (read+write), pinned H2D %.1f GB/s, bf16 GEMM %.0f TFLOP/s "
        "[%s]\n",
        c.d2d_gbs, c.h2d_gbs, c.gemm_tflops, c.gemm_source.c_str());
    const std::vector<int> decode = quick ? std::vector<int>{1, 16} : std::vector<int>{1, 4, 16};
    guarded("bench", [&] { bench_layer("OLMoE", 2048, 1024, 64, 8, kBF16, {1, 4, 16, 4096}, c, false, 0); });
    guarded("bench", [&] { bench_layer("OLMoE", 2048, 1024, 64, 8, kI4, decode, c, false, 0); });
    guarded("bench", [&] {
      bench_layer("OLMoE", 2048, 1024, 64, 8, kBF16, {4096}, c, false, 0, MOECAP_CUDA_PATH_TENSOR_BASIC);
    });
    guarded("bench", [&] { bench_layer("Mixtral", 4096, 14336, 8, 2, kBF16, {1, 4, 16, 4096}, c, false, 0); });
    if (!quick) guarded("bench", [&] { bench_layer("Mixtral", 4096, 14336, 8, 2, kI8, decode, c, false, 0); });
    // The block formats' decode (and their SIMT prefill) on the same shapes, vs the same copy ceiling.
    guarded("bench", [&] { bench_layer("OLMoE", 2048, 1024, 64, 8, kMX4, {1, 4, 16, 512}, c, false, 0); });
    guarded("bench", [&] { bench_layer("OLMoE", 2048, 1024, 64, 8, kFP8, {1, 4, 16, 512}, c, false, 0); });
    if (!quick) guarded("bench", [&] { bench_layer("Mixtral", 4096, 14336, 8, 2, kMX4, decode, c, false, 0); });
    if (!quick) guarded("bench", [&] { bench_layer("Mixtral", 4096, 14336, 8, 2, kFP8, decode, c, false, 0); });
    guarded("bench", [&] { bench_layer("OLMoE", 2048, 1024, 64, 8, kBF16, {1, 16}, c, true, 16); });
    if (nvml && moecap_cuda_nvml_sample(0, &n1) == 0) {
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - bench_start).count();
      std::printf(
          "nvml (measured): %.0f J over the %.1f s bench = %.0f W average; now %.0f W, SM %d MHz, memory %d MHz, "
          "%.1f of %.1f GiB used\n",
          n1.energy_j - n0.energy_j, s, (n1.energy_j - n0.energy_j) / s, n1.power_w, n1.sm_clock_mhz, n1.mem_clock_mhz,
          n1.memory_used / 1073741824.0, n1.memory_total / 1073741824.0);
    }
    std::printf("\n%-8s %-26s %10s %12s %12s %7s\n", "shape", "case", "ms", "achieved", "ceiling", "ratio");
    for (const auto& r : g_rows)
      std::printf("%-8s %-26s %10.3f %8.1f %-3s %8.1f %-3s %6.0f%%\n", r.shape.c_str(), r.what.c_str(), r.ms, r.value,
                  r.unit == "TFLOP/s" ? "TF" : "GB", r.ceiling, r.unit == "TFLOP/s" ? "TF" : "GB", 100 * r.ratio);
    std::printf(
        "(decode: distinct-expert bytes / expert-phase time vs device copy; prefill: expert FLOP / expert-phase "
        "time vs dense bf16 GEMM; offload: H2D bytes / copy time vs pinned copy)\n");
  }
  std::printf("%s: %d check%s failed\n", g_failures ? "FAIL" : "OK", g_failures, g_failures == 1 ? "" : "s");
  return g_failures ? 1 : 0;
}
