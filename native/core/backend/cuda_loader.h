// Chooses the backend of a layer ('cpu' | 'cuda' | 'auto', MOECAP_BACKEND overrides) and, when
// CUDA is wanted, dlopens the driver and libmoecap_cuda.so at run time, so the CPU addon has no
// link-time dependency on any GPU library. Every refusal names what was missing:
//   "libcuda.so.1 not found", "no CUDA device", "driver supports CUDA X, library needs Y",
//   "libmoecap_cuda.so not found (looked in: …)".
// Test hooks: MOECAP_CUDA_DRIVER (path of the driver library, default libcuda.so.1) and
// MOECAP_CUDA_LIBRARY (exact path of libmoecap_cuda.so); read through runtime/environment.h.
#pragma once
#include <string>
#include <vector>

#include "backend/cuda_abi.h"
#include "runtime/environment.h"

namespace moecap {

struct CudaApi {
  void* handle = nullptr;
  std::string path;
  int (*abi_version)() = nullptr;
  int (*runtime_version)() = nullptr;
  int (*probe)(int, moecap_cuda_probe_t*) = nullptr;
  moecap_cuda_layer* (*layer_create)(const moecap_cuda_config_t*, const moecap_cuda_weights_t*) = nullptr;
  int (*layer_forward)(moecap_cuda_layer*, const float*, int, float*, int32_t*, float*, moecap_cuda_stats_t*) = nullptr;
  int (*layer_prefetch)(moecap_cuda_layer*, const int32_t*, int) = nullptr;
  int (*layer_pin_static)(moecap_cuda_layer*, int32_t*, int) = nullptr;
  double (*layer_device_bytes)(const moecap_cuda_layer*) = nullptr;
  void (*layer_destroy)(moecap_cuda_layer*) = nullptr;
  int (*nvml_sample)(int, moecap_cuda_nvml_t*) = nullptr;
  // Expert parallelism (a rank's share of a pass).
  size_t (*act_row_bytes)(int, int) = nullptr;
  int (*layer_ep_route)(moecap_cuda_layer*, const float*, int, int, int32_t*, float*, uint8_t*) = nullptr;
  int (*layer_ep_compute)(moecap_cuda_layer*, int, const int32_t*, const uint8_t*, const float*, float*) = nullptr;
  int (*layer_ep_combine)(moecap_cuda_layer*, int, const float*, float*) = nullptr;
  // The expert-parallel exchange over NCCL (ep.transport 'nccl').
  int (*nccl_unique_id)(void*) = nullptr;
  int (*nccl_create)(int, int, int, const void*, moecap_cuda_nccl**) = nullptr;
  int (*nccl_alltoallv)(moecap_cuda_nccl*, const void*, const int64_t*, void*, const int64_t*) = nullptr;
  void (*nccl_destroy)(moecap_cuda_nccl*) = nullptr;
  const char* (*last_error)() = nullptr;
};

struct BackendChoice {
  std::string requested;  // after the MOECAP_BACKEND override
  std::string backend;    // "cpu" or "cuda"
  std::string reason;     // why the CPU was chosen, or the device when CUDA was
  std::string library;    // libmoecap_cuda.so loaded ("" if none)
  int driver_version = 0, runtime_version = 0;
  const CudaApi* api = nullptr;  // non-null when backend == "cuda"
};

// `requested`: "cpu", "cuda" or "auto" (empty = "auto"). Throws moecap::Error (Range,
// ERR_INVALID_OPTION) naming the argument (or MOECAP_BACKEND) for any other value. Never throws for a missing GPU
// stack: the choice is "cpu" with the reason. The library stays loaded for the process once found.
BackendChoice choose_backend(const std::string& requested);

// Where libmoecap_cuda.so is looked for, in order (MOECAP_CUDA_LIBRARY alone when set).
std::vector<std::string> cuda_library_candidates();
std::vector<std::string> cuda_library_candidates(const Environment& env);

}  // namespace moecap
