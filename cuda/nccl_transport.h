// Expert parallelism between GPU ranks: the core's transport (ep/expert_transport.h) over NCCL,
// for device buffers. One exchange is a group of ncclSend/ncclRecv, one pair per peer with bytes
// to move (the counts and then the payload are two such exchanges, as over MPI), on the rank's
// stream, waited for before it returns.
#pragma once
#include <cuda_runtime.h>

#include "ep/expert_transport.h"
#include "nccl_api.h"

namespace moecap {

class NcclTransport : public ExpertTransport {
 public:
  // Collective over the `size` ranks that share `id`; the current CUDA device is this rank's.
  NcclTransport(const NcclApi& api, int rank, int size, const NcclUniqueId& id, cudaStream_t stream);
  ~NcclTransport() override;
  NcclTransport(const NcclTransport&) = delete;
  NcclTransport& operator=(const NcclTransport&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  // send/recv are device pointers; the byte counts are on the host.
  void alltoallv(const void* send, const int64_t* send_bytes, void* recv, const int64_t* recv_bytes) override;

  // Collective over `host` (the MPI transport, say): rank 0's new unique id, on every rank.
  static NcclUniqueId share_unique_id(const NcclApi& api, ExpertTransport& host);

 private:
  const NcclApi& api_;
  int rank_, size_;
  cudaStream_t stream_;
  NcclComm comm_ = nullptr;
};

}  // namespace moecap
