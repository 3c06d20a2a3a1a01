// readTensorElements(path, offset, dtype, elements, out, outOffset, tensor): converts one byte range
// of a checkpoint tensor to fp32 into out[outOffset ...] (native/core/checkpoint). Synchronous.
#pragma once
#include <napi.h>

namespace moecap_binding {

Napi::Value ReadTensorElements(const Napi::CallbackInfo& info);
// tensorReadCounters() → { preads, bytes }: checkpoint reads of this process so far.
Napi::Value TensorReadCounters(const Napi::CallbackInfo& info);
// readMxfp4Elements(blocksPath, blocksOffset, scalesPath, scalesOffset, elements, out, outOffset, tensor):
// gpt-oss's split MXFP4 (`*_blocks` + `*_scales`) to fp32, exactly. Synchronous.
Napi::Value ReadMxfp4Elements(const Napi::CallbackInfo& info);
// quantiseInt8Blocks(values: Float32Array) → { levels: Int8Array, scales: Uint16Array (fp16 bits) }:
// the engine's int8 block-32 quantisation of one row (tests check exact conversions bitwise).
Napi::Value QuantiseInt8Blocks(const Napi::CallbackInfo& info);

}  // namespace moecap_binding
