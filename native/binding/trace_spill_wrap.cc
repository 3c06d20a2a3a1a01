#include "trace_spill_wrap.h"

#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "layer_options.h"
#include "promise_worker.h"
#include "trace/jsonl_trace_reader.h"

namespace moecap_binding {
namespace {

using moecap::ErrorCode;

// The reader, shared with a run in flight; `busy` refuses a second call meanwhile (the reader is
// not thread-safe, and its order of lines is the trace's).
struct TraceHandle {
  std::shared_ptr<moecap::JsonlTraceReader> reader;
  std::shared_ptr<std::atomic<bool>> busy = std::make_shared<std::atomic<bool>>(false);
};

TraceHandle& handle_of(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsExternal())
    throw_js_type(info.Env(), ErrorCode::InvalidArgument, "handle must be a trace spill handle (traceSpillOpen)");
  return *info[0].As<Napi::External<TraceHandle>>().Data();
}

// The handle of an open spill with no run in flight.
TraceHandle& handle_arg(const Napi::CallbackInfo& info) {
  TraceHandle& h = handle_of(info);
  if (!h.reader) throw_js_error(info.Env(), ErrorCode::Closed, "the trace spill is closed");
  if (*h.busy)
    throw_js_error(info.Env(), ErrorCode::InvalidArgument, "the trace spill is still reading (await traceSpillRun)");
  return h;
}

class RunWorker : public PromiseWorker {
 public:
  RunWorker(Napi::Env env, TraceHandle& h) : PromiseWorker(env), reader_(h.reader), busy_(h.busy) { *busy_ = true; }
  void Run() override {
    struct Idle {
      std::atomic<bool>& b;
      ~Idle() { b = false; }
    } idle{*busy_};
    odd_ = reader_->run();
  }
  Napi::Value Result(Napi::Env env) override {
    if (!odd_) return env.Null();
    Napi::Object o = Napi::Object::New(env);
    o.Set("line", double(reader_->odd_line()));
    o.Set("text", Napi::String::New(env, reader_->odd_text()));
    return o;
  }

 private:
  std::shared_ptr<moecap::JsonlTraceReader> reader_;
  std::shared_ptr<std::atomic<bool>> busy_;
  bool odd_ = false;
};

}  // namespace

Napi::Value TraceSpillOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject())
    throw_js_type(env, ErrorCode::InvalidArgument, "options must be an object");
  const Napi::Object o = info[0].As<Napi::Object>();
  if (!o.Get("file").IsString() || !o.Get("dir").IsString())
    throw_js_type(env, ErrorCode::InvalidArgument, "file and dir must be strings");
  moecap::TraceShapeHint shape;  // 0: unknown
  shape.experts = get_int(env, o, "experts", "experts", false, 0, 1);
  shape.top_k = get_int(env, o, "topK", "topK", false, 0, 1);
  const int max_line = get_int(env, o, "maxLineBytes", "maxLineBytes", true, 0, 1);
  auto h = std::make_unique<TraceHandle>();
  h->reader = call_core(env, [&] {
    return std::make_shared<moecap::JsonlTraceReader>(o.Get("file").As<Napi::String>().Utf8Value(),
                                                      o.Get("dir").As<Napi::String>().Utf8Value(), shape, max_line);
  });
  return Napi::External<TraceHandle>::New(env, h.release(), [](Napi::Env, TraceHandle* p) { delete p; });
}

Napi::Value TraceSpillRun(const Napi::CallbackInfo& info) {
  return queue_worker<RunWorker>(info.Env(), handle_arg(info));
}

Napi::Value TraceSpillRecord(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TraceHandle& h = handle_arg(info);
  if (info.Length() < 5 || !info[1].IsNumber() || !info[2].IsTypedArray() ||
      info[2].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array || !info[3].IsArray() ||
      !info[4].IsBoolean())
    throw_js_type(env, ErrorCode::InvalidArgument,
                  "traceSpillRecord(handle, line, values: Float64Array, json: string[], isArray: boolean)");
  const Napi::Float64Array values = info[2].As<Napi::Float64Array>();
  const Napi::Array json_arr = info[3].As<Napi::Array>();
  if (values.ElementLength() < 2 || json_arr.Length() != values.ElementLength() + 1)
    throw_js_range(env, ErrorCode::InvalidArgument,
                   "values needs layer and token; json one text per value and experts");
  std::vector<std::string> json(json_arr.Length());
  for (uint32_t i = 0; i < json_arr.Length(); ++i) json[i] = json_arr.Get(i).ToString().Utf8Value();
  // json is [layer, token, experts, ids...]; values [layer, token, ids...].
  moecap::TraceLineValues v;
  v.line = int64_t(info[1].As<Napi::Number>().DoubleValue());
  v.layer = values[0];
  v.token = values[1];
  std::vector<double> ids(values.Data() + 2, values.Data() + values.ElementLength());
  v.ids = info[4].As<Napi::Boolean>().Value() ? (ids.empty() ? &v.layer : ids.data()) : nullptr;
  v.n = ids.size();
  v.json = &json;
  call_core(env, [&] { h.reader->record(v); });
  return env.Undefined();
}

Napi::Value TraceSpillFinish(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TraceHandle& h = handle_arg(info);
  const moecap::TraceSpillSummary s = call_core(env, [&] { return h.reader->finish(); });
  Napi::Object o = Napi::Object::New(env);
  o.Set("topK", s.top_k);
  Napi::Array tokens = Napi::Array::New(env, s.tokens.size());
  for (size_t l = 0; l < s.tokens.size(); ++l) tokens.Set(uint32_t(l), double(s.tokens[l]));
  o.Set("tokens", tokens);
  o.Set("maxExpert", double(s.max_expert));
  o.Set("idBytes", s.id_bytes);
  return o;
}

Napi::Value TraceSpillClose(const Napi::CallbackInfo& info) {
  TraceHandle& h = handle_of(info);
  // A run in flight keeps its own reference; the reader closes when that run is done.
  if (h.reader && !*h.busy) h.reader->close();
  h.reader.reset();
  return info.Env().Undefined();
}

}  // namespace moecap_binding
