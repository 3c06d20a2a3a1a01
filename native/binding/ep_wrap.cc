#include "ep_wrap.h"

#include <set>

#include "backend/cuda_loader.h"
#include "backend/mpi_loader.h"
#include "ep/ep_layer.h"
#include "ep/ep_simulation.h"
#include "ep/expert_placement.h"
#include "js_error.h"
#include "layer_options.h"
#include "offload_stats.h"
#include "promise_worker.h"

namespace moecap_binding {

using moecap::ErrorCode;

namespace {

struct EpOptions {
  int ranks = 0;
  std::string placement = "contiguous";
  int redundant = 0;
  std::vector<double> loads;
  std::string transport = "mpi";  // how rows travel: 'mpi' (host buffers), 'nccl' (device buffers), 'auto'
};

int read_int(Napi::Env env, const Napi::Value& v, const std::string& name, int lo) {
  if (!v.IsNumber())
    throw_js_type(env, ErrorCode::InvalidOption, name + " must be an integer >= " + std::to_string(lo));
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= lo) || d != double(int64_t(d)) || d > 1e6)
    throw_js_range(env, ErrorCode::InvalidOption,
                   name + " must be an integer >= " + std::to_string(lo) + ", got " + v.ToString().Utf8Value());
  return int(d);
}

// The `ep` object: {ranks, placement?, redundant?, loads?, transport?}; unknown keys are refused.
EpOptions parse_ep_options(Napi::Env env, const Napi::Value& v) {
  if (!v.IsObject() || v.IsArray())
    throw_js_type(env, ErrorCode::InvalidOption,
                  "ep must be an object {ranks, placement?, redundant?, loads?, transport?}");
  Napi::Object o = v.As<Napi::Object>();
  const std::set<std::string> known = {"ranks", "placement", "redundant", "loads", "transport"};
  Napi::Array keys = o.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    const std::string k = keys.Get(i).ToString().Utf8Value();
    if (!known.count(k) && !o.Get(k).IsUndefined())
      throw_js_range(env, ErrorCode::InvalidOption,
                     "ep." + k + " is not an option (ranks, placement, redundant, loads, transport)");
  }
  EpOptions e;
  e.ranks = read_int(env, o.Get("ranks"), "ep.ranks", 1);
  if (!o.Get("placement").IsUndefined()) {
    if (!o.Get("placement").IsString())
      throw_js_type(env, ErrorCode::InvalidOption, "ep.placement must be 'contiguous' or 'balanced'");
    e.placement = o.Get("placement").As<Napi::String>().Utf8Value();
  }
  if (!o.Get("redundant").IsUndefined()) e.redundant = read_int(env, o.Get("redundant"), "ep.redundant", 0);
  const Napi::Value tv = o.Get("transport");
  if (!tv.IsUndefined()) {
    e.transport = tv.IsString() ? tv.As<Napi::String>().Utf8Value() : "";
    if (e.transport != "mpi" && e.transport != "nccl" && e.transport != "auto")
      throw_js_range(env, ErrorCode::InvalidOption,
                     "ep.transport must be 'mpi', 'nccl' or 'auto', got " + tv.ToString().Utf8Value());
  }
  const Napi::Value l = o.Get("loads");
  if (!l.IsUndefined()) {
    if (l.IsArray()) {
      Napi::Array a = l.As<Napi::Array>();
      for (uint32_t i = 0; i < a.Length(); ++i) {
        if (!a.Get(i).IsNumber()) throw_js_type(env, ErrorCode::InvalidOption, "ep.loads must be numbers");
        e.loads.push_back(a.Get(i).As<Napi::Number>().DoubleValue());
      }
    } else if (l.IsTypedArray()) {
      Napi::TypedArray t = l.As<Napi::TypedArray>();
      for (size_t i = 0; i < t.ElementLength(); ++i) e.loads.push_back(t.Get(uint32_t(i)).ToNumber().DoubleValue());
    } else {
      throw_js_type(env, ErrorCode::InvalidOption, "ep.loads must be an array of per-expert loads");
    }
  }
  return e;
}

Napi::Object pass_stats_object(Napi::Env env, const moecap::EpPassStats& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("rank", s.rank);
  o.Set("ranks", s.ranks);
  o.Set("routeNs", double(s.route_ns));
  o.Set("dispatchNs", double(s.dispatch_ns));
  o.Set("computeNs", double(s.compute_ns));
  o.Set("combineNs", double(s.combine_ns));
  o.Set("totalNs", double(s.total_ns));
  o.Set("rowsSent", double(s.rows_sent));
  o.Set("rowsReceived", double(s.rows_received));
  o.Set("dropped", double(s.dropped));
  o.Set("bytesSent", s.bytes_sent);
  o.Set("bytesReceived", s.bytes_received);
  o.Set("sharedNs", double(s.shared_ns));
  o.Set("rowsComputed", double(s.rows_computed));
  o.Set("expertsComputed", double(s.experts_computed));
  o.Set("sharedRows", double(s.shared_rows));
  o.Set("expertBytes", s.expert_bytes);
  o.Set("sharedBytes", s.shared_bytes);
  o.Set("rowBytes", s.row_bytes);
  Napi::Array c = Napi::Array::New(env, s.rank_compute_ns.size());
  for (size_t i = 0; i < s.rank_compute_ns.size(); ++i) c.Set(uint32_t(i), double(s.rank_compute_ns[i]));
  o.Set("rankComputeNs", c);
  o.Set("offload", s.offloaded ? Napi::Value(offload_stats_object(env, s.offload)) : env.Null());
  return o;
}

Napi::Int32Array int_array(Napi::Env env, const std::vector<int>& v) {
  Napi::Int32Array a = Napi::Int32Array::New(env, v.size());
  std::copy(v.begin(), v.end(), a.Data());
  return a;
}

class SimulateWorker : public PromiseWorker {
 public:
  SimulateWorker(Napi::Env env, ParsedLayerOptions opts, moecap::ExpertPlacement pl, std::vector<float> x, int T)
      : PromiseWorker(env), opts_(std::move(opts)), pl_(std::move(pl)), x_(std::move(x)), T_(T) {}
  void Run() override {
    r_ = moecap::simulate_ep(opts_.config, opts_.weights, opts_.isa, pl_, x_.data(), T_, opts_.offload);
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    Napi::Float32Array out = Napi::Float32Array::New(env, r_.output.size());
    std::copy(r_.output.begin(), r_.output.end(), out.Data());
    o.Set("output", out);
    Napi::Int32Array ids = Napi::Int32Array::New(env, r_.ids.size());
    std::copy(r_.ids.begin(), r_.ids.end(), ids.Data());
    o.Set("expertIds", ids);
    Napi::Array ranks = Napi::Array::New(env, r_.ranks.size());
    for (size_t r = 0; r < r_.ranks.size(); ++r) {
      Napi::Object s = pass_stats_object(env, r_.ranks[r]);
      s.Set("experts", int_array(env, r_.held[r]));
      ranks.Set(uint32_t(r), s);
    }
    o.Set("ranks", ranks);
    return o;
  }

 private:
  ParsedLayerOptions opts_;
  moecap::ExpertPlacement pl_;
  std::vector<float> x_;
  int T_;
  moecap::EpSimulationResult r_;
};

// One rank's pass under MPI.
class EpForwardWorker : public PromiseWorker {
 public:
  EpForwardWorker(Napi::Env env, std::shared_ptr<moecap::EpLayer> layer, std::vector<float> x, int T)
      : PromiseWorker(env), layer_(std::move(layer)), x_(std::move(x)), T_(T) {}
  void Run() override { layer_->forward(x_.data(), T_, r_, st_); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    Napi::Float32Array out = Napi::Float32Array::New(env, r_.output.size());
    std::copy(r_.output.begin(), r_.output.end(), out.Data());
    o.Set("output", out);
    Napi::Int32Array ids = Napi::Int32Array::New(env, r_.ids.size());
    std::copy(r_.ids.begin(), r_.ids.end(), ids.Data());
    o.Set("expertIds", ids);
    o.Set("stats", pass_stats_object(env, st_));
    return o;
  }

 private:
  std::shared_ptr<moecap::EpLayer> layer_;
  std::vector<float> x_;
  int T_;
  moecap::ForwardResult r_;
  moecap::EpPassStats st_;
};

class EpRouteWorker : public PromiseWorker {
 public:
  EpRouteWorker(Napi::Env env, std::shared_ptr<moecap::EpLayer> layer, std::vector<float> x, int T)
      : PromiseWorker(env), layer_(std::move(layer)), x_(std::move(x)), T_(T) {}
  void Run() override { layer_->route(x_.data(), T_, r_); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Int32Array ids = Napi::Int32Array::New(env, r_.ids.size());
    std::copy(r_.ids.begin(), r_.ids.end(), ids.Data());
    return ids;
  }

 private:
  std::shared_ptr<moecap::EpLayer> layer_;
  std::vector<float> x_;
  int T_;
  moecap::ForwardResult r_;
};

class EpGatherWorker : public PromiseWorker {
 public:
  EpGatherWorker(Napi::Env env, std::shared_ptr<moecap::EpLayer> layer, std::vector<uint8_t> data)
      : PromiseWorker(env), layer_(std::move(layer)), data_(std::move(data)) {}
  void Run() override { r_ = layer_->gather_to_root(data_.data(), int64_t(data_.size())); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Array a = Napi::Array::New(env, r_.size());
    for (size_t i = 0; i < r_.size(); ++i) {
      Napi::Uint8Array b = Napi::Uint8Array::New(env, r_[i].size());
      std::copy(r_[i].begin(), r_[i].end(), b.Data());
      a.Set(uint32_t(i), b);
    }
    return a;
  }

 private:
  std::shared_ptr<moecap::EpLayer> layer_;
  std::vector<uint8_t> data_;
  std::vector<std::vector<uint8_t>> r_;
};

class EpCreateWorker : public PromiseWorker {
 public:
  // `cuda`: the CUDA backend's entry points (backend 'cuda' chosen and usable), else null (CPU).
  EpCreateWorker(Napi::Env env, ParsedLayerOptions opts, moecap::ExpertPlacement pl, const moecap::EpWorld& w,
                 const moecap::CudaApi* cuda, bool nccl)
      : PromiseWorker(env), opts_(std::move(opts)), pl_(std::move(pl)), w_(w), cuda_(cuda), nccl_(nccl) {}
  void Run() override {
    auto tr = std::make_shared<moecap::MpiTransport>(w_);
    if (cuda_)
      layer_ = std::make_shared<moecap::EpLayer>(cuda_, opts_.config, opts_.weights, opts_.cuda, pl_, tr, nccl_);
    else layer_ = std::make_shared<moecap::EpLayer>(opts_.config, opts_.weights, opts_.isa, pl_, tr, opts_.offload);
  }
  Napi::Value Result(Napi::Env env) override {
    std::shared_ptr<moecap::EpLayer> layer = layer_;
    const int H = layer->config().hidden;
    Napi::Object o = Napi::Object::New(env);
    o.Set("rank", w_.rank);
    o.Set("ranks", w_.size);
    o.Set("backend", layer->cuda() ? "cuda" : "cpu");
    if (layer->cuda()) o.Set("device", layer->cuda()->options().device);
    std::vector<int> held = layer->held();
    o.Set("experts", int_array(env, held));
    o.Set("forward", Napi::Function::New(env, [layer, H](const Napi::CallbackInfo& info) -> Napi::Value {
            Napi::Env e = info.Env();
            int T = 0;
            std::vector<float> x;
            const bool empty = info[0].IsTypedArray() &&
                               info[0].As<Napi::TypedArray>().TypedArrayType() == napi_float32_array &&
                               info[0].As<Napi::TypedArray>().ElementLength() == 0;
            if (!empty) x = read_tokens(e, info[0], H, "x", &T);
            return queue_worker<EpForwardWorker>(e, layer, std::move(x), T);
          }));
    o.Set("route", Napi::Function::New(env, [layer, H](const Napi::CallbackInfo& info) -> Napi::Value {
            int T = 0;
            std::vector<float> x = read_tokens(info.Env(), info[0], H, "x", &T);
            return queue_worker<EpRouteWorker>(info.Env(), layer, std::move(x), T);
          }));
    o.Set("gather", Napi::Function::New(env, [layer](const Napi::CallbackInfo& info) -> Napi::Value {
            Napi::Env e = info.Env();
            if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
              throw_js_type(e, ErrorCode::InvalidArgument, "data must be a Uint8Array");
            Napi::Uint8Array a = info[0].As<Napi::Uint8Array>();
            return queue_worker<EpGatherWorker>(e, layer, std::vector<uint8_t>(a.Data(), a.Data() + a.ElementLength()));
          }));
    return o;
  }

 private:
  ParsedLayerOptions opts_;
  moecap::ExpertPlacement pl_;
  moecap::EpWorld w_;
  const moecap::CudaApi* cuda_;
  bool nccl_;  // the pass exchanges over NCCL (ep.transport 'nccl')
  std::shared_ptr<moecap::EpLayer> layer_;
};

class LinkWorker : public PromiseWorker {
 public:
  LinkWorker(Napi::Env env, const moecap::EpWorld& w) : PromiseWorker(env), w_(w) {}
  void Run() override { c_ = moecap::calibrate_link(w_); }
  Napi::Value Result(Napi::Env env) override {
    auto points = [&](const std::vector<moecap::LinkPoint>& v) {
      Napi::Array a = Napi::Array::New(env, v.size());
      for (size_t i = 0; i < v.size(); ++i) {
        Napi::Object p = Napi::Object::New(env);
        p.Set("bytes", double(v[i].bytes));
        p.Set("seconds", v[i].seconds);
        a.Set(uint32_t(i), p);
      }
      return a;
    };
    Napi::Object o = Napi::Object::New(env);
    o.Set("latencySeconds", c_.latency_s);
    o.Set("bandwidthBytesPerSecond", c_.bandwidth_bytes_s);
    o.Set("pingpong", points(c_.pingpong));
    o.Set("alltoall", points(c_.alltoall));
    return o;
  }

 private:
  moecap::EpWorld w_;
  moecap::LinkCalibration c_;
};

const moecap::EpWorld& loaded_world(Napi::Env env) {
  const moecap::EpWorld* w = moecap::ep_world_if_loaded();
  if (!w) throw_js_error(env, ErrorCode::BackendUnavailable, "MPI is not initialised: call epInit(ranks) first");
  return *w;
}

}  // namespace

Napi::Value EpInit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int ranks = read_int(env, info[0], "ep.ranks", 1);
  const moecap::EpWorld& w = call_core(env, [&]() -> const moecap::EpWorld& { return moecap::ep_world(ranks); });
  Napi::Object o = Napi::Object::New(env);
  o.Set("rank", w.rank);
  o.Set("ranks", w.size);
  o.Set("library", w.library);
  o.Set("builtMpi", w.built_mpi);
  o.Set("runtimeMpi", w.runtime_mpi);
  return o;
}

// The layer options and the ep options of a call (arguments 0 and 1), checked together, and the
// experts' placement over the ranks.
struct EpCall {
  ParsedLayerOptions opts;
  EpOptions ep;
  moecap::ExpertPlacement placement;
};

EpCall parse_ep_call(Napi::Env env, const Napi::CallbackInfo& info) {
  EpCall c{parse_layer_options(env, info[0]), parse_ep_options(env, info[1]), {}};
  c.placement = call_core(env, [&] {
    return moecap::place_experts(c.opts.config.experts, c.ep.ranks, c.ep.placement, c.ep.redundant, c.ep.loads);
  });
  return c;
}

// The CUDA backend's entry points when the call asks for backend 'cuda' (option or MOECAP_BACKEND),
// else null: expert parallelism runs on the GPU only when asked ('auto' stays on the CPU). Checked
// before MPI starts, so a missing GPU is named as such, whatever the launch.
const moecap::CudaApi* ep_cuda_backend(Napi::Env env, const ParsedLayerOptions& o) {
  const moecap::BackendChoice choice = call_core(env, [&] { return moecap::choose_backend(o.backend); });
  if (choice.requested != "cuda") return nullptr;
  if (choice.backend != "cuda")
    throw_js_error(env, ErrorCode::BackendUnavailable, "ep: backend 'cuda' is not usable here: " + choice.reason);
  if (o.cuda.cache_slots > 0 || o.cuda.cache_bytes > 0)
    throw_js_range(env, ErrorCode::InvalidOption,
                   "ep: expert parallelism on the CUDA backend does not work with offload yet");
  return choice.api;
}

// The exchange: 'mpi' moves host buffers over MPI (on the CUDA backend, rows staged through host
// memory); 'nccl' moves them between the GPUs over NCCL (GPU ranks only); 'auto' is 'mpi'.
void check_transport(Napi::Env env, const EpOptions& ep, bool cuda) {
  if (ep.transport == "nccl" && !cuda)
    throw_js_range(env, ErrorCode::InvalidOption, "ep.transport 'nccl' needs backend 'cuda' (GPU ranks)");
}

Napi::Value EpCreateLayer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EpCall c = parse_ep_call(env, info);
  const moecap::CudaApi* cuda = ep_cuda_backend(env, c.opts);
  check_transport(env, c.ep, cuda != nullptr);
  const moecap::EpWorld& w = call_core(env, [&]() -> const moecap::EpWorld& { return moecap::ep_world(c.ep.ranks); });
  return queue_worker<EpCreateWorker>(env, std::move(c.opts), std::move(c.placement), w, cuda,
                                      c.ep.transport == "nccl");
}

// epPlace(experts, ep) → [ranks] the experts each rank holds: the placement createEpLayer makes,
// for a caller that must know a rank's share first (a checkpoint rank reads only its experts).
Napi::Value EpPlace(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int experts = read_int(env, info[0], "experts", 1);
  const EpOptions ep = parse_ep_options(env, info[1]);
  const moecap::ExpertPlacement pl =
      call_core(env, [&] { return moecap::place_experts(experts, ep.ranks, ep.placement, ep.redundant, ep.loads); });
  Napi::Array a = Napi::Array::New(env, size_t(pl.ranks));
  for (int r = 0; r < pl.ranks; ++r) {
    const std::vector<bool> h = pl.held_by(r);
    std::vector<int> held;
    for (int e = 0; e < experts; ++e)
      if (h[size_t(e)]) held.push_back(e);
    a.Set(uint32_t(r), int_array(env, held));
  }
  return a;
}

Napi::Value EpCalibrateLink(const Napi::CallbackInfo& info) {
  return queue_worker<LinkWorker>(info.Env(), loaded_world(info.Env()));
}

Napi::Value EpAbort(const Napi::CallbackInfo& info) {
  const moecap::EpWorld* w = moecap::ep_world_if_loaded();
  const int code = info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 1;
  if (w) w->api->abort(code);
  return info.Env().Undefined();
}

Napi::Value EpFinalize(const Napi::CallbackInfo& info) {
  const moecap::EpWorld* w = moecap::ep_world_if_loaded();
  if (w && w->api->finalize() != 0)
    throw_js_error(info.Env(), ErrorCode::BackendUnavailable, std::string("MPI_Finalize: ") + w->api->last_error());
  return info.Env().Undefined();
}

Napi::Value EpSimulate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EpCall c = parse_ep_call(env, info);
  if (c.ep.transport == "nccl")
    throw_js_range(env, ErrorCode::InvalidOption, "ep.transport 'nccl': simulateEp runs its ranks in this process");
  int T = 0;
  std::vector<float> x = read_tokens(env, info[2], c.opts.config.hidden, "x", &T);
  return queue_worker<SimulateWorker>(env, std::move(c.opts), std::move(c.placement), std::move(x), T);
}

}  // namespace moecap_binding
