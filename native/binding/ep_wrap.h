// Expert parallelism from JavaScript: the in-process simulation (loopback ranks) and, with the
// MPI library loaded, one rank of a real run. Own options parser (the `ep` object); the layer's
// options go through parse_layer_options.
#pragma once
#include <napi.h>

namespace moecap_binding {

// epSimulate(layerOptions, epOptions, x) → Promise<{output, expertIds, ranks: [...]}>.
Napi::Value EpSimulate(const Napi::CallbackInfo& info);

}  // namespace moecap_binding
