#include "cache_replay_wrap.h"

#include <string>
#include <vector>

#include "offload/cache_replay.h"
#include "offload/xxhash64.h"
#include "promise_worker.h"

namespace moecap_binding {
namespace {

class ReplayWorker : public PromiseWorker {
 public:
  ReplayWorker(Napi::Env env, std::vector<int32_t> ids, moecap::ReplayLayer layer,
               std::vector<moecap::ReplayConfig> configs, int threads)
      : PromiseWorker(env), ids_(std::move(ids)), layer_(layer), configs_(std::move(configs)), threads_(threads) {}
  void Run() override {
    out_ = moecap::replay_layer(ids_.data(), int64_t(ids_.size() / size_t(layer_.top_k)), layer_, configs_, threads_);
    std::vector<int32_t>().swap(ids_);
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Array a = Napi::Array::New(env, out_.size());
    for (size_t i = 0; i < out_.size(); ++i) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("passes", double(out_[i].passes));
      o.Set("hits", double(out_[i].hits));
      o.Set("misses", double(out_[i].misses));
      o.Set("loads", double(out_[i].loads));
      o.Set("evictions", double(out_[i].evictions));
      a.Set(uint32_t(i), o);
    }
    return a;
  }

 private:
  std::vector<int32_t> ids_;
  moecap::ReplayLayer layer_;
  std::vector<moecap::ReplayConfig> configs_;
  std::vector<moecap::ReplayCounts> out_;
  int threads_;
};

int int_option(Napi::Env env, const Napi::Object& o, const char* key, int lo, int def, bool required) {
  if (!o.Has(key) || o.Get(key).IsUndefined()) {
    if (required) throw Napi::TypeError::New(env, std::string(key) + " is required");
    return def;
  }
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string(key) + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d <= 2147483647.0) || d != double(int64_t(d)))
    throw Napi::RangeError::New(env, std::string(key) + " must be an integer >= " + std::to_string(lo));
  return int(d);
}

}  // namespace

// { ids: Int32Array [tokens * topK], topK, experts, tokensPerPass?, staticProfilePasses?, threads?,
//   configs: [{ capacity, policy: 'lru'|'lfu'|'lfru'|'static'|'belady' }] }
Napi::Value ReplayCache(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject())
    throw Napi::TypeError::New(env, "replayCache(options): options must be an object");
  Napi::Object o = info[0].As<Napi::Object>();
  moecap::ReplayLayer layer;
  layer.experts = int_option(env, o, "experts", 1, 0, true);
  layer.top_k = int_option(env, o, "topK", 1, 0, true);
  layer.tokens_per_pass = int_option(env, o, "tokensPerPass", 1, 1, false);
  layer.static_profile_passes = int_option(env, o, "staticProfilePasses", 0, 0, false);
  const int threads = int_option(env, o, "threads", 1, 1, false);
  Napi::Value idsv = o.Get("ids");
  if (!idsv.IsTypedArray() || idsv.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw Napi::TypeError::New(env, "ids must be an Int32Array");
  Napi::Int32Array ids = idsv.As<Napi::Int32Array>();
  if (ids.ElementLength() % size_t(layer.top_k) != 0)
    throw Napi::RangeError::New(env,
                                "ids length " + std::to_string(ids.ElementLength()) + " is not a multiple of topK");
  Napi::Value cv = o.Get("configs");
  if (!cv.IsArray()) throw Napi::TypeError::New(env, "configs must be an array");
  Napi::Array ca = cv.As<Napi::Array>();
  std::vector<moecap::ReplayConfig> configs;
  for (uint32_t i = 0; i < ca.Length(); ++i) {
    Napi::Value c = ca.Get(i);
    if (!c.IsObject()) throw Napi::TypeError::New(env, "configs[" + std::to_string(i) + "] must be an object");
    moecap::ReplayConfig rc;
    rc.capacity = int_option(env, c.As<Napi::Object>(), "capacity", 1, 0, true);
    Napi::Value pv = c.As<Napi::Object>().Get("policy");
    const std::string p = pv.IsString() ? pv.As<Napi::String>().Utf8Value() : "";
    if (p == "belady") rc.belady = true;
    else if (!moecap::parse_policy(p, &rc.policy))
      throw Napi::RangeError::New(env,
                                  "configs[" + std::to_string(i) + "].policy must be lru, lfu, lfru, static or belady");
    configs.push_back(rc);
  }
  std::vector<int32_t> copy(ids.Data(), ids.Data() + ids.ElementLength());
  auto* w = new ReplayWorker(env, std::move(copy), layer, std::move(configs), threads);
  w->Queue();
  return w->Promise();
}

// xxhash64(bytes: Uint8Array, seed = 0) → 16 lowercase hex digits: the checksums of a binary trace
// (lib/interop/trace_binary.ts), with the core's one XXH64.
Napi::Value XxHash64Hex(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw Napi::TypeError::New(env, "xxhash64(bytes, seed): bytes must be a Uint8Array");
  Napi::Uint8Array b = info[0].As<Napi::Uint8Array>();
  uint64_t seed = 0;
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    if (!info[1].IsNumber()) throw Napi::TypeError::New(env, "xxhash64(bytes, seed): seed must be a number");
    seed = uint64_t(info[1].As<Napi::Number>().Int64Value());
  }
  return Napi::String::New(env, moecap::hex16(moecap::xxhash64(b.Data(), b.ByteLength(), seed)));
}

}  // namespace moecap_binding
