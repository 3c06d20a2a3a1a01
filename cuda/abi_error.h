// The library's last failure on this thread (moecap_cuda_last_error), set by every C ABI file.
#pragma once
#include <string>

namespace moecap_cuda {

void set_last_error(const std::string& message);

}  // namespace moecap_cuda
