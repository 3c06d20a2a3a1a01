// Expert parallelism from JavaScript: the in-process simulation (loopback ranks) and, with the
// MPI library loaded, one rank of a real run. Own options parser (the `ep` object); the layer's
// options go through parse_layer_options.
#pragma once
#include <napi.h>

namespace moecap_binding {

// epSimulate(layerOptions, epOptions, x) → Promise<{output, expertIds, ranks: [...]}>.
Napi::Value EpSimulate(const Napi::CallbackInfo& info);
// epInit(ranks) → {rank, ranks, library, builtMpi, runtimeMpi}: loads the MPI library and
// initialises MPI (ERR_BACKEND_UNAVAILABLE saying what is missing).
Napi::Value EpInit(const Napi::CallbackInfo& info);
// epCreateLayer(layerOptions, epOptions) → Promise<{rank, ranks, experts, forward(x), gather(bytes)}>.
Napi::Value EpCreateLayer(const Napi::CallbackInfo& info);
// epPlace(experts, epOptions) → Int32Array[ranks]: the experts each rank holds.
Napi::Value EpPlace(const Napi::CallbackInfo& info);
// epCalibrateLink() → Promise<{latencySeconds, bandwidthBytesPerSecond, pingpong, alltoall}> (collective).
Napi::Value EpCalibrateLink(const Napi::CallbackInfo& info);
Napi::Value EpAbort(const Napi::CallbackInfo& info);
Napi::Value EpFinalize(const Napi::CallbackInfo& info);

}  // namespace moecap_binding
