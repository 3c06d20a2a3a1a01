#include "trace_ids_wrap.h"

#include <string>

#include "js_error.h"
#include "layer_options.h"
#include "trace/trace_ids.h"

namespace moecap_binding {
namespace {

using moecap::ErrorCode;

// A whole number in [0, 2^53): file offsets and token counts pass get_int's 2^31.
uint64_t whole(Napi::Env env, const Napi::Object& o, const char* key) {
  const Napi::Value v = o.Get(key);
  if (!v.IsNumber())
    throw_js_type(env, ErrorCode::InvalidArgument, std::string("readTraceIds: ") + key + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d < 9007199254740992.0) || d != double(uint64_t(d)))
    throw_js_range(env, ErrorCode::InvalidArgument,
                   std::string("readTraceIds: ") + key + " must be a whole number >= 0");
  return uint64_t(d);
}

uint64_t parse_hex64(Napi::Env env, const Napi::Value& v) {
  const std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (s.size() != 16 || s.find_first_not_of("0123456789abcdef") != std::string::npos)
    throw_js_type(env, ErrorCode::InvalidArgument, "readTraceIds: checksum must be 16 lowercase hex digits");
  return std::stoull(s, nullptr, 16);
}

}  // namespace

Napi::Value ReadTraceIds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject())
    throw_js_type(env, ErrorCode::InvalidArgument, "readTraceIds(options): options must be an object");
  const Napi::Object o = info[0].As<Napi::Object>();
  moecap::TraceIdBlock b;
  if (!o.Get("file").IsString()) throw_js_type(env, ErrorCode::InvalidArgument, "readTraceIds: file must be a string");
  b.file = o.Get("file").As<Napi::String>().Utf8Value();
  b.offset = whole(env, o, "offset");
  b.tokens = int64_t(whole(env, o, "tokens"));
  b.top_k = get_int(env, o, "topK", "readTraceIds: topK", true, 0, 1);
  b.id_bytes = get_int(env, o, "idBytes", "readTraceIds: idBytes", true, 0, 1);
  b.layer = get_int(env, o, "layer", "readTraceIds: layer", true, 0, 0);
  b.experts = get_int(env, o, "experts", "readTraceIds: experts", false, 0, 1);  // 0: unchecked
  if (b.experts > 0) b.checksum = parse_hex64(env, o.Get("checksum"));
  const uint64_t n = call_core(env, [&b] { return moecap::trace_id_count(b); });
  Napi::Int32Array out = Napi::Int32Array::New(env, size_t(n));
  call_core(env, [&b, &out] { moecap::read_trace_ids(b, out.Data()); });
  return out;
}

}  // namespace moecap_binding
