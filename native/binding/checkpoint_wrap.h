// readTensorElements(path, offset, dtype, elements, out, outOffset, tensor, scales?): converts one
// byte range of a checkpoint tensor to fp32 into out[outOffset ...] (native/core/checkpoint).
// Synchronous. With `scales` (block-scaled formats) the range is whole rows from row `scales.row`.
#pragma once
#include <napi.h>

#include <string>

#include "checkpoint/block_scales.h"

namespace moecap_binding {

// { file, tensor, offset, dtype, rows, cols, blockRows, blockCols, weightRows, weightCols }: a
// block-scaled tensor's scale tensor; `at` names the value in messages.
moecap::BlockScaleSpec parse_block_scales(Napi::Env env, const Napi::Value& v, const std::string& at);

Napi::Value ReadTensorElements(const Napi::CallbackInfo& info);
// conversionError(values: Float32Array, rows, cols, dtype) → { maxAbs, sumSqErr, sumSqRef, values }:
// the engine's conversion of each row of `values` to dtype ('f32' | 'bf16' | 'int8' | 'int4' | 'mxfp4' | 'fp8')
// against the values themselves (native/core/weights/conversion_error.h).
Napi::Value ConversionError(const Napi::CallbackInfo& info);
// tensorReadCounters(resetPeak?) → { preads, bytes, stagedBytes, stagedPeakBytes }: checkpoint
// reads of this process so far, the staged experts' bytes now and at most (since the last reset).
Napi::Value TensorReadCounters(const Napi::CallbackInfo& info);
// readMxfp4Elements(blocksPath, blocksOffset, scalesPath, scalesOffset, elements, out, outOffset, tensor):
// gpt-oss's split MXFP4 (`*_blocks` + `*_scales`) to fp32, exactly. Synchronous.
Napi::Value ReadMxfp4Elements(const Napi::CallbackInfo& info);
// quantiseInt8Blocks(values: Float32Array) → { levels: Int8Array, scales: Uint16Array (fp16 bits) }:
// the engine's int8 block-32 quantisation of one row (tests check exact conversions bitwise).
Napi::Value QuantiseInt8Blocks(const Napi::CallbackInfo& info);

}  // namespace moecap_binding
