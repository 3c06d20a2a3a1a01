// The few NCCL entry points expert parallelism needs, declared here (their C ABI has been stable
// since NCCL 2.7) so the CUDA library builds without NCCL's headers and runs without NCCL until
// a GPU expert-parallel exchange is asked for: libnccl.so.2 is dlopened then.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <string>

namespace moecap {

struct NcclUniqueId {  // ncclUniqueId: NCCL_UNIQUE_ID_BYTES opaque bytes, passed by value
  char internal[128];
};
using NcclComm = struct NcclCommOpaque*;  // ncclComm_t
using NcclResult = int;                   // ncclResult_t: 0 = ncclSuccess
constexpr int kNcclUint8 = 1;             // ncclDataType_t ncclUint8

struct NcclApi {
  std::string library;  // the file dlopened
  int version = 0;      // ncclGetVersion: major·10000 + minor·100 + patch (2.9+)
  NcclResult (*get_version)(int*) = nullptr;
  NcclResult (*get_unique_id)(NcclUniqueId*) = nullptr;
  NcclResult (*comm_init_rank)(NcclComm*, int, NcclUniqueId, int) = nullptr;
  NcclResult (*comm_destroy)(NcclComm) = nullptr;
  NcclResult (*group_start)() = nullptr;
  NcclResult (*group_end)() = nullptr;
  NcclResult (*send)(const void*, size_t, int, int, NcclComm, cudaStream_t) = nullptr;
  NcclResult (*recv)(void*, size_t, int, int, NcclComm, cudaStream_t) = nullptr;
  const char* (*error_string)(NcclResult) = nullptr;
};

// libnccl.so.2 (or $MOECAP_NCCL_LIBRARY), loaded once. Throws moecap::Error
// ERR_BACKEND_UNAVAILABLE "NCCL not installed: ..." when it cannot be loaded, or lacks a symbol.
const NcclApi& load_nccl();

}  // namespace moecap
