#include "moe_layer_wrap.h"

#include <algorithm>

#include "addon_state.h"
#include "backend/cuda_loader.h"
#include "layer_options.h"
#include "offload_stats.h"
#include "promise_worker.h"
#include "runtime/memory_info.h"
#include "weights/activation_rows.h"

namespace moecap_binding {

// The stats every backend reports; `isa` and `threads` say where the pass ran.
Napi::Object pass_stats_object(Napi::Env env, const moecap::ForwardStats& s, const char* isa, int threads,
                               moecap::DType dtype) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("tokens", s.tokens);
  o.Set("distinctExperts", s.distinct_experts);
  o.Set("assignments", double(s.assignments));
  o.Set("dropped", double(s.dropped));
  o.Set("capacity", s.capacity < 0 ? env.Null() : Napi::Number::New(env, double(s.capacity)));
  o.Set("expertBytes", s.expert_bytes);
  o.Set("sharedBytes", s.shared_bytes);
  o.Set("routerBytes", s.router_bytes);
  o.Set("flops", s.flops);
  o.Set("timeNs", double(s.total_ns));
  o.Set("routeNs", double(s.route_ns));
  o.Set("expertsNs", double(s.experts_ns));
  o.Set("combineNs", double(s.combine_ns));
  Napi::Int32Array counts = Napi::Int32Array::New(env, s.expert_counts.size());
  std::copy(s.expert_counts.begin(), s.expert_counts.end(), counts.Data());
  o.Set("expertCounts", counts);
  o.Set("isa", isa);
  o.Set("threads", threads);
  o.Set("dtype", moecap::dtype_name(dtype));
  return o;
}

Napi::Object forward_stats_object(Napi::Env env, const moecap::ForwardStats& s, const moecap::MoeLayer& layer) {
  Napi::Object o = pass_stats_object(env, s, layer.isa(), layer.threads(), layer.config().dtype);
  o.Set("computeNs", double(s.compute_ns));
  if (s.offloaded) {
    Napi::Object off = offload_stats_object(env, s.offload);
    off.Set("overlapEfficiency",
            s.total_ns > 0 ? double(std::max(s.offload.io_ns, s.compute_ns)) / double(s.total_ns) : 0.0);
    Napi::Int32Array r = Napi::Int32Array::New(env, s.resident.size());
    std::copy(s.resident.begin(), s.resident.end(), r.Data());
    off.Set("resident", r);
    o.Set("offload", off);
  }
  return o;
}

moecap::ExpertCache& offload_cache(Napi::Env env, moecap::MoeLayer& layer) {
  if (!layer.cache()) throw Napi::Error::New(env, "offload is not enabled (create it with an `offload` option)");
  return *layer.cache();
}

namespace {

template <class T, class A>
A typed_copy(Napi::Env env, const std::vector<T>& v) {
  A a = A::New(env, v.size());
  std::copy(v.begin(), v.end(), a.Data());
  return a;
}

class CreateWorker : public PromiseWorker {
 public:
  CreateWorker(Napi::Env env, ParsedLayerOptions opts, moecap::BackendChoice choice, moecap::CudaLayerOptions cuda)
      : PromiseWorker(env), opts_(std::move(opts)), choice_(std::move(choice)), cuda_opts_(cuda) {}
  void Run() override {
    if (choice_.api) cuda_ = std::make_shared<moecap::CudaLayer>(choice_.api, opts_.config, *opts_.weights, cuda_opts_);
    else layer_ = std::make_shared<moecap::MoeLayer>(opts_.config, opts_.weights, opts_.isa, opts_.offload);
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object obj = AddonState::get(env).layer_ctor.New({});
    MoeLayerWrap* w = MoeLayerWrap::Unwrap(obj);
    if (cuda_) {
      auto ref = std::make_shared<MoeLayerWrap::CpuReference>();
      ref->config = opts_.config;
      ref->weights = opts_.weights;
      w->attach_cuda(std::move(cuda_), std::move(ref));
    }
    else w->attach(std::move(layer_));
    w->set_backend(choice_.backend, choice_.reason);
    return obj;
  }

 private:
  ParsedLayerOptions opts_;
  moecap::BackendChoice choice_;
  moecap::CudaLayerOptions cuda_opts_;
  std::shared_ptr<moecap::MoeLayer> layer_;
  std::shared_ptr<moecap::CudaLayer> cuda_;
};

// One pass on either backend. The CUDA layer has no router-only entry: route() runs a whole
// pass there and returns its ids and weights.
void run_pass(moecap::MoeLayer& l, const float* x, int T, bool route_only, moecap::ForwardResult& r) {
  if (route_only) l.route(x, T, r);
  else l.forward(x, T, r);
}
void run_pass(moecap::CudaLayer& l, const float* x, int T, bool, moecap::ForwardResult& r) { l.forward(x, T, r); }
Napi::Object stats_of(Napi::Env env, const moecap::ForwardStats& s, const moecap::MoeLayer& l) {
  return forward_stats_object(env, s, l);
}
Napi::Object stats_of(Napi::Env env, const moecap::ForwardStats& s, const moecap::CudaLayer& l) {
  Napi::Object o = pass_stats_object(env, s, "cuda", 0, l.config().dtype);
  if (s.offloaded) {  // the CPU offload's names; no overlapEfficiency (compute time is not split from copy waits)
    Napi::Object off = offload_stats_object(env, s.offload);
    Napi::Int32Array r = Napi::Int32Array::New(env, s.resident.size());
    std::copy(s.resident.begin(), s.resident.end(), r.Data());
    off.Set("resident", r);
    o.Set("offload", off);
  }
  return o;
}

// forward/route: the same result object whatever the backend.
template <class Layer>
class ForwardWorker : public PromiseWorker {
 public:
  ForwardWorker(Napi::Env env, std::shared_ptr<Layer> layer, std::vector<float> x, int T, bool route_only)
      : PromiseWorker(env), layer_(std::move(layer)), x_(std::move(x)), T_(T), route_only_(route_only) {}
  void Run() override { run_pass(*layer_, x_.data(), T_, route_only_, r_); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    if (!route_only_) o.Set("output", typed_copy<float, Napi::Float32Array>(env, r_.output));
    o.Set("expertIds", typed_copy<int32_t, Napi::Int32Array>(env, r_.ids));
    o.Set("expertWeights", typed_copy<float, Napi::Float32Array>(env, r_.weights));
    o.Set("stats", stats_of(env, r_.stats, *layer_));
    return o;
  }

 private:
  std::shared_ptr<Layer> layer_;
  std::vector<float> x_;
  int T_;
  bool route_only_;
  moecap::ForwardResult r_;
};

class ReferenceWorker : public PromiseWorker {
 public:
  ReferenceWorker(Napi::Env env, std::shared_ptr<moecap::MoeLayer> layer, std::vector<float> x, int T,
                  std::vector<int32_t> sample, std::shared_ptr<MoeLayerWrap::CpuReference> cuda_ref = nullptr)
      : PromiseWorker(env), layer_(std::move(layer)), x_(std::move(x)), T_(T), sample_(std::move(sample)),
        cuda_ref_(std::move(cuda_ref)) {}
  void Run() override {
    if (!cuda_ref_) return layer_->reference(x_.data(), T_, sample_, r_);
    // A CUDA layer: the fp64 reference reads only the master weights, so a CPU layer with the
    // smallest packing (int4) built once serves it.
    std::lock_guard<std::mutex> lock(cuda_ref_->mutex);
    if (!cuda_ref_->layer) {
      moecap::LayerConfig c = cuda_ref_->config;
      c.dtype = moecap::DType::I4;
      cuda_ref_->layer.reset(new moecap::MoeLayer(c, cuda_ref_->weights, "auto"));
    }
    cuda_ref_->layer->reference(x_.data(), T_, sample_, r_);
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("output", typed_copy<double, Napi::Float64Array>(env, r_.output));
    o.Set("expertIds", typed_copy<int32_t, Napi::Int32Array>(env, r_.ids));
    o.Set("expertWeights", typed_copy<double, Napi::Float64Array>(env, r_.weights));
    o.Set("dropped", double(r_.dropped));
    o.Set("sample", typed_copy<int32_t, Napi::Int32Array>(env, sample_));
    return o;
  }

 private:
  std::shared_ptr<moecap::MoeLayer> layer_;
  std::vector<float> x_;
  int T_;
  std::vector<int32_t> sample_;
  std::shared_ptr<MoeLayerWrap::CpuReference> cuda_ref_;
  moecap::ReferenceResult r_;
};

// Workspace rows a pass of T tokens needs, to refuse a batch that cannot fit before running it.
void check_pass_memory(Napi::Env env, const moecap::MoeLayer& l, int T) {
  const auto& c = l.config();
  double fp = (c.intermediate + 15) / 16 * 16, hp = (c.hidden + 31) / 32 * 32;
  double rows = double(T) * c.top_k + (c.shared_intermediate ? T : 0);
  double need = rows * (fp + hp) * 4 * 1.5 + double(T) * c.hidden * 12;
  double avail = double(moecap::available_memory_bytes());
  if (need > avail)
    throw Napi::RangeError::New(env, "x: a pass of " + std::to_string(T) + " tokens needs " + moecap::format_bytes(need) +
                                         " of workspace but only " + moecap::format_bytes(avail) +
                                         " of memory is available; split the batch");
}

}  // namespace

Napi::Function MoeLayerWrap::Define(Napi::Env env) {
  return DefineClass(env, "NativeMoeLayer",
                     {InstanceMethod<&MoeLayerWrap::Forward>("forward"), InstanceMethod<&MoeLayerWrap::Route>("route"),
                      InstanceMethod<&MoeLayerWrap::Reference>("reference"), InstanceMethod<&MoeLayerWrap::Info>("info"),
                      InstanceMethod<&MoeLayerWrap::Close>("close"),
                     InstanceMethod<&MoeLayerWrap::OffloadInfo>("offloadInfo"),
                     InstanceMethod<&MoeLayerWrap::PinStatic>("pinStatic"),
                     InstanceMethod<&MoeLayerWrap::ResetOffloadStats>("resetOffloadStats"),
                     InstanceMethod<&MoeLayerWrap::DropCache>("dropCache"),
                      InstanceAccessor<&MoeLayerWrap::IsClosed>("closed")});
}

MoeLayerWrap::MoeLayerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<MoeLayerWrap>(info) {}

std::shared_ptr<moecap::MoeLayer> MoeLayerWrap::live(Napi::Env env) {
  if (!layer_) throw Napi::Error::New(env, "this MoE layer is closed (or was never created through createMoeLayer)");
  return layer_;
}

namespace {
Napi::Value cuda_pass(const Napi::CallbackInfo& info, const std::shared_ptr<moecap::CudaLayer>& layer, bool route_only) {
  int T = 0;
  std::vector<float> x = read_tokens(info.Env(), info[0], layer->config().hidden, "x", &T);
  if (T > layer->options().max_tokens)
    throw Napi::RangeError::New(info.Env(), "x: " + std::to_string(T) + " tokens exceed maxTokens (" +
                                                std::to_string(layer->options().max_tokens) + ") of this CUDA layer");
  auto* w = new ForwardWorker<moecap::CudaLayer>(info.Env(), layer, std::move(x), T, route_only);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}
}  // namespace

Napi::Value MoeLayerWrap::Forward(const Napi::CallbackInfo& info) {
  if (cuda_) return cuda_pass(info, cuda_, false);
  auto layer = live(info.Env());
  int T = 0;
  std::vector<float> x = read_tokens(info.Env(), info[0], layer->config().hidden, "x", &T);
  check_pass_memory(info.Env(), *layer, T);
  auto* w = new ForwardWorker<moecap::MoeLayer>(info.Env(), layer, std::move(x), T, false);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Value MoeLayerWrap::Route(const Napi::CallbackInfo& info) {
  if (cuda_) return cuda_pass(info, cuda_, true);
  auto layer = live(info.Env());
  int T = 0;
  std::vector<float> x = read_tokens(info.Env(), info[0], layer->config().hidden, "x", &T);
  auto* w = new ForwardWorker<moecap::MoeLayer>(info.Env(), layer, std::move(x), T, true);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Value MoeLayerWrap::Reference(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<moecap::MoeLayer> layer = cuda_ ? nullptr : live(env);
  const int hidden = cuda_ ? cuda_->config().hidden : layer->config().hidden;
  int T = 0;
  std::vector<float> x = read_tokens(env, info[0], hidden, "x", &T);
  std::vector<int32_t> sample;
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
      throw Napi::TypeError::New(env, "sample must be an Int32Array of token indices");
    Napi::Int32Array s = info[1].As<Napi::Int32Array>();
    for (size_t i = 0; i < s.ElementLength(); ++i) {
      if (s[i] < 0 || s[i] >= T)
        throw Napi::RangeError::New(env, "sample[" + std::to_string(i) + "] = " + std::to_string(s[i]) +
                                             " is not a token index in [0, " + std::to_string(T) + ")");
      sample.push_back(s[i]);
    }
  } else {
    for (int t = 0; t < T; ++t) sample.push_back(t);
  }
  auto* w = new ReferenceWorker(env, layer, std::move(x), T, std::move(sample), cuda_ ? cuda_ref_ : nullptr);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Value MoeLayerWrap::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (cuda_) {
    const auto& c = cuda_->config();
    Napi::Object o = Napi::Object::New(env);
    o.Set("hidden", c.hidden);
    o.Set("intermediate", c.intermediate);
    o.Set("experts", c.experts);
    o.Set("topK", c.top_k);
    o.Set("dtype", moecap::dtype_name(c.dtype));
    o.Set("isa", "cuda");
    o.Set("isaNote", env.Null());
    o.Set("threads", 0);
    o.Set("packedBytes", cuda_->device_bytes());
    o.Set("expertBytes", cuda_->expert_bytes());
    o.Set("backend", backend_);
    o.Set("backendReason", backend_reason_);
    o.Set("maxTokens", cuda_->options().max_tokens);
    o.Set("offload", env.Null());  // the CUDA layer keeps its own device cache (cudaCacheSlots)
    return o;
  }
  auto l = live(env);
  const auto& c = l->config();
  Napi::Object o = Napi::Object::New(env);
  o.Set("hidden", c.hidden);
  o.Set("intermediate", c.intermediate);
  o.Set("experts", c.experts);
  o.Set("topK", c.top_k);
  o.Set("dtype", moecap::dtype_name(c.dtype));
  o.Set("isa", l->isa());
  o.Set("isaNote", l->isa_note().empty() ? env.Null() : Napi::String::New(env, l->isa_note()));
  o.Set("threads", l->threads());
  o.Set("pinnedThreads", l->pinned_threads());
  o.Set("packedBytes", l->packed_bytes());
  o.Set("expertBytes", l->expert_bytes());
  o.Set("backend", backend_);
  o.Set("backendReason", backend_reason_);
  o.Set("offload", l->cache() ? Napi::Value(offload_info_object(env, *l->cache())) : env.Null());
  return o;
}

Napi::Value MoeLayerWrap::OffloadInfo(const Napi::CallbackInfo& info) {
  auto l = live(info.Env());
  return offload_info_object(info.Env(), offload_cache(info.Env(), *l));
}

// Static policy: the passes so far were the profile run; pins the most used experts.
Napi::Value MoeLayerWrap::PinStatic(const Napi::CallbackInfo& info) {
  std::vector<int> p;
  if (cuda_) {
    if (cuda_->options().cache_slots <= 0)
      throw Napi::Error::New(info.Env(), "offload is not enabled (create it with an `offload` option or cudaCacheSlots)");
    try {
      p = cuda_->pin_static();
    } catch (const std::exception& e) {
      throw Napi::Error::New(info.Env(), e.what());
    }
  } else {
    p = offload_cache(info.Env(), *live(info.Env())).pin_static();
  }
  Napi::Int32Array a = Napi::Int32Array::New(info.Env(), p.size());
  std::copy(p.begin(), p.end(), a.Data());
  return a;
}

Napi::Value MoeLayerWrap::ResetOffloadStats(const Napi::CallbackInfo& info) {
  auto l = live(info.Env());
  offload_cache(info.Env(), *l).reset_stats();
  return info.Env().Undefined();
}

Napi::Value MoeLayerWrap::DropCache(const Napi::CallbackInfo& info) {
  auto l = live(info.Env());
  offload_cache(info.Env(), *l).file().drop_cache();
  return info.Env().Undefined();
}

Napi::Value MoeLayerWrap::Close(const Napi::CallbackInfo& info) {
  layer_.reset();
  cuda_.reset();
  return info.Env().Undefined();
}

Napi::Value MoeLayerWrap::IsClosed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !layer_ && !cuda_);
}

Napi::Value CreateLayer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ParsedLayerOptions opts = parse_layer_options(env, info[0]);
  try {
    moecap::validate_config(opts.config);
  } catch (const moecap::Error& e) {
    if (e.kind() == moecap::ErrorKind::Type) throw Napi::TypeError::New(env, e.what());
    throw Napi::RangeError::New(env, e.what());
  }
  // Backend: 'cpu' | 'cuda' | 'auto' (default; MOECAP_BACKEND overrides). 'auto' runs on the CPU with
  // the reason when CUDA is unusable; an explicit 'cuda' that is unusable is an error with that reason.
  Napi::Object o = info[0].As<Napi::Object>();
  std::string requested = "auto";
  if (o.Has("backend") && !o.Get("backend").IsUndefined()) {
    if (!o.Get("backend").IsString()) throw Napi::TypeError::New(env, "backend must be a string: 'cpu', 'cuda' or 'auto'");
    requested = o.Get("backend").As<Napi::String>().Utf8Value();
  }
  moecap::CudaLayerOptions cuda;
  auto int_option = [&](const char* name, int lo, int hi, int* out) {
    if (!o.Has(name) || o.Get(name).IsUndefined()) return;
    Napi::Value v = o.Get(name);
    if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string(name) + " must be an integer");
    const double d = v.As<Napi::Number>().DoubleValue();
    if (d != double(int64_t(d)) || d < lo || d > hi)
      throw Napi::RangeError::New(env, std::string(name) + " must be an integer in [" + std::to_string(lo) + ", " +
                                           std::to_string(hi) + "], got " + v.ToString().Utf8Value());
    *out = int(d);
  };
  int_option("maxTokens", 1, 1 << 20, &cuda.max_tokens);
  int_option("cudaDevice", 0, 1023, &cuda.device);
  int_option("cudaCacheSlots", 0, 1 << 20, &cuda.cache_slots);
  // `offload` on the CUDA backend: device cache slots with the same policy names (already validated);
  // the slow tier is pinned host memory, so path/coldCache/prefetch do not apply. cudaCacheSlots,
  // when given, sets the slot count.
  if (opts.offload.enabled) {
    cuda.policy = opts.offload.policy;
    if (cuda.cache_slots == 0) {
      cuda.cache_slots = opts.offload.capacity_experts;
      cuda.cache_bytes = opts.offload.capacity_bytes;
    }
  }
  moecap::BackendChoice choice;
  try {
    choice = moecap::choose_backend(requested);
  } catch (const moecap::Error& e) {
    throw Napi::RangeError::New(env, e.what());
  }
  if (choice.requested == "cuda" && choice.backend != "cuda")
    throw Napi::Error::New(env, "backend 'cuda' is not usable here: " + choice.reason);
  auto* w = new CreateWorker(env, std::move(opts), std::move(choice), cuda);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

}  // namespace moecap_binding
