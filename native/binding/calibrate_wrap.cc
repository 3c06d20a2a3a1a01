#include "calibrate_wrap.h"

#include <sys/stat.h>

#include <cmath>

#include "calibrate/calibrate.h"
#include "calibrate/file_read_bandwidth.h"
#include "js_error.h"
#include "kernels/kernel_table.h"
#include "promise_worker.h"

namespace moecap_binding {
namespace {

Napi::Value measured(Napi::Env env, const moecap::Measured& m, const char* unit) {
  if (!m.available) return env.Null();
  Napi::Object o = Napi::Object::New(env);
  o.Set("median", m.median);
  o.Set("min", m.min);
  o.Set("max", m.max);
  o.Set("unit", unit);
  Napi::Array samples = Napi::Array::New(env, m.samples.size());
  for (size_t i = 0; i < m.samples.size(); ++i) samples.Set(uint32_t(i), m.samples[i]);
  o.Set("samples", samples);
  return o;
}

class CalibrateWorker : public PromiseWorker {
 public:
  CalibrateWorker(Napi::Env env, moecap::CalibrateOptions o) : PromiseWorker(env), opts_(std::move(o)) {}
  void Run() override { r_ = moecap::calibrate(opts_); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("readBandwidth", measured(env, r_.read_bandwidth, "B/s"));
    o.Set("copyBandwidth", measured(env, r_.copy_bandwidth, "B/s"));  // null with compute: false
    o.Set("fp32Flops", measured(env, r_.fp32_flops, "FLOP/s"));       // null with compute: false
    o.Set("bf16Flops", measured(env, r_.bf16_flops, "FLOP/s"));
    o.Set("int8Ops", measured(env, r_.int8_ops, "OP/s"));
    o.Set("threads", r_.threads);
    o.Set("isa", r_.isa);
    o.Set("readBytes", double(r_.read_bytes));
    o.Set("repeats", r_.repeats);
    return o;
  }

 private:
  moecap::CalibrateOptions opts_;
  moecap::CalibrateResult r_;
};

class FileReadWorker : public PromiseWorker {
 public:
  FileReadWorker(Napi::Env env, std::string folder, size_t bytes, int repeats, bool direct)
      : PromiseWorker(env), folder_(std::move(folder)), bytes_(bytes), repeats_(repeats), direct_(direct) {}
  void Run() override {
    // A regular file is read as it is (an offload weights file); a folder gets a scratch file.
    struct stat st;
    if (::stat(folder_.c_str(), &st) == 0 && S_ISREG(st.st_mode))
      r_ = moecap::measure_existing_file_read(folder_, bytes_, repeats_, direct_);
    else r_ = moecap::measure_file_read(folder_, bytes_, repeats_, direct_);
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("bandwidth", measured(env, r_.bandwidth, "B/s"));
    o.Set("bytes", double(r_.bytes));
    o.Set("cacheDropped", r_.cache_dropped);
    o.Set("direct", r_.direct);
    o.Set("path", r_.path);
    return o;
  }

 private:
  std::string folder_;
  size_t bytes_;
  int repeats_;
  bool direct_;
  moecap::FileReadResult r_;
};

double number_option(Napi::Env env, const Napi::Object& o, const char* key, double lo, double hi, double def) {
  if (!o.Has(key) || o.Get(key).IsUndefined()) return def;
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw_js_type(env, moecap::ErrorCode::InvalidOption, std::string(key) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d || d < lo || d > hi)
    throw_js_range(env, moecap::ErrorCode::InvalidOption,
                   std::string(key) + " must be an integer in [" + std::to_string((long long)lo) + ", " +
                       std::to_string((long long)hi) + "], got " + v.ToString().Utf8Value());
  return d;
}

}  // namespace

Napi::Value Calibrate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  moecap::CalibrateOptions opts;
  if (info.Length() > 0 && !info[0].IsUndefined()) {
    if (!info[0].IsObject())
      throw_js_type(env, moecap::ErrorCode::InvalidOption,
                    "options must be an object { readBytes?, repeats?, threads?, isa? }");
    Napi::Object o = info[0].As<Napi::Object>();
    opts.read_bytes = size_t(number_option(env, o, "readBytes", 1 << 20, 1ull << 40, double(opts.read_bytes)));
    opts.repeats = int(number_option(env, o, "repeats", 1, 1000, opts.repeats));
    opts.threads = int(number_option(env, o, "threads", 1, 1024, 0));
    // Milliseconds per compute window: short windows let a caller keep the best of many.
    opts.compute_seconds = number_option(env, o, "computeMs", 1, 10000, opts.compute_seconds * 1e3) * 1e-3;
    if (o.Has("compute") && !o.Get("compute").IsUndefined()) {
      if (!o.Get("compute").IsBoolean())
        throw_js_type(env, moecap::ErrorCode::InvalidOption, "compute must be a boolean");
      opts.compute = o.Get("compute").As<Napi::Boolean>().Value();
    }
    if (o.Has("isa") && !o.Get("isa").IsUndefined()) {
      Napi::Value v = o.Get("isa");
      std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
      if (!moecap::isa_name_known(s.c_str()))
        throw_js_type(env, moecap::ErrorCode::InvalidOption, "isa must be one of " + moecap::isa_names_text());
      call_core(env, [&] { moecap::check_isa_runs(s, "isa"); });  // one this CPU cannot run
      opts.isa = s;
    }
  }
  return queue_worker<CalibrateWorker>(env, std::move(opts));
}

// measureFileRead(folder | file, { bytes?, repeats?, direct? }) → Promise<{ bandwidth, bytes, cacheDropped, direct,
// path }> A folder: a scratch file of `bytes` is written there and read; a regular file: its first `bytes`.
Napi::Value MeasureFileRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString())
    throw_js_type(env, moecap::ErrorCode::InvalidArgument, "folder must be a string (a directory or file path)");
  size_t bytes = size_t(256) << 20;
  int repeats = 3;
  bool direct = false;
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    if (!info[1].IsObject())
      throw_js_type(env, moecap::ErrorCode::InvalidOption, "options must be an object { bytes?, repeats?, direct? }");
    Napi::Object o = info[1].As<Napi::Object>();
    bytes = size_t(number_option(env, o, "bytes", 8 << 20, 1ull << 40, double(bytes)));
    repeats = int(number_option(env, o, "repeats", 1, 100, repeats));
    if (o.Has("direct") && !o.Get("direct").IsUndefined()) {
      if (!o.Get("direct").IsBoolean())
        throw_js_type(env, moecap::ErrorCode::InvalidOption, "direct must be a boolean");
      direct = o.Get("direct").As<Napi::Boolean>().Value();
    }
  }
  return queue_worker<FileReadWorker>(env, info[0].As<Napi::String>().Utf8Value(), bytes, repeats, direct);
}

}  // namespace moecap_binding
