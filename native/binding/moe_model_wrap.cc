#include "moe_model_wrap.h"

#include <algorithm>
#include <cmath>

#include "addon_state.h"
#include "js_error.h"
#include "layer_options.h"
#include "moe_layer_wrap.h"
#include "offload_stats.h"
#include "promise_worker.h"

namespace moecap_binding {
namespace {

using moecap::ErrorCode;

struct ParsedModelOptions {
  ParsedLayerOptions layer;
  int layers = 0;
  uint64_t seed = 0;
  std::vector<ParsedLayerOptions> each;  // { layers: [layer options...] }: one per layer
};

class CreateModelWorker : public PromiseWorker {
 public:
  CreateModelWorker(Napi::Env env, ParsedModelOptions opts) : PromiseWorker(env), opts_(std::move(opts)) {}
  void Run() override {
    std::vector<std::shared_ptr<const moecap::WeightSource>> w;
    if (!opts_.each.empty()) {
      std::vector<moecap::LayerConfig> cfgs;
      std::vector<moecap::OffloadConfig> offs;
      for (auto& e : opts_.each) {
        cfgs.push_back(e.config);
        offs.push_back(e.offload);
        w.push_back(e.weights);
      }
      model_ = std::make_shared<moecap::MoeModel>(cfgs, w, opts_.each[0].isa, offs);
      return;
    }
    for (int l = 0; l < opts_.layers; ++l)
      w.push_back(std::make_shared<moecap::SeededWeights>(opts_.seed + uint64_t(l)));
    model_ = std::make_shared<moecap::MoeModel>(opts_.layer.config, w, opts_.layer.isa, opts_.layer.offload);
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object obj = AddonState::get(env).model_ctor.New({});
    MoeModelWrap::Unwrap(obj)->attach(std::move(model_));
    return obj;
  }

 private:
  ParsedModelOptions opts_;
  std::shared_ptr<moecap::MoeModel> model_;
};

class ModelForwardWorker : public PromiseWorker {
 public:
  ModelForwardWorker(Napi::Env env, std::shared_ptr<moecap::MoeModel> m, std::vector<float> x, int T)
      : PromiseWorker(env), model_(std::move(m)), x_(std::move(x)), T_(T) {}
  void Run() override { model_->forward(x_.data(), T_, r_); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    Napi::Float32Array out = Napi::Float32Array::New(env, r_.output.size());
    std::copy(r_.output.begin(), r_.output.end(), out.Data());
    o.Set("output", out);
    Napi::Object st = Napi::Object::New(env);
    st.Set("tokens", T_);
    st.Set("timeNs", double(r_.total_ns));
    st.Set("computeNs", double(r_.compute_ns));
    Napi::Array layers = Napi::Array::New(env, r_.layers.size());
    for (size_t l = 0; l < r_.layers.size(); ++l)
      layers.Set(uint32_t(l), forward_stats_object(env, r_.layers[l], model_->layer(int(l))));
    st.Set("layers", layers);
    if (model_->offloaded()) {
      Napi::Object off = offload_stats_object(env, r_.offload);
      off.Set("overlapEfficiency",
              r_.total_ns > 0 ? double(std::max(r_.offload.io_ns, r_.compute_ns)) / double(r_.total_ns) : 0.0);
      st.Set("offload", off);
      Napi::Object pred = Napi::Object::New(env);
      pred.Set("correct", double(r_.predicted_correct));
      pred.Set("total", double(r_.predicted_total));
      pred.Set("accuracy", r_.predicted_total > 0
                               ? Napi::Number::New(env, double(r_.predicted_correct) / double(r_.predicted_total))
                               : env.Null());
      st.Set("prediction", pred);
    }
    o.Set("stats", st);
    return o;
  }

 private:
  std::shared_ptr<moecap::MoeModel> model_;
  std::vector<float> x_;
  int T_;
  moecap::ModelResult r_;
};

}  // namespace

Napi::Function MoeModelWrap::Define(Napi::Env env) {
  return DefineClass(
      env, "NativeMoeModel",
      {InstanceMethod<&MoeModelWrap::Forward>("forward"), InstanceMethod<&MoeModelWrap::Info>("info"),
       InstanceMethod<&MoeModelWrap::OffloadStats>("offloadStats"),
       InstanceMethod<&MoeModelWrap::PinStatic>("pinStatic"),
       InstanceMethod<&MoeModelWrap::ResetOffloadStats>("resetOffloadStats"),
       InstanceMethod<&MoeModelWrap::DropCache>("dropCache"), InstanceMethod<&MoeModelWrap::Close>("close"),
       InstanceAccessor<&MoeModelWrap::IsClosed>("closed")});
}

MoeModelWrap::MoeModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<MoeModelWrap>(info) {}

std::shared_ptr<moecap::MoeModel> MoeModelWrap::live(Napi::Env env) {
  if (!model_)
    throw_js_error(env, ErrorCode::Closed, "this MoE model is closed (or was never created through createMoeModel)");
  return model_;
}

Napi::Value MoeModelWrap::Forward(const Napi::CallbackInfo& info) {
  auto m = live(info.Env());
  int T = 0;
  std::vector<float> x = read_tokens(info.Env(), info[0], m->layer(0).config().hidden, "x", &T);
  return queue_worker<ModelForwardWorker>(info.Env(), m, std::move(x), T);
}

Napi::Value MoeModelWrap::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto m = live(env);
  const auto& c = m->layer(0).config();
  Napi::Object o = Napi::Object::New(env);
  o.Set("layers", m->layers());
  o.Set("hidden", c.hidden);
  o.Set("intermediate", c.intermediate);
  o.Set("experts", c.experts);
  o.Set("topK", c.top_k);
  o.Set("dtype", moecap::dtype_name(c.dtype));
  o.Set("isa", m->layer(0).isa());
  o.Set("threads", m->layer(0).threads());
  double packed = 0;
  for (int l = 0; l < m->layers(); ++l) packed += m->layer(l).packed_bytes();
  o.Set("packedBytes", packed);
  o.Set("expertBytes", m->layer(0).expert_bytes());
  if (m->offloaded()) {
    Napi::Array a = Napi::Array::New(env, size_t(m->layers()));
    for (int l = 0; l < m->layers(); ++l) a.Set(uint32_t(l), offload_info_object(env, *m->layer(l).cache()));
    o.Set("offload", a);
  } else {
    o.Set("offload", env.Null());
  }
  return o;
}

// Cumulative counters summed over layers, plus the next-layer prediction accuracy.
Napi::Value MoeModelWrap::OffloadStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto m = live(env);
  if (!m->offloaded())
    throw_js_error(env, ErrorCode::InvalidOption, "offload is not enabled (create it with an `offload` option)");
  Napi::Object o = offload_stats_object(env, m->offload_stats());
  Napi::Object pred = Napi::Object::New(env);
  pred.Set("correct", double(m->predicted_correct()));
  pred.Set("total", double(m->predicted_total()));
  pred.Set("accuracy", m->predicted_total() > 0
                           ? Napi::Number::New(env, double(m->predicted_correct()) / double(m->predicted_total()))
                           : env.Null());
  o.Set("prediction", pred);
  return o;
}

Napi::Value MoeModelWrap::PinStatic(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto m = live(env);
  Napi::Array out = Napi::Array::New(env, size_t(m->layers()));
  for (int l = 0; l < m->layers(); ++l) {
    std::vector<int> p = offload_cache(env, m->layer(l)).pin_static();
    Napi::Int32Array a = Napi::Int32Array::New(env, p.size());
    std::copy(p.begin(), p.end(), a.Data());
    out.Set(uint32_t(l), a);
  }
  return out;
}

Napi::Value MoeModelWrap::ResetOffloadStats(const Napi::CallbackInfo& info) {
  auto m = live(info.Env());
  if (!m->offloaded())
    throw_js_error(info.Env(), ErrorCode::InvalidOption, "offload is not enabled (create it with an `offload` option)");
  m->reset_offload_stats();
  return info.Env().Undefined();
}

Napi::Value MoeModelWrap::DropCache(const Napi::CallbackInfo& info) {
  auto m = live(info.Env());
  for (int l = 0; l < m->layers(); ++l) offload_cache(info.Env(), m->layer(l)).file().drop_cache();
  return info.Env().Undefined();
}

Napi::Value MoeModelWrap::Close(const Napi::CallbackInfo& info) {
  model_.reset();
  return info.Env().Undefined();
}

Napi::Value MoeModelWrap::IsClosed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !model_); }

Napi::Value CreateModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw_js_type(env, ErrorCode::InvalidOption, "options must be an object");
  Napi::Object o = info[0].As<Napi::Object>();
  ParsedModelOptions p;
  Napi::Value lv = o.Get("layers");
  if (lv.IsArray()) {
    // A checkpoint model (lib/moe_model.ts builds it): each element a full layer's options.
    Napi::Array a = lv.As<Napi::Array>();
    if (a.Length() < 1 || a.Length() > 1024)
      throw_js_range(env, ErrorCode::InvalidOption, "layers must hold 1 to 1024 layer options");
    for (uint32_t i = 0; i < a.Length(); ++i) {
      p.each.push_back(parse_layer_options(env, a.Get(i)));
      call_core(env, [&] { moecap::validate_config(p.each.back().config); });
    }
    return queue_worker<CreateModelWorker>(env, std::move(p));
  }
  if (!lv.IsNumber()) throw_js_type(env, ErrorCode::InvalidOption, "layers is required (an integer in [1, 1024])");
  const double ld = lv.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(ld) || std::floor(ld) != ld || ld < 1 || ld > 1024)
    throw_js_range(env, ErrorCode::InvalidOption,
                   "layers must be an integer in [1, 1024], got " + lv.ToString().Utf8Value());
  p.layers = int(ld);
  p.layer = parse_layer_options(env, info[0], {"layers"});
  Napi::Object wo = o.Get("weights").As<Napi::Object>();  // parse_layer_options checked it is an object
  if (!wo.Has("seed") || !wo.Get("seed").IsNumber())
    throw_js_type(env, ErrorCode::InvalidOption, "weights must be { seed } for a model (layer l uses seed + l)");
  p.seed = uint64_t(wo.Get("seed").As<Napi::Number>().DoubleValue());
  call_core(env, [&] { moecap::validate_config(p.layer.config); });
  return queue_worker<CreateModelWorker>(env, std::move(p));
}

}  // namespace moecap_binding
