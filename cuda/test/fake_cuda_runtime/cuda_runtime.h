// A host stand-in for the few CUDA runtime calls of cuda/nccl_transport.cc and cuda/nccl_abi.cc,
// so the tests' stand-in CUDA library (fake_libmoecap_cuda.cc) builds them with g++ and runs them
// without a GPU. "Device" memory is host memory the stand-in allocated; a copy whose direction
// does not match where its pointers live fails as the runtime would (cudaErrorInvalidValue).
#pragma once
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

using cudaStream_t = struct FakeCudaStream*;
enum cudaError_t { cudaSuccess = 0, cudaErrorInvalidValue = 1, cudaErrorMemoryAllocation = 2 };
enum cudaMemcpyKind { cudaMemcpyHostToDevice = 1, cudaMemcpyDeviceToHost = 2 };

namespace fake_cuda {
// The "device" allocations: start → bytes.
inline std::map<const char*, size_t>& allocations() {
  static std::map<const char*, size_t> m;
  return m;
}
inline std::mutex& mu() {
  static std::mutex m;
  return m;
}
inline bool on_device(const void* p) {
  std::lock_guard<std::mutex> g(mu());
  const char* c = static_cast<const char*>(p);
  auto it = allocations().upper_bound(c);
  if (it == allocations().begin()) return false;
  --it;
  return c >= it->first && c < it->first + it->second;
}
}  // namespace fake_cuda

inline const char* cudaGetErrorString(cudaError_t e) {
  return e == cudaSuccess             ? "no error"
         : e == cudaErrorInvalidValue ? "invalid argument (stand-in runtime)"
                                      : "out of memory";
}
inline cudaError_t cudaSetDevice(int d) { return d >= 0 ? cudaSuccess : cudaErrorInvalidValue; }
inline cudaError_t cudaStreamCreate(cudaStream_t* s) {
  *s = reinterpret_cast<cudaStream_t>(new char(0));
  return cudaSuccess;
}
inline cudaError_t cudaStreamDestroy(cudaStream_t s) {
  delete reinterpret_cast<char*>(s);
  return cudaSuccess;
}
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaMalloc(void** p, size_t n) {
  *p = std::malloc(n ? n : 1);
  if (!*p) return cudaErrorMemoryAllocation;
  std::lock_guard<std::mutex> g(fake_cuda::mu());
  fake_cuda::allocations()[static_cast<const char*>(*p)] = n ? n : 1;
  return cudaSuccess;
}
inline cudaError_t cudaFree(void* p) {
  {
    std::lock_guard<std::mutex> g(fake_cuda::mu());
    if (!fake_cuda::allocations().erase(static_cast<const char*>(p))) return cudaErrorInvalidValue;
  }
  std::free(p);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t n, cudaMemcpyKind k, cudaStream_t) {
  const bool to_dev = k == cudaMemcpyHostToDevice;
  if (fake_cuda::on_device(dst) != to_dev || fake_cuda::on_device(src) == to_dev) return cudaErrorInvalidValue;
  std::memcpy(dst, src, n);
  return cudaSuccess;
}
