#include "ep/cuda_nccl_transport.h"

#include <string>

#include "error.h"

namespace moecap {

namespace {

// A failed moecap_cuda_nccl_* call as a moecap::Error (NCCL missing, or failing: ERR_BACKEND_UNAVAILABLE).
void check(const CudaApi* api, int rc, const char* what) {
  if (rc == 0) return;
  const std::string m = std::string(what) + ": " + api->last_error();
  throw_runtime(m, ErrorCode::BackendUnavailable);
}

}  // namespace

CudaNcclTransport::CudaNcclTransport(const CudaApi* api, int device, ExpertTransport& host)
    : api_(api), rank_(host.rank()), size_(host.size()) {
  // Rank 0's id, or its failure, reaches every rank: a first byte 1 says rank 0 has an id, so the
  // other ranks fail with it instead of waiting in ncclCommInitRank for a rank that gave up.
  unsigned char msg[1 + MOECAP_CUDA_NCCL_ID_BYTES] = {0};
  std::string why;
  int rc = 0;
  if (rank_ == 0) {
    rc = api_->nccl_unique_id(msg + 1);
    if (rc == 0) msg[0] = 1;
    else why = api_->last_error();
  }
  broadcast_from_root(host, msg, sizeof msg);
  if (rank_ == 0 && rc != 0) throw_runtime(std::string("ep.transport 'nccl': ") + why, ErrorCode::BackendUnavailable);
  if (msg[0] != 1)
    throw_runtime("ep.transport 'nccl': rank 0 could not start NCCL (its error says why)",
                  ErrorCode::BackendUnavailable);
  check(api_, api_->nccl_create(device, rank_, size_, msg + 1, &comm_), "ep.transport 'nccl': ncclCommInitRank");
}

CudaNcclTransport::~CudaNcclTransport() {
  if (comm_) api_->nccl_destroy(comm_);
}

void CudaNcclTransport::alltoallv(const void* send, const int64_t* send_bytes, void* recv, const int64_t* recv_bytes) {
  check(api_, api_->nccl_alltoallv(comm_, send, send_bytes, recv, recv_bytes), "NCCL exchange");
}

}  // namespace moecap
