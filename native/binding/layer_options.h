// Converts createMoeLayer's options object into the core's LayerConfig and weight source.
// Every message names the option at fault (onnxruntime-node style: one parser per options type).
#pragma once
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "backend/cuda_layer.h"
#include "layer_config.h"
#include "offload/offload_config.h"
#include "weights/weight_source.h"

namespace moecap_binding {

struct ParsedLayerOptions {
  moecap::LayerConfig config;
  std::shared_ptr<moecap::WeightSource> weights;
  std::string isa;  // the `isa` option, else MOECAP_ISA, else "auto"
  moecap::OffloadConfig offload;
  std::string backend = "auto";   // 'cpu' | 'cuda' | 'auto' (MOECAP_BACKEND overrides, at choose_backend)
  moecap::CudaLayerOptions cuda;  // maxTokens, cudaDevice, cudaCacheSlots, and `offload` on the GPU
};

// Throws Napi::TypeError / Napi::RangeError with code ERR_INVALID_OPTION; an unknown key at any
// level is refused naming the closest known one (`extra_keys`: the top-level keys a caller such as
// createModel adds).
ParsedLayerOptions parse_layer_options(Napi::Env env, const Napi::Value& value,
                                       const std::vector<std::string>& extra_keys = {});

// The integer option `key` of `o`, in [min_value, 2147483647], messages naming it `name`
// (ERR_INVALID_OPTION); absent (or null): `def`, or an error when `required`.
int get_int(Napi::Env env, const Napi::Object& o, const char* key, const std::string& name, bool required, int def,
            int min_value);

// x: a Float32Array of T·H finite values. Copies it. Throws naming `name` (ERR_INVALID_ARGUMENT).
std::vector<float> read_tokens(Napi::Env env, const Napi::Value& value, int hidden, const char* name, int* tokens);

}  // namespace moecap_binding
