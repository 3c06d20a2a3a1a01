#include "checkpoint_wrap.h"

#include <cmath>

#include "checkpoint/tensor_reader.h"
#include "weights/block_quant.h"
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
    bad(env, "dtype must be 'F32', 'F16', 'BF16', 'Q8_0' or 'MXFP4'");
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

Napi::Value ReadMxfp4Elements(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 8 || !info[0].IsString() || !info[2].IsString() || !info[7].IsString())
    bad(env, "readMxfp4Elements(blocksPath, blocksOffset, scalesPath, scalesOffset, elements, out, outOffset, tensor)");
  const std::string blocks = info[0].As<Napi::String>().Utf8Value(), scales = info[2].As<Napi::String>().Utf8Value();
  const uint64_t boff = get_count(env, info[1], "blocksOffset"), soff = get_count(env, info[3], "scalesOffset");
  const uint64_t elements = get_count(env, info[4], "elements");
  if (!info[5].IsTypedArray() || info[5].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    bad(env, "out must be a Float32Array");
  Napi::Float32Array out = info[5].As<Napi::Float32Array>();
  const uint64_t out_offset = get_count(env, info[6], "outOffset");
  if (out_offset > out.ElementLength() || elements > out.ElementLength() - out_offset)
    throw_js_range(env, ErrorCode::InvalidArgument, "out is too short for outOffset + elements");
  const std::string tensor = info[7].As<Napi::String>().Utf8Value();
  call_core(env, [&] {
    moecap::read_mxfp4_split(blocks, boff, scales, soff, elements, out.Data() + out_offset, tensor);
    return 0;
  });
  return env.Undefined();
}

Napi::Value QuantiseInt8Blocks(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    bad(env, "quantiseInt8Blocks(values: Float32Array)");
  Napi::Float32Array v = info[0].As<Napi::Float32Array>();
  const size_t K = v.ElementLength();
  if (K == 0 || K > (size_t(1) << 30))
    throw_js_range(env, ErrorCode::InvalidArgument, "values must hold 1 to 2^30 elements");
  const size_t nb = (K + moecap::kQuantBlockSize - 1) / moecap::kQuantBlockSize;
  Napi::Int8Array levels = Napi::Int8Array::New(env, nb * moecap::kQuantBlockSize);
  Napi::Uint16Array scales = Napi::Uint16Array::New(env, nb);
  moecap::quantise_block_int8(v.Data(), int(K), levels.Data(), scales.Data());
  Napi::Object o = Napi::Object::New(env);
  o.Set("levels", levels);
  o.Set("scales", scales);
  return o;
}

}  // namespace moecap_binding
