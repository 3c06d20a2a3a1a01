#include "layer_options.h"

#include <cmath>
#include <algorithm>
#include <cctype>
#include <cstring>
#include <map>
#include <vector>

#include "checkpoint/checkpoint_weights.h"
#include "checkpoint_wrap.h"
#include "js_error.h"
#include "runtime/environment.h"
#include "weights/dtype.h"

namespace moecap_binding {
namespace {

using moecap::ErrorCode;
using moecap::LayerConfig;

// Option values (createLayer / createModel options).
[[noreturn]] void type_error(Napi::Env env, const std::string& m) { throw_js_type(env, ErrorCode::InvalidOption, m); }
[[noreturn]] void range_error(Napi::Env env, const std::string& m) { throw_js_range(env, ErrorCode::InvalidOption, m); }

// The known keys of each level of the options object (one list per level); any other key is
// refused, naming the closest known one, so a misspelt option never runs with its default.
using Keys = std::vector<std::string>;
const Keys kLayerKeys = {"hidden",
                         "intermediate",
                         "experts",
                         "topK",
                         "scoring",
                         "renormalize",
                         "routedScalingFactor",
                         "selectionBias",
                         "routerBias",
                         "expertBiases",
                         "clampedSwiglu",
                         "scoreOnInput",
                         "jitterEps",
                         "groups",
                         "sharedExperts",
                         "capacityFactor",
                         "threads",
                         "pinThreads",
                         "dtype",
                         "poison",
                         "isa",
                         "offload",
                         "backend",
                         "maxTokens",
                         "cudaDevice",
                         "cudaCacheSlots",
                         "weights"};
const Keys kOffloadKeys = {"capacity", "policy", "prefetch", "path", "coldCache", "progress"};
const Keys kCapacityKeys = {"bytes", "fraction"};
const Keys kGroupKeys = {"count", "keep", "score"};
const Keys kSharedExpertKeys = {"intermediate", "gated"};
const Keys kWeightKeys = {"seed", "router", "gate",      "up",
                          "down", "shared", "checkpoint"};  // { seed }, the explicit arrays, or { checkpoint }
const Keys kCheckpointKeys = {"key", "router", "gate", "up", "down", "shared"};
const Keys kSliceKeys = {"file",   "tensor",  "offset",     "row",      "rows",    "cols",       "dtype",
                         "scales", "rowStep", "transposed", "colStart", "colStep", "tensorCols", "mxScales"};
const Keys kMxScalesKeys = {"file", "offset"};
const Keys kExpertBiasKeys = {"gate", "up", "down"};
const Keys kClampedSwigluKeys = {"limit", "alpha"};
const Keys kSharedWeightKeys = {"gate", "up", "down", "gateWeight"};

// Edit distance, case-insensitive (a misspelling and a wrong case are both near).
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      const bool same = std::tolower((unsigned char)a[i - 1]) == std::tolower((unsigned char)b[j - 1]);
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (same ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string closest_key(const std::string& key, const Keys& known) {
  std::string best = known.front();
  size_t best_d = edit_distance(key, best);
  for (const auto& k : known) {
    const size_t d = edit_distance(key, k);
    if (d < best_d) best = k, best_d = d;
  }
  return best;
}

// Refuses any own enumerable key of `o` that is not in `known` (or `extra`); `level` prefixes the
// names in the message ("offload." for the offload object, "" at the top).
void check_keys(Napi::Env env, const Napi::Object& o, const Keys& known, const std::string& level,
                const Keys& extra = {}) {
  Keys all = known;
  all.insert(all.end(), extra.begin(), extra.end());
  Napi::Array names = o.GetPropertyNames();
  for (uint32_t i = 0; i < names.Length(); ++i) {
    const std::string key = names.Get(i).ToString().Utf8Value();
    if (std::find(all.begin(), all.end(), key) != all.end()) continue;
    std::string list;
    for (const auto& k : all) list += (list.empty() ? "" : ", ") + k;
    type_error(env, "unknown option " + level + key + " (did you mean " + level + closest_key(key, all) +
                        "? known: " + list + ")");
  }
}

bool has(const Napi::Object& o, const char* key) {
  if (!o.Has(key)) return false;
  Napi::Value v = o.Get(key);
  return !v.IsUndefined() && !v.IsNull();
}

double get_number(Napi::Env env, const Napi::Object& o, const char* key, const std::string& name, double def) {
  if (!has(o, key)) return def;
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) type_error(env, name + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) range_error(env, name + " must be finite");
  return d;
}

// Copies a Float32Array of exactly `expected` finite elements; `shape` describes it in messages.
std::vector<float> get_f32(Napi::Env env, const Napi::Value& v, const std::string& name, double expected,
                           const std::string& shape) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    type_error(env, name + " must be a Float32Array " + shape);
  Napi::Float32Array a = v.As<Napi::Float32Array>();
  if (double(a.ElementLength()) != expected)
    range_error(env, name + " must have " + shape + " = " + std::to_string((long long)expected) + " elements, got " +
                         std::to_string(a.ElementLength()));
  std::vector<float> out(a.ElementLength());
  if (!out.empty()) std::memcpy(out.data(), a.Data(), out.size() * sizeof(float));
  for (size_t i = 0; i < out.size(); ++i)
    if (!std::isfinite(out[i]))
      range_error(env, name + "[" + std::to_string(i) + "] is " +
                           (std::isnan(out[i]) ? "NaN"
                            : out[i] < 0       ? "-Infinity"
                                               : "Infinity") +
                           " (weights must be finite)");
  return out;
}

bool get_bool(Napi::Env env, const Napi::Object& o, const char* key, const std::string& name, bool def) {
  if (!has(o, key)) return def;
  Napi::Value v = o.Get(key);
  if (!v.IsBoolean())
    type_error(env, name + " must be a boolean (true or false), got " + (v.IsString() ? "the string '" : "") +
                        v.ToString().Utf8Value() + (v.IsString() ? "'" : ""));
  return o.Get(key).As<Napi::Boolean>().Value();
}

// offload: { capacity: number | { bytes } | { fraction }, policy?, prefetch?, path?, coldCache? }
moecap::OffloadConfig parse_offload(Napi::Env env, const Napi::Value& v, int experts) {
  moecap::OffloadConfig off;
  if (!v.IsObject()) type_error(env, "offload must be an object { capacity, policy?, prefetch?, path?, coldCache? }");
  Napi::Object o = v.As<Napi::Object>();
  check_keys(env, o, kOffloadKeys, "offload.");
  off.enabled = true;
  if (!has(o, "capacity"))
    type_error(env, "offload.capacity is required: a number of resident experts, { bytes } or { fraction }");
  Napi::Value c = o.Get("capacity");
  if (c.IsNumber()) {
    off.capacity_experts = get_int(env, o, "capacity", "offload.capacity", true, 0, 1);
  } else if (c.IsObject()) {
    Napi::Object co = c.As<Napi::Object>();
    check_keys(env, co, kCapacityKeys, "offload.capacity.");
    if (has(co, "bytes") && has(co, "fraction"))
      type_error(env, "offload.capacity takes one of { bytes } or { fraction }, not both");
    if (has(co, "bytes")) {
      off.capacity_bytes = get_number(env, co, "bytes", "offload.capacity.bytes", 0);
      if (!(off.capacity_bytes > 0)) range_error(env, "offload.capacity.bytes must be > 0");
    } else if (has(co, "fraction")) {
      double f = get_number(env, co, "fraction", "offload.capacity.fraction", 0);
      if (!(f > 0 && f <= 1)) range_error(env, "offload.capacity.fraction must be in (0, 1]");
      off.capacity_experts = std::max(1, int(std::ceil(f * experts - 1e-9)));
      off.capacity_fraction = f;
    } else {
      type_error(env, "offload.capacity must be a number of experts, { bytes } or { fraction }");
    }
  } else {
    type_error(env, "offload.capacity must be a number of experts, { bytes } or { fraction }");
  }
  if (has(o, "policy")) {
    Napi::Value p = o.Get("policy");
    if (!p.IsString() || !moecap::parse_policy(p.As<Napi::String>().Utf8Value(), &off.policy))
      type_error(env, "offload.policy must be 'lru', 'lfu', 'lfru' or 'static'");
  }
  off.prefetch = get_bool(env, o, "prefetch", "offload.prefetch", true);
  off.cold = get_bool(env, o, "coldCache", "offload.coldCache", false);
  if (has(o, "path")) {
    if (!o.Get("path").IsString()) type_error(env, "offload.path must be a string");
    off.path = o.Get("path").As<Napi::String>().Utf8Value();
    if (off.path.empty()) range_error(env, "offload.path must not be empty");
  }
  if (has(o, "progress")) {
    if (!o.Get("progress").IsString()) type_error(env, "offload.progress must be a string (the progress bar's label)");
    off.progress = o.Get("progress").As<Napi::String>().Utf8Value();
  }
  return off;
}

// One matrix of weights.checkpoint: slices whose rows add up to `rows` rows of `cols` elements.
std::vector<moecap::CheckpointSlice> parse_slices(Napi::Env env, const Napi::Value& v, const std::string& name,
                                                  double rows, double cols) {
  if (!v.IsArray()) type_error(env, name + " must be an array of { file, tensor, offset, row, rows, cols, dtype }");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<moecap::CheckpointSlice> out;
  double total = 0;
  auto count = [&](const Napi::Object& o, const char* k, const std::string& at) {
    const Napi::Value x = o.Get(k);
    const double d = x.IsNumber() ? x.As<Napi::Number>().DoubleValue() : -1;
    if (!std::isfinite(d) || d < 0 || std::floor(d) != d || d > 9007199254740991.0)
      type_error(env, at + "." + k + " must be a non-negative safe integer");
    return uint64_t(d);
  };
  for (uint32_t i = 0; i < a.Length(); ++i) {
    const std::string at = name + "[" + std::to_string(i) + "]";
    if (!a.Get(i).IsObject()) type_error(env, at + " must be an object");
    Napi::Object o = a.Get(i).As<Napi::Object>();
    check_keys(env, o, kSliceKeys, at + ".");
    moecap::CheckpointSlice sl;
    if (!o.Get("file").IsString() || !o.Get("tensor").IsString() || !o.Get("dtype").IsString())
      type_error(env, at + ": file, tensor and dtype must be strings");
    sl.file = o.Get("file").As<Napi::String>().Utf8Value();
    sl.tensor = o.Get("tensor").As<Napi::String>().Utf8Value();
    if (!moecap::parse_tensor_dtype(o.Get("dtype").As<Napi::String>().Utf8Value(), &sl.dtype))
      type_error(env, at + ".dtype must be one of " + moecap::tensor_dtype_names());
    sl.offset = count(o, "offset", at);
    sl.tensor_row = count(o, "row", at);
    sl.rows = count(o, "rows", at);
    sl.cols = count(o, "cols", at);
    if (double(sl.cols) != cols)
      range_error(env, at + ": rows of " + std::to_string(sl.cols) + " elements, the matrix has " +
                           std::to_string(uint64_t(cols)));
    // The layout of expert rows in their tensor (checkpoint_slice.h); defaults: plain rows.
    auto optional_count = [&](const char* k, uint64_t def) { return o.Has(k) ? count(o, k, at) : def; };
    sl.row_step = optional_count("rowStep", 1);
    sl.col_start = optional_count("colStart", 0);
    sl.col_step = optional_count("colStep", 1);
    sl.tensor_cols = optional_count("tensorCols", 0);
    if (o.Has("transposed")) {
      if (!o.Get("transposed").IsBoolean()) type_error(env, at + ".transposed must be a boolean");
      sl.transposed = o.Get("transposed").As<Napi::Boolean>().Value();
    }
    if (o.Has("mxScales")) {
      if (!o.Get("mxScales").IsObject()) type_error(env, at + ".mxScales must be an object { file, offset }");
      Napi::Object mx = o.Get("mxScales").As<Napi::Object>();
      check_keys(env, mx, kMxScalesKeys, at + ".mxScales.");
      if (!mx.Get("file").IsString()) type_error(env, at + ".mxScales.file must be a string");
      sl.mx_split = true;
      sl.mx_scales_file = mx.Get("file").As<Napi::String>().Utf8Value();
      sl.mx_scales_offset = count(mx, "offset", at + ".mxScales");
    }
    if (o.Has("scales") && !o.Get("scales").IsUndefined()) {
      sl.scaled = true;
      sl.scales = parse_block_scales(env, o.Get("scales"), at + ".scales");
    } else if (sl.dtype == moecap::TensorDType::F8_E4M3) {
      type_error(env, at + ": an F8_E4M3 tensor needs its block scales");
    }
    total += double(sl.rows);
    out.push_back(std::move(sl));
  }
  if (total != rows)
    range_error(env, name + ": slices hold " + std::to_string(uint64_t(total)) + " rows, the matrix has " +
                         std::to_string(uint64_t(rows)));
  return out;
}

// weights.checkpoint: where each matrix's rows lie in the checkpoint's files (lib/checkpoint).
std::shared_ptr<moecap::WeightSource> parse_checkpoint_weights(Napi::Env env, const Napi::Value& v,
                                                               const LayerConfig& c) {
  if (!v.IsObject()) type_error(env, "weights.checkpoint must be an object { key, router, gate, up, down, shared? }");
  Napi::Object o = v.As<Napi::Object>();
  check_keys(env, o, kCheckpointKeys, "weights.checkpoint.");
  if (!o.Get("key").IsString()) type_error(env, "weights.checkpoint.key must be a string");
  const double H = c.hidden, F = c.intermediate, E = c.experts;
  using moecap::Matrix;
  std::map<Matrix, std::vector<moecap::CheckpointSlice>> m;
  m[Matrix::Router] = parse_slices(env, o.Get("router"), "weights.checkpoint.router", E, H);
  m[Matrix::Gate] = parse_slices(env, o.Get("gate"), "weights.checkpoint.gate", E * F, H);
  m[Matrix::Up] = parse_slices(env, o.Get("up"), "weights.checkpoint.up", E * F, H);
  m[Matrix::Down] = parse_slices(env, o.Get("down"), "weights.checkpoint.down", E * H, F);
  if (c.shared_intermediate > 0) {
    if (!has(o, "shared") || !o.Get("shared").IsObject())
      type_error(env, "weights.checkpoint.shared { gate, up, down } is required with sharedExperts");
    Napi::Object s = o.Get("shared").As<Napi::Object>();
    check_keys(env, s, kSharedWeightKeys, "weights.checkpoint.shared.");
    const double Fs = c.shared_intermediate;
    m[Matrix::SharedGate] = parse_slices(env, s.Get("gate"), "weights.checkpoint.shared.gate", Fs, H);
    m[Matrix::SharedUp] = parse_slices(env, s.Get("up"), "weights.checkpoint.shared.up", Fs, H);
    m[Matrix::SharedDown] = parse_slices(env, s.Get("down"), "weights.checkpoint.shared.down", H, Fs);
    if (c.shared_gated)
      m[Matrix::SharedGateWeight] =
          parse_slices(env, s.Get("gateWeight"), "weights.checkpoint.shared.gateWeight", 1, H);
  } else if (has(o, "shared")) {
    type_error(env, "weights.checkpoint.shared was given but sharedExperts is not set");
  }
  const std::string key = o.Get("key").As<Napi::String>().Utf8Value();
  return call_core(env, [&] { return std::make_shared<moecap::CheckpointWeights>(m, c.experts, key); });
}

// backend and the CUDA options: maxTokens, cudaDevice, cudaCacheSlots; `offload` on the CUDA
// backend is device cache slots with the same policy names, the slow tier being pinned host
// memory (path/coldCache/prefetch do not apply). cudaCacheSlots, when given, sets the slot count.
void parse_backend_options(Napi::Env env, const Napi::Object& o, ParsedLayerOptions& p) {
  if (o.Has("backend") && !o.Get("backend").IsUndefined()) {
    if (!o.Get("backend").IsString()) type_error(env, "backend must be a string: 'cpu', 'cuda' or 'auto'");
    p.backend = o.Get("backend").As<Napi::String>().Utf8Value();
  }
  moecap::CudaLayerOptions& cuda = p.cuda;
  auto int_option = [&](const char* name, int lo, int hi, int* out) {
    if (!o.Has(name) || o.Get(name).IsUndefined()) return;
    Napi::Value v = o.Get(name);
    if (!v.IsNumber()) type_error(env, std::string(name) + " must be an integer");
    const double d = v.As<Napi::Number>().DoubleValue();
    if (d != double(int64_t(d)) || d < lo || d > hi)
      range_error(env, std::string(name) + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                           "], got " + v.ToString().Utf8Value());
    *out = int(d);
  };
  int_option("maxTokens", 1, 1 << 20, &cuda.max_tokens);
  int_option("cudaDevice", 0, 1023, &cuda.device);
  int_option("cudaCacheSlots", 0, 1 << 20, &cuda.cache_slots);
  if (p.offload.enabled) {
    cuda.policy = p.offload.policy;
    if (cuda.cache_slots == 0) {
      cuda.cache_slots = p.offload.capacity_experts;
      cuda.cache_bytes = p.offload.capacity_bytes;
    }
  }
}

}  // namespace

int get_int(Napi::Env env, const Napi::Object& o, const char* key, const std::string& name, bool required, int def,
            int min_value) {
  if (!has(o, key)) {
    if (required) type_error(env, name + " is required (a positive integer)");
    return def;
  }
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) type_error(env, name + " must be a number, got " + v.ToString().Utf8Value());
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d)
    range_error(env, name + " must be an integer, got " + v.ToString().Utf8Value());
  if (d < min_value || d > 2147483647.0)
    range_error(env, name + " must be an integer in [" + std::to_string(min_value) + ", 2147483647], got " +
                         v.ToString().Utf8Value());
  return int(d);
}

ParsedLayerOptions parse_layer_options(Napi::Env env, const Napi::Value& value,
                                       const std::vector<std::string>& extra_keys) {
  if (!value.IsObject()) type_error(env, "options must be an object");
  Napi::Object o = value.As<Napi::Object>();
  check_keys(env, o, kLayerKeys, "", extra_keys);
  ParsedLayerOptions p;
  LayerConfig& c = p.config;
  c.hidden = get_int(env, o, "hidden", "hidden", true, 0, 1);
  c.intermediate = get_int(env, o, "intermediate", "intermediate", true, 0, 1);
  c.experts = get_int(env, o, "experts", "experts", true, 0, 1);
  c.top_k = get_int(env, o, "topK", "topK", true, 0, 1);
  if (c.top_k > c.experts)
    range_error(env,
                "topK (" + std::to_string(c.top_k) + ") must not exceed experts (" + std::to_string(c.experts) + ")");

  if (has(o, "scoring")) {
    Napi::Value s = o.Get("scoring");
    std::string v = s.IsString() ? s.As<Napi::String>().Utf8Value() : "";
    if (v == "softmax") c.scoring = moecap::Scoring::Softmax;
    else if (v == "sigmoid") c.scoring = moecap::Scoring::Sigmoid;
    else if (v == "sparsemixer") c.scoring = moecap::Scoring::SparseMixer;
    else type_error(env, "scoring must be 'softmax', 'sigmoid' or 'sparsemixer'");
  }
  if (has(o, "renormalize")) {
    Napi::Value r = o.Get("renormalize");
    if (!r.IsBoolean()) type_error(env, "renormalize must be a boolean");
    c.renormalize = r.As<Napi::Boolean>().Value();
  }
  c.routed_scaling_factor = float(get_number(env, o, "routedScalingFactor", "routedScalingFactor", 1.0));
  if (!(c.routed_scaling_factor > 0)) range_error(env, "routedScalingFactor must be > 0");
  if (has(o, "selectionBias"))
    c.selection_bias = get_f32(env, o.Get("selectionBias"), "selectionBias", c.experts, "[experts]");
  // The family variants (layer_config.h).
  if (has(o, "routerBias")) c.router_bias = get_f32(env, o.Get("routerBias"), "routerBias", c.experts, "[experts]");
  if (has(o, "expertBiases")) {
    Napi::Value b = o.Get("expertBiases");
    if (!b.IsObject()) type_error(env, "expertBiases must be an object { gate, up, down }");
    Napi::Object bo = b.As<Napi::Object>();
    check_keys(env, bo, kExpertBiasKeys, "expertBiases.");
    const double EF = double(c.experts) * c.intermediate, EH = double(c.experts) * c.hidden;
    c.gate_bias = get_f32(env, bo.Get("gate"), "expertBiases.gate", EF, "[experts, intermediate]");
    c.up_bias = get_f32(env, bo.Get("up"), "expertBiases.up", EF, "[experts, intermediate]");
    c.down_bias = get_f32(env, bo.Get("down"), "expertBiases.down", EH, "[experts, hidden]");
  }
  if (has(o, "clampedSwiglu")) {
    Napi::Value a = o.Get("clampedSwiglu");
    if (!a.IsObject()) type_error(env, "clampedSwiglu must be an object { limit, alpha }");
    Napi::Object ao = a.As<Napi::Object>();
    check_keys(env, ao, kClampedSwigluKeys, "clampedSwiglu.");
    if (!has(ao, "limit") || !has(ao, "alpha")) type_error(env, "clampedSwiglu needs both limit and alpha");
    c.swiglu_limit = float(get_number(env, ao, "limit", "clampedSwiglu.limit", 0));
    c.swiglu_alpha = float(get_number(env, ao, "alpha", "clampedSwiglu.alpha", 1));
    if (!(c.swiglu_limit > 0) || !std::isfinite(c.swiglu_limit))
      range_error(env, "clampedSwiglu.limit must be a finite number > 0");
    if (!(c.swiglu_alpha > 0) || !std::isfinite(c.swiglu_alpha))
      range_error(env, "clampedSwiglu.alpha must be a finite number > 0");
  }
  c.score_on_input = get_bool(env, o, "scoreOnInput", "scoreOnInput", false);
  c.jitter_eps = float(get_number(env, o, "jitterEps", "jitterEps", 0.01));
  if (!(c.jitter_eps >= 0)) range_error(env, "jitterEps must be >= 0");
  if (has(o, "groups")) {
    Napi::Value g = o.Get("groups");
    if (!g.IsObject()) type_error(env, "groups must be an object { count, keep, score? }");
    Napi::Object go = g.As<Napi::Object>();
    check_keys(env, go, kGroupKeys, "groups.");
    c.group_count = get_int(env, go, "count", "groups.count", true, 0, 1);
    c.group_keep = get_int(env, go, "keep", "groups.keep", true, 0, 1);
    if (has(go, "score")) {
      Napi::Value gs = go.Get("score");
      std::string v = gs.IsString() ? gs.As<Napi::String>().Utf8Value() : "";
      if (v == "top2-sum") c.group_score = moecap::GroupScore::Top2Sum;
      else if (v == "max") c.group_score = moecap::GroupScore::Max;
      else type_error(env, "groups.score must be 'top2-sum' or 'max'");
    }
  }
  if (has(o, "sharedExperts")) {
    Napi::Value s = o.Get("sharedExperts");
    if (!s.IsObject()) type_error(env, "sharedExperts must be an object { intermediate, gated? }");
    Napi::Object so = s.As<Napi::Object>();
    check_keys(env, so, kSharedExpertKeys, "sharedExperts.");
    c.shared_intermediate = get_int(env, so, "intermediate", "sharedExperts.intermediate", true, 0, 1);
    if (has(so, "gated")) {
      if (!so.Get("gated").IsBoolean()) type_error(env, "sharedExperts.gated must be a boolean");
      c.shared_gated = so.Get("gated").As<Napi::Boolean>().Value();
    }
  }
  c.capacity_factor = get_number(env, o, "capacityFactor", "capacityFactor", 0);
  if (c.capacity_factor < 0) range_error(env, "capacityFactor must be >= 0 (0 = no capacity limit)");
  c.threads = get_int(env, o, "threads", "threads", false, 0, 1);
  if (c.threads > 1024) range_error(env, "threads must be an integer in [1, 1024]");
  if (has(o, "pinThreads")) {
    if (!o.Get("pinThreads").IsBoolean()) type_error(env, "pinThreads must be a boolean");
    c.pin_threads = o.Get("pinThreads").As<Napi::Boolean>().Value();
  }
  if (has(o, "dtype")) {
    Napi::Value d = o.Get("dtype");
    if (!d.IsString() || !moecap::parse_dtype(d.As<Napi::String>().Utf8Value(), &c.dtype))
      type_error(env, "dtype must be 'f32', 'bf16', 'int8', 'int4', 'mxfp4' or 'fp8'");
  }
  c.poison = get_bool(env, o, "poison", "poison", c.poison);
  std::string isa;
  if (has(o, "isa")) {
    if (!o.Get("isa").IsString()) type_error(env, "isa must be a string");
    isa = o.Get("isa").As<Napi::String>().Utf8Value();
  }
  p.isa = call_core(env, [&] { return moecap::env_isa(moecap::read_environment(), isa); });

  if (has(o, "offload")) p.offload = parse_offload(env, o.Get("offload"), c.experts);
  parse_backend_options(env, o, p);

  if (!has(o, "weights") || !o.Get("weights").IsObject())
    type_error(env, "weights must be { seed } or { router, gate, up, down, shared? }");
  Napi::Object w = o.Get("weights").As<Napi::Object>();
  check_keys(env, w, kWeightKeys, "weights.");
  if (has(w, "checkpoint")) {
    for (const char* k : {"seed", "router", "gate", "up", "down", "shared"})
      if (has(w, k)) type_error(env, std::string("weights.checkpoint cannot be given with weights.") + k);
    p.weights = parse_checkpoint_weights(env, w.Get("checkpoint"), c);
    return p;
  }
  if (has(w, "seed")) {
    for (const char* k : {"router", "gate", "up", "down", "shared"})
      if (has(w, k))
        type_error(
            env, std::string("weights takes { seed } or { router, gate, up, down, shared? }, not both (got seed and ") +
                     k + ")");
    Napi::Value s = w.Get("seed");
    if (!s.IsNumber()) type_error(env, "weights.seed must be a number");
    double d = s.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d) || d < 0 || std::floor(d) != d || d > 9007199254740991.0)
      range_error(env, "weights.seed must be a non-negative safe integer");
    p.weights = std::make_shared<moecap::SeededWeights>(uint64_t(d));
    return p;
  }
  const double H = c.hidden, F = c.intermediate, E = c.experts;
  // Refuse sizes that cannot be typed arrays before touching them.
  auto ew = std::make_shared<moecap::ExplicitWeights>();
  ew->hidden = c.hidden;
  ew->intermediate = c.intermediate;
  ew->experts = c.experts;
  ew->router = get_f32(env, w.Get("router"), "weights.router", E * H, "[experts, hidden]");
  ew->gate = get_f32(env, w.Get("gate"), "weights.gate", E * F * H, "[experts, intermediate, hidden]");
  ew->up = get_f32(env, w.Get("up"), "weights.up", E * F * H, "[experts, intermediate, hidden]");
  ew->down = get_f32(env, w.Get("down"), "weights.down", E * H * F, "[experts, hidden, intermediate]");
  if (c.shared_intermediate > 0) {
    if (!has(w, "shared") || !w.Get("shared").IsObject())
      type_error(env, "weights.shared { gate, up, down } is required with sharedExperts");
    Napi::Object s = w.Get("shared").As<Napi::Object>();
    check_keys(env, s, kSharedWeightKeys, "weights.shared.");
    const double Fs = c.shared_intermediate;
    ew->shared_intermediate = c.shared_intermediate;
    ew->shared_gate = get_f32(env, s.Get("gate"), "weights.shared.gate", Fs * H, "[sharedIntermediate, hidden]");
    ew->shared_up = get_f32(env, s.Get("up"), "weights.shared.up", Fs * H, "[sharedIntermediate, hidden]");
    ew->shared_down = get_f32(env, s.Get("down"), "weights.shared.down", H * Fs, "[hidden, sharedIntermediate]");
    if (c.shared_gated)
      ew->shared_gate_weight = get_f32(env, s.Get("gateWeight"), "weights.shared.gateWeight", H, "[hidden]");
  } else if (has(w, "shared")) {
    type_error(env, "weights.shared was given but sharedExperts is not set");
  }
  p.weights = ew;
  return p;
}

std::vector<float> read_tokens(Napi::Env env, const Napi::Value& v, int hidden, const char* name, int* tokens) {
  // Method arguments, not options.
  auto type_error = [&](const std::string& m) { throw_js_type(env, ErrorCode::InvalidArgument, m); };
  auto range_error = [&](const std::string& m) { throw_js_range(env, ErrorCode::InvalidArgument, m); };
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    type_error(std::string(name) + " must be a Float32Array [tokens, hidden]");
  Napi::Float32Array a = v.As<Napi::Float32Array>();
  size_t n = a.ElementLength();
  if (n == 0 || n % size_t(hidden) != 0)
    range_error(std::string(name) + " must hold tokens·hidden values (a positive multiple of hidden = " +
                std::to_string(hidden) + "), got " + std::to_string(n));
  if (n / size_t(hidden) > 16777216) range_error(std::string(name) + " holds more than 16777216 tokens");
  std::vector<float> x(n);
  std::memcpy(x.data(), a.Data(), n * sizeof(float));
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i]))
      range_error(std::string(name) + " is not finite at token " + std::to_string(i / size_t(hidden)) +
                  ", hidden index " + std::to_string(i % size_t(hidden)) + " (" +
                  (std::isnan(x[i]) ? "NaN"
                   : x[i] < 0       ? "-Infinity"
                                    : "Infinity") +
                  ")");
  *tokens = int(n / size_t(hidden));
  return x;
}

}  // namespace moecap_binding
