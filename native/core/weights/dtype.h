// Weight storage formats. Activations and accumulation stay fp32 unless a kernel says otherwise.
#pragma once
#include <cstddef>
#include <string>

namespace moecap {

enum class DType { F32, BF16, I8, I4 };

const char* dtype_name(DType d);
bool parse_dtype(const std::string& s, DType* out);

}  // namespace moecap
