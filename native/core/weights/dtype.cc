#include "weights/dtype.h"

namespace moecap {

const char* dtype_name(DType d) {
  switch (d) {
    case DType::F32: return "f32";
    case DType::BF16: return "bf16";
    case DType::I8: return "int8";
    case DType::I4: return "int4";
    case DType::MXFP4: return "mxfp4";
    case DType::FP8: return "fp8";
  }
  return "?";
}

bool parse_dtype(const std::string& s, DType* out) {
  if (s == "f32") *out = DType::F32;
  else if (s == "bf16") *out = DType::BF16;
  else if (s == "int8") *out = DType::I8;
  else if (s == "int4") *out = DType::I4;
  else if (s == "mxfp4") *out = DType::MXFP4;
  else if (s == "fp8") *out = DType::FP8;
  else return false;
  return true;
}

}  // namespace moecap
