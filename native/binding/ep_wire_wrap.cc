#include "ep_wire_wrap.h"

#include <string>

#include "ep/ep_wire.h"
#include "js_error.h"

namespace moecap_binding {

using moecap::ErrorCode;

Napi::Value EpWireSizes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  moecap::DType dtype;
  if (!info[0].IsString() || !moecap::parse_dtype(info[0].As<Napi::String>().Utf8Value(), &dtype))
    throw_js_range(env, ErrorCode::InvalidArgument, "dtype must be one of f32, bf16, int8, int4, mxfp4, fp8");
  int dims[2] = {0, 0};
  const char* names[2] = {"hidden", "experts"};
  for (int i = 0; i < 2; ++i) {
    const Napi::Value v = info[size_t(i + 1)];
    const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 1 && d <= 1 << 20) || d != double(int64_t(d)))
      throw_js_range(env, ErrorCode::InvalidArgument,
                     std::string(names[i]) + " must be an integer in [1, 2^20], got " + v.ToString().Utf8Value());
    dims[i] = int(d);
  }
  const moecap::EpWireSizes w = moecap::ep_wire_sizes(dtype, dims[0], dims[1]);
  Napi::Object o = Napi::Object::New(env);
  o.Set("activationBytes", double(w.activation_bytes));
  o.Set("recordBytes", double(w.record_bytes));
  o.Set("resultBytes", double(w.result_bytes));
  o.Set("countsBytes", double(w.counts_bytes));
  return o;
}

}  // namespace moecap_binding
