// Weight storage formats. Activations and accumulation stay fp32 unless a kernel says otherwise.
#pragma once
#include <cstddef>
#include <string>

namespace moecap {

// MXFP4: OCP MX E2M1 values, one E8M0 (power of two) scale per 32 inputs (gpt-oss releases).
// FP8: E4M3 values, one fp32 scale per 128 inputs of each output row (DeepSeek-V3 releases
// scale 128×128 blocks: each of its rows keeps its block's scale).
enum class DType { F32, BF16, I8, I4, MXFP4, FP8 };
constexpr int kDTypeCount = 6;

const char* dtype_name(DType d);
bool parse_dtype(const std::string& s, DType* out);

}  // namespace moecap
