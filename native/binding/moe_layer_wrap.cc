#include "moe_layer_wrap.h"

#include <algorithm>

#include "addon_state.h"
#include "backend/cuda_layer.h"
#include "backend/cuda_loader.h"
#include "js_error.h"
#include "layer_options.h"
#include "offload_stats.h"
#include "promise_worker.h"

namespace moecap_binding {

using moecap::ErrorCode;

Napi::Object forward_stats_object(Napi::Env env, const moecap::ForwardStats& s, const moecap::LayerBackend& layer) {
  const moecap::LayerInfo info = layer.info();
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
  o.Set("isa", info.isa);
  o.Set("threads", info.threads);
  o.Set("dtype", moecap::dtype_name(layer.config().dtype));
  if (info.splits_compute_time) o.Set("computeNs", double(s.compute_ns));
  if (s.offloaded) {
    Napi::Object off = offload_stats_object(env, s.offload);
    // Only where compute time is split from waits (on the GPU it is not).
    if (info.splits_compute_time)
      off.Set("overlapEfficiency",
              s.total_ns > 0 ? double(std::max(s.offload.io_ns, s.compute_ns)) / double(s.total_ns) : 0.0);
    Napi::Int32Array r = Napi::Int32Array::New(env, s.resident.size());
    std::copy(s.resident.begin(), s.resident.end(), r.Data());
    off.Set("resident", r);
    o.Set("offload", off);
  }
  return o;
}

moecap::ExpertCache& offload_cache(Napi::Env env, moecap::LayerBackend& layer) {
  if (!layer.cache())
    throw_js_error(env, ErrorCode::InvalidOption, "offload is not enabled (create it with an `offload` option)");
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
  CreateWorker(Napi::Env env, ParsedLayerOptions opts, moecap::BackendChoice choice)
      : PromiseWorker(env), opts_(std::move(opts)), choice_(std::move(choice)) {}
  void Run() override {
    if (choice_.api) layer_ = std::make_shared<moecap::CudaLayer>(choice_.api, opts_.config, opts_.weights, opts_.cuda);
    else layer_ = std::make_shared<moecap::MoeLayer>(opts_.config, opts_.weights, opts_.isa, opts_.offload);
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object obj = AddonState::get(env).layer_ctor.New({});
    MoeLayerWrap::Unwrap(obj)->attach(std::move(layer_), choice_.backend, choice_.reason);
    return obj;
  }

 private:
  ParsedLayerOptions opts_;
  moecap::BackendChoice choice_;
  std::shared_ptr<moecap::LayerBackend> layer_;
};

// forward/route: the same result object whatever the backend.
class ForwardWorker : public PromiseWorker {
 public:
  ForwardWorker(Napi::Env env, std::shared_ptr<moecap::LayerBackend> layer, std::vector<float> x, int T,
                bool route_only)
      : PromiseWorker(env), layer_(std::move(layer)), x_(std::move(x)), T_(T), route_only_(route_only) {}
  void Run() override {
    if (route_only_) layer_->route(x_.data(), T_, r_);
    else layer_->forward(x_.data(), T_, r_);
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    if (!route_only_) o.Set("output", typed_copy<float, Napi::Float32Array>(env, r_.output));
    o.Set("expertIds", typed_copy<int32_t, Napi::Int32Array>(env, r_.ids));
    o.Set("expertWeights", typed_copy<float, Napi::Float32Array>(env, r_.weights));
    o.Set("stats", forward_stats_object(env, r_.stats, *layer_));
    return o;
  }

 private:
  std::shared_ptr<moecap::LayerBackend> layer_;
  std::vector<float> x_;
  int T_;
  bool route_only_;
  moecap::ForwardResult r_;
};

class ReferenceWorker : public PromiseWorker {
 public:
  ReferenceWorker(Napi::Env env, std::shared_ptr<moecap::LayerBackend> layer, std::vector<float> x, int T,
                  std::vector<int32_t> sample)
      : PromiseWorker(env), layer_(std::move(layer)), x_(std::move(x)), T_(T), sample_(std::move(sample)) {}
  void Run() override { layer_->reference(x_.data(), T_, sample_, r_); }
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
  std::shared_ptr<moecap::LayerBackend> layer_;
  std::vector<float> x_;
  int T_;
  std::vector<int32_t> sample_;
  moecap::ReferenceResult r_;
};

// reference()'s optional sample: an Int32Array of token indices in [0, T), else every token.
std::vector<int32_t> read_sample(Napi::Env env, const Napi::CallbackInfo& info, int T) {
  std::vector<int32_t> sample;
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
      throw_js_type(env, ErrorCode::InvalidArgument, "sample must be an Int32Array of token indices");
    Napi::Int32Array s = info[1].As<Napi::Int32Array>();
    for (size_t i = 0; i < s.ElementLength(); ++i) {
      if (s[i] < 0 || s[i] >= T)
        throw_js_range(env, ErrorCode::InvalidArgument,
                       "sample[" + std::to_string(i) + "] = " + std::to_string(s[i]) + " is not a token index in [0, " +
                           std::to_string(T) + ")");
      sample.push_back(s[i]);
    }
  } else {
    for (int t = 0; t < T; ++t) sample.push_back(t);
  }
  return sample;
}

}  // namespace

Napi::Function MoeLayerWrap::Define(Napi::Env env) {
  return DefineClass(
      env, "NativeMoeLayer",
      {InstanceMethod<&MoeLayerWrap::Forward>("forward"), InstanceMethod<&MoeLayerWrap::Route>("route"),
       InstanceMethod<&MoeLayerWrap::Reference>("reference"), InstanceMethod<&MoeLayerWrap::Info>("info"),
       InstanceMethod<&MoeLayerWrap::Close>("close"), InstanceMethod<&MoeLayerWrap::OffloadInfo>("offloadInfo"),
       InstanceMethod<&MoeLayerWrap::PinStatic>("pinStatic"),
       InstanceMethod<&MoeLayerWrap::ResetOffloadStats>("resetOffloadStats"),
       InstanceMethod<&MoeLayerWrap::DropCache>("dropCache"), InstanceAccessor<&MoeLayerWrap::IsClosed>("closed")});
}

MoeLayerWrap::MoeLayerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<MoeLayerWrap>(info) {}

std::shared_ptr<moecap::LayerBackend> MoeLayerWrap::live(Napi::Env env) {
  if (!layer_)
    throw_js_error(env, ErrorCode::Closed, "this MoE layer is closed (or was never created through createMoeLayer)");
  return layer_;
}

Napi::Value MoeLayerWrap::Pass(const Napi::CallbackInfo& info, bool route_only) {
  Napi::Env env = info.Env();
  auto layer = live(env);
  int T = 0;
  std::vector<float> x = read_tokens(env, info[0], layer->config().hidden, "x", &T);
  call_core(env, [&] { layer->check_pass(T, route_only); });
  return queue_worker<ForwardWorker>(env, layer, std::move(x), T, route_only);
}

Napi::Value MoeLayerWrap::Reference(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto layer = live(env);
  int T = 0;
  std::vector<float> x = read_tokens(env, info[0], layer->config().hidden, "x", &T);
  std::vector<int32_t> sample = read_sample(env, info, T);
  return queue_worker<ReferenceWorker>(env, layer, std::move(x), T, std::move(sample));
}

Napi::Value MoeLayerWrap::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto l = live(env);
  const auto& c = l->config();
  const moecap::LayerInfo li = l->info();
  Napi::Object o = Napi::Object::New(env);
  o.Set("hidden", c.hidden);
  o.Set("intermediate", c.intermediate);
  o.Set("experts", c.experts);
  o.Set("topK", c.top_k);
  o.Set("dtype", moecap::dtype_name(c.dtype));
  o.Set("isa", li.isa);
  o.Set("isaNote", li.isa_note.empty() ? env.Null() : Napi::String::New(env, li.isa_note));
  o.Set("threads", li.threads);
  if (li.pinned_threads) o.Set("pinnedThreads", *li.pinned_threads);
  if (li.huge_pages) o.Set("hugePages", *li.huge_pages);
  o.Set("packedBytes", li.packed_bytes);
  o.Set("expertBytes", li.expert_bytes);
  o.Set("backend", backend_);
  o.Set("backendReason", backend_reason_);
  if (li.max_tokens) o.Set("maxTokens", *li.max_tokens);
  // A CUDA layer keeps its own device cache (cudaCacheSlots): no cache to report here.
  o.Set("offload", l->cache() ? Napi::Value(offload_info_object(env, *l->cache())) : env.Null());
  return o;
}

Napi::Value MoeLayerWrap::OffloadInfo(const Napi::CallbackInfo& info) {
  auto l = live(info.Env());
  return offload_info_object(info.Env(), offload_cache(info.Env(), *l));
}

// Static policy: the passes so far were the profile run; pins the most used experts.
Napi::Value MoeLayerWrap::PinStatic(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto l = live(env);
  std::vector<int> p = call_core(env, [&] { return l->pin_static(); });
  Napi::Int32Array a = Napi::Int32Array::New(env, p.size());
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
  return info.Env().Undefined();
}

Napi::Value MoeLayerWrap::IsClosed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !layer_); }

Napi::Value CreateLayer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ParsedLayerOptions opts = parse_layer_options(env, info[0]);
  call_core(env, [&] { moecap::validate_config(opts.config); });
  // 'auto' runs on the CPU with the reason when CUDA is unusable; an explicit 'cuda' that is
  // unusable is an error with that reason.
  moecap::BackendChoice choice = call_core(env, [&] { return moecap::choose_backend(opts.backend); });
  if (choice.requested == "cuda" && choice.backend != "cuda")
    throw_js_error(env, ErrorCode::BackendUnavailable, "backend 'cuda' is not usable here: " + choice.reason);
  return queue_worker<CreateWorker>(env, std::move(opts), std::move(choice));
}

}  // namespace moecap_binding
