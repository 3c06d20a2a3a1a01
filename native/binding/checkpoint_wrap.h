// readTensorElements(path, offset, dtype, elements, out, outOffset, tensor): converts one byte range
// of a checkpoint tensor to fp32 into out[outOffset ...] (native/core/checkpoint). Synchronous.
#pragma once
#include <napi.h>

namespace moecap_binding {

Napi::Value ReadTensorElements(const Napi::CallbackInfo& info);
// tensorReadCounters() → { preads, bytes }: checkpoint reads of this process so far.
Napi::Value TensorReadCounters(const Napi::CallbackInfo& info);

}  // namespace moecap_binding
