// The C ABI of the expert-parallel exchange over NCCL (cuda_abi.h, moecap_cuda_nccl_*): the core's
// GPU forward hands host blocks (its rows are staged through host memory by the ep_* calls); here
// they go to device buffers, across as one group of ncclSend/ncclRecv pairs (NcclTransport), and
// back. Built into libmoecap_cuda.so, and into the tests' host stand-in with a host stand-in for
// the CUDA runtime (cuda/test/fake_cuda_runtime), so the same code runs on the CPU there.
#include <cuda_runtime.h>

#include <cstring>
#include <memory>
#include <string>

#include "abi_error.h"
#include "backend/cuda_abi.h"
#include "error.h"
#include "nccl_transport.h"

namespace {

void check_cuda(cudaError_t e, const char* what) {
  if (e != cudaSuccess) moecap::throw_runtime(std::string(what) + " failed: " + cudaGetErrorString(e));
}

// A device buffer that grows to the largest exchange seen (one pass's blocks are reused every pass).
struct DeviceBuffer {
  void* p = nullptr;
  size_t bytes = 0;
  ~DeviceBuffer() {
    if (p) cudaFree(p);
  }
  void* reserve(size_t n) {
    if (n <= bytes) return p;
    if (p) cudaFree(p);
    p = nullptr;
    bytes = 0;
    check_cuda(cudaMalloc(&p, n), "cudaMalloc of the NCCL exchange buffer");
    bytes = n;
    return p;
  }
};

// 0, MOECAP_CUDA_NCCL_UNAVAILABLE (NCCL missing) or -1, with the message kept for moecap_cuda_last_error.
template <class F>
int nccl_guarded(F&& f) {
  try {
    f();
    moecap_cuda::set_last_error("");
    return 0;
  } catch (const moecap::Error& e) {
    moecap_cuda::set_last_error(e.what());
    return e.code() == moecap::ErrorCode::BackendUnavailable ? MOECAP_CUDA_NCCL_UNAVAILABLE : -1;
  } catch (const std::exception& e) {
    moecap_cuda::set_last_error(e.what());
    return -1;
  }
}

}  // namespace

struct moecap_cuda_nccl {
  int device = 0;
  cudaStream_t stream = nullptr;
  std::unique_ptr<moecap::NcclTransport> transport;
  DeviceBuffer send, recv;
  ~moecap_cuda_nccl() {
    transport.reset();  // the communicator before its stream
    if (stream) cudaStreamDestroy(stream);
  }
};

extern "C" {

MOECAP_CUDA_API int moecap_cuda_nccl_unique_id(void* id) {
  return nccl_guarded([&] {
    if (!id) moecap::throw_range("moecap_cuda_nccl_unique_id: id is required");
    static_assert(sizeof(moecap::NcclUniqueId) == MOECAP_CUDA_NCCL_ID_BYTES, "ncclUniqueId is 128 bytes");
    const moecap::NcclApi& api = moecap::load_nccl();
    moecap::NcclUniqueId u;
    const moecap::NcclResult r = api.get_unique_id(&u);
    if (r != 0)
      moecap::throw_runtime(std::string("ncclGetUniqueId failed: ") + api.error_string(r),
                            moecap::ErrorCode::BackendUnavailable);
    std::memcpy(id, &u, sizeof u);
  });
}

MOECAP_CUDA_API int moecap_cuda_nccl_create(int device, int rank, int ranks, const void* id, moecap_cuda_nccl** out) {
  return nccl_guarded([&] {
    if (!id || !out) moecap::throw_range("moecap_cuda_nccl_create: id and out are required");
    *out = nullptr;
    const moecap::NcclApi& api = moecap::load_nccl();
    std::unique_ptr<moecap_cuda_nccl> c(new moecap_cuda_nccl);
    c->device = device;
    check_cuda(cudaSetDevice(device), "cudaSetDevice for the NCCL communicator");
    check_cuda(cudaStreamCreate(&c->stream), "cudaStreamCreate for the NCCL exchange");
    moecap::NcclUniqueId u;
    std::memcpy(&u, id, sizeof u);
    c->transport.reset(new moecap::NcclTransport(api, rank, ranks, u, c->stream));
    *out = c.release();
  });
}

MOECAP_CUDA_API int moecap_cuda_nccl_alltoallv(moecap_cuda_nccl* c, const void* send, const int64_t* send_bytes,
                                               void* recv, const int64_t* recv_bytes) {
  return nccl_guarded([&] {
    if (!c || !send_bytes || !recv_bytes)
      moecap::throw_range("moecap_cuda_nccl_alltoallv: comm and byte counts are required");
    const int P = c->transport->size();
    int64_t st = 0, rt = 0;
    for (int p = 0; p < P; ++p) {
      if (send_bytes[p] < 0 || recv_bytes[p] < 0) moecap::throw_range("moecap_cuda_nccl_alltoallv: a negative block");
      st += send_bytes[p];
      rt += recv_bytes[p];
    }
    if ((st > 0 && !send) || (rt > 0 && !recv))
      moecap::throw_range("moecap_cuda_nccl_alltoallv: a block without a buffer");
    check_cuda(cudaSetDevice(c->device), "cudaSetDevice for the NCCL exchange");
    void* ds = c->send.reserve(size_t(st) + 1);
    void* dr = c->recv.reserve(size_t(rt) + 1);
    if (st > 0)
      check_cuda(cudaMemcpyAsync(ds, send, size_t(st), cudaMemcpyHostToDevice, c->stream),
                 "copy of the blocks to the device");
    c->transport->alltoallv(ds, send_bytes, dr, recv_bytes);  // waits for the stream
    if (rt > 0) {
      check_cuda(cudaMemcpyAsync(recv, dr, size_t(rt), cudaMemcpyDeviceToHost, c->stream),
                 "copy of the blocks to the host");
      check_cuda(cudaStreamSynchronize(c->stream), "cudaStreamSynchronize after the copy back");
    }
  });
}

MOECAP_CUDA_API void moecap_cuda_nccl_destroy(moecap_cuda_nccl* c) { delete c; }

}  // extern "C"
