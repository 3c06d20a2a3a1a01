// The expert-parallel exchange of GPU ranks over NCCL (ep.transport 'nccl'): the core's transport
// over the CUDA library's moecap_cuda_nccl_* calls (device buffers, one group of ncclSend/ncclRecv
// pairs per exchange). Rank 0's unique id reaches the other ranks over the host transport (MPI).
#pragma once
#include "backend/cuda_loader.h"
#include "ep/expert_transport.h"

namespace moecap {

class CudaNcclTransport : public ExpertTransport {
 public:
  // Collective over `host`'s ranks: this rank's communicator on `device`. ERR_BACKEND_UNAVAILABLE
  // "NCCL not installed: ..." when libnccl.so.2 cannot be loaded, on every rank.
  CudaNcclTransport(const CudaApi* api, int device, ExpertTransport& host);
  ~CudaNcclTransport() override;
  CudaNcclTransport(const CudaNcclTransport&) = delete;
  CudaNcclTransport& operator=(const CudaNcclTransport&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  // Host blocks, as every transport's: the library stages them through its device buffers.
  void alltoallv(const void* send, const int64_t* send_bytes, void* recv, const int64_t* recv_bytes) override;

 private:
  const CudaApi* api_;
  int rank_, size_;
  moecap_cuda_nccl* comm_ = nullptr;
};

}  // namespace moecap
