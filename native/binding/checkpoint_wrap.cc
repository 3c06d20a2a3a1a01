#include "checkpoint_wrap.h"

#include <cmath>

#include "checkpoint/expert_staging.h"
#include "checkpoint/tensor_reader.h"
#include "weights/block_quant.h"
#include "weights/conversion_error.h"
#include "weights/dtype.h"
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

moecap::BlockScaleSpec parse_block_scales(Napi::Env env, const Napi::Value& v, const std::string& at) {
  if (!v.IsObject()) bad(env, at + " must be an object");
  Napi::Object o = v.As<Napi::Object>();
  static const char* kKeys[] = {"file", "tensor",    "offset",    "dtype",      "rows",
                                "cols", "blockRows", "blockCols", "weightRows", "weightCols"};
  Napi::Array names = o.GetPropertyNames();
  for (uint32_t i = 0; i < names.Length(); ++i) {
    const std::string k = names.Get(i).As<Napi::String>().Utf8Value();
    bool known = false;
    for (const char* x : kKeys) known = known || k == x;
    if (!known) bad(env, at + " has an unknown key " + k);
  }
  if (!o.Get("file").IsString() || !o.Get("tensor").IsString() || !o.Get("dtype").IsString())
    bad(env, at + ": file, tensor and dtype must be strings");
  moecap::BlockScaleSpec s;
  s.file = o.Get("file").As<Napi::String>().Utf8Value();
  s.tensor = o.Get("tensor").As<Napi::String>().Utf8Value();
  if (!moecap::parse_tensor_dtype(o.Get("dtype").As<Napi::String>().Utf8Value(), &s.dtype) ||
      moecap::tensor_block_elements(s.dtype) != 1 || s.dtype == moecap::TensorDType::F8_E4M3)
    bad(env, at + ".dtype must be F32, F16 or BF16");
  s.offset = get_count(env, o.Get("offset"), (at + ".offset").c_str());
  s.rows = get_count(env, o.Get("rows"), (at + ".rows").c_str());
  s.cols = get_count(env, o.Get("cols"), (at + ".cols").c_str());
  s.block_rows = get_count(env, o.Get("blockRows"), (at + ".blockRows").c_str());
  s.block_cols = get_count(env, o.Get("blockCols"), (at + ".blockCols").c_str());
  s.weight_rows = get_count(env, o.Get("weightRows"), (at + ".weightRows").c_str());
  s.weight_cols = get_count(env, o.Get("weightCols"), (at + ".weightCols").c_str());
  return s;
}

Napi::Value ReadTensorElements(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 7 || !info[0].IsString() || !info[2].IsString() || !info[6].IsString())
    bad(env, "readTensorElements(path, offset, dtype, elements, out, outOffset, tensor)");
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  const uint64_t offset = get_count(env, info[1], "offset");
  moecap::TensorDType dt;
  if (!moecap::parse_tensor_dtype(info[2].As<Napi::String>().Utf8Value(), &dt))
    bad(env, std::string("dtype must be one of ") + moecap::tensor_dtype_names());
  const uint64_t elements = get_count(env, info[3], "elements");
  if (!info[4].IsTypedArray() || info[4].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    bad(env, "out must be a Float32Array");
  Napi::Float32Array out = info[4].As<Napi::Float32Array>();
  const uint64_t out_offset = get_count(env, info[5], "outOffset");
  if (out_offset > out.ElementLength() || elements > out.ElementLength() - out_offset)
    throw_js_range(env, ErrorCode::InvalidArgument, "out is too short for outOffset + elements");
  const std::string tensor = info[6].As<Napi::String>().Utf8Value();
  const bool scaled = info.Length() > 7 && !info[7].IsUndefined();
  moecap::BlockScaleSpec spec;
  uint64_t first_row = 0;
  if (scaled) {
    spec = parse_block_scales(env, info[7], "scales");
    first_row = get_count(env, info[8], "row");
    if (spec.weight_cols == 0 || elements % spec.weight_cols != 0)
      throw_js_range(env, ErrorCode::InvalidArgument, "a block-scaled read must cover whole rows");
  }
  call_core(env, [&] {
    float* dst = out.Data() + out_offset;
    moecap::read_tensor_elements(path, offset, dt, elements, dst, tensor);
    if (scaled) moecap::BlockScales(spec, tensor).apply(first_row, elements / spec.weight_cols, dst, tensor, path);
    return 0;
  });
  return env.Undefined();
}

Napi::Value ConversionError(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array || !info[3].IsString())
    bad(env, "conversionError(values: Float32Array, rows, cols, dtype)");
  Napi::Float32Array v = info[0].As<Napi::Float32Array>();
  const uint64_t rows = get_count(env, info[1], "rows");
  const uint64_t cols = get_count(env, info[2], "cols");
  if (cols == 0 || cols > uint64_t(INT32_MAX) || rows > v.ElementLength() / cols)
    throw_js_range(env, ErrorCode::InvalidArgument, "values must hold rows × cols values (cols ≥ 1)");
  moecap::DType dt;
  if (!moecap::parse_dtype(info[3].As<Napi::String>().Utf8Value(), &dt))
    bad(env, "dtype must be 'f32', 'bf16', 'int8', 'int4', 'mxfp4' or 'fp8'");
  moecap::ConversionError e;
  call_core(env, [&] {
    moecap::measure_conversion_error(v.Data(), rows, int(cols), dt, &e);
    return 0;
  });
  Napi::Object o = Napi::Object::New(env);
  o.Set("maxAbs", e.max_abs);
  o.Set("sumSqErr", e.sum_sq_err);
  o.Set("sumSqRef", e.sum_sq_ref);
  o.Set("values", double(e.values));
  return o;
}

Napi::Value TensorReadCounters(const Napi::CallbackInfo& info) {
  const moecap::TensorReadCounters c = moecap::tensor_read_counters();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("preads", double(c.preads));
  o.Set("bytes", double(c.bytes));
  const moecap::StagedBytes st = moecap::staged_expert_bytes();
  o.Set("stagedBytes", double(st.now));
  o.Set("stagedPeakBytes", double(st.peak));
  if (info.Length() > 0 && info[0].IsBoolean() && info[0].As<Napi::Boolean>().Value()) moecap::reset_staged_peak();
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
