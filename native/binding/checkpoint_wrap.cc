#include "checkpoint_wrap.h"

#include <cmath>

#include "checkpoint/tensor_reader.h"
#include "js_error.h"

namespace moecap_binding {

using moecap::ErrorCode;

namespace {

[[noreturn]] void bad(Napi::Env env, const std::string& m) { throw_js_type(env, ErrorCode::InvalidArgument, m); }

uint64_t get_count(Napi::Env env, const Napi::Value& v, const char* name) {
  if (!v.IsNumber()) bad(env, std::string(name) + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d < 0 || std::floor(d) != d || d > 9007199254740991.0)
    throw_js_range(env, ErrorCode::InvalidArgument, std::string(name) + " must be a non-negative safe integer");
  return uint64_t(d);
}

}  // namespace

Napi::Value ReadTensorElements(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 7 || !info[0].IsString() || !info[2].IsString() || !info[6].IsString())
    bad(env, "readTensorElements(path, offset, dtype, elements, out, outOffset, tensor)");
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  const uint64_t offset = get_count(env, info[1], "offset");
  moecap::TensorDType dt;
  if (!moecap::parse_tensor_dtype(info[2].As<Napi::String>().Utf8Value(), &dt))
    bad(env, "dtype must be 'F32', 'F16', 'BF16' or 'Q8_0'");
  const uint64_t elements = get_count(env, info[3], "elements");
  if (!info[4].IsTypedArray() || info[4].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    bad(env, "out must be a Float32Array");
  Napi::Float32Array out = info[4].As<Napi::Float32Array>();
  const uint64_t out_offset = get_count(env, info[5], "outOffset");
  if (out_offset > out.ElementLength() || elements > out.ElementLength() - out_offset)
    throw_js_range(env, ErrorCode::InvalidArgument, "out is too short for outOffset + elements");
  const std::string tensor = info[6].As<Napi::String>().Utf8Value();
  call_core(env, [&] {
    moecap::read_tensor_elements(path, offset, dt, elements, out.Data() + out_offset, tensor);
    return 0;
  });
  return env.Undefined();
}

Napi::Value TensorReadCounters(const Napi::CallbackInfo& info) {
  const moecap::TensorReadCounters c = moecap::tensor_read_counters();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("preads", double(c.preads));
  o.Set("bytes", double(c.bytes));
  return o;
}

}  // namespace moecap_binding
