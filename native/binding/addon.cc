// Registers the addon's functions; all conversion lives in the *_wrap / *_options units.
#include <napi.h>

#include "addon_state.h"
#include "backend_info.h"
#include "cache_replay_wrap.h"
#include "calibrate_wrap.h"
#include "checkpoint_wrap.h"
#include "counters_wrap.h"
#include "ep_wire_wrap.h"
#include "ep_wrap.h"
#include "kernels/kernel_table.h"
#include "moe_layer_wrap.h"
#include "moe_model_wrap.h"
#include "runtime/memory_info.h"
#include "runtime/thread_pool.h"
#include "trace_ids_wrap.h"
#include "trace_spill_wrap.h"

namespace moecap_binding {

static Napi::Value SystemInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("bestIsa", moecap::select_kernels("auto", "isa").isa);
  const char* names[4];
  const int n = moecap::supported_isas(names);
  Napi::Array isas = Napi::Array::New(env);
  for (int i = 0; i < n; ++i) isas.Set(uint32_t(i), names[i]);
  o.Set("supportedIsas", isas);
  o.Set("hardwareThreads", moecap::hardware_threads());
  o.Set("availableMemory", double(moecap::available_memory_bytes()));
  o.Set("totalMemory", double(moecap::total_memory_bytes()));
  o.Set("prefetchT1SkipsL1", moecap::cpu_prefetch_t1_skips_l1());
  return o;
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* state = new AddonState();
  state->layer_ctor = Napi::Persistent(MoeLayerWrap::Define(env));
  state->model_ctor = Napi::Persistent(MoeModelWrap::Define(env));
  env.SetInstanceData<AddonState>(state);
  exports.Set("createLayer", Napi::Function::New(env, CreateLayer, "createLayer"));
  exports.Set("backendInfo", Napi::Function::New(env, BackendInfo, "backendInfo"));
  exports.Set("calibrate", Napi::Function::New(env, Calibrate, "calibrate"));
  exports.Set("measureFileRead", Napi::Function::New(env, MeasureFileRead, "measureFileRead"));
  exports.Set("systemInfo", Napi::Function::New(env, SystemInfo, "systemInfo"));
  exports.Set("NativeMoeLayer", state->layer_ctor.Value());
  exports.Set("createModel", Napi::Function::New(env, CreateModel, "createModel"));
  exports.Set("NativeMoeModel", state->model_ctor.Value());
  exports.Set("NativeCounters", CountersWrap::Define(env));
  exports.Set("readTensorElements", Napi::Function::New(env, ReadTensorElements, "readTensorElements"));
  exports.Set("conversionError", Napi::Function::New(env, ConversionError, "conversionError"));
  exports.Set("tensorReadCounters", Napi::Function::New(env, TensorReadCounters, "tensorReadCounters"));
  exports.Set("readMxfp4Elements", Napi::Function::New(env, ReadMxfp4Elements, "readMxfp4Elements"));
  exports.Set("quantiseInt8Blocks", Napi::Function::New(env, QuantiseInt8Blocks, "quantiseInt8Blocks"));
  exports.Set("epSimulate", Napi::Function::New(env, EpSimulate, "epSimulate"));
  exports.Set("epInit", Napi::Function::New(env, EpInit, "epInit"));
  exports.Set("epCreateLayer", Napi::Function::New(env, EpCreateLayer, "epCreateLayer"));
  exports.Set("epPlace", Napi::Function::New(env, EpPlace, "epPlace"));
  exports.Set("epCalibrateLink", Napi::Function::New(env, EpCalibrateLink, "epCalibrateLink"));
  exports.Set("epAbort", Napi::Function::New(env, EpAbort, "epAbort"));
  exports.Set("epFinalize", Napi::Function::New(env, EpFinalize, "epFinalize"));
  exports.Set("epWireSizes", Napi::Function::New(env, EpWireSizes, "epWireSizes"));
  exports.Set("replayCache", Napi::Function::New(env, ReplayCache, "replayCache"));
  exports.Set("xxhash64", Napi::Function::New(env, XxHash64Hex, "xxhash64"));
  exports.Set("readTraceIds", Napi::Function::New(env, ReadTraceIds, "readTraceIds"));
  exports.Set("traceSpillOpen", Napi::Function::New(env, TraceSpillOpen, "traceSpillOpen"));
  exports.Set("traceSpillRun", Napi::Function::New(env, TraceSpillRun, "traceSpillRun"));
  exports.Set("traceSpillRecord", Napi::Function::New(env, TraceSpillRecord, "traceSpillRecord"));
  exports.Set("traceSpillFinish", Napi::Function::New(env, TraceSpillFinish, "traceSpillFinish"));
  exports.Set("traceSpillClose", Napi::Function::New(env, TraceSpillClose, "traceSpillClose"));
  return exports;
}

NODE_API_MODULE(moecap, Init)

}  // namespace moecap_binding
