// What expert parallelism needs of the link between ranks: an all-to-all of variable-size byte
// blocks. The core knows no MPI: the MPI library (mpi/, loaded at run time) and the in-process
// loopback (N simulated ranks, for tests) both implement it.
#pragma once
#include <cstdint>

namespace moecap {

class ExpertTransport {
 public:
  virtual ~ExpertTransport() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Collective: this rank sends send_bytes[p] bytes to rank p (the blocks lie back to back in
  // `send`, in rank order) and receives recv_bytes[p] bytes from rank p (back to back in `recv`).
  // Every rank must call it, with matching sizes; throws moecap::Error on a failure.
  virtual void alltoallv(const void* send, const int64_t* send_bytes, void* recv, const int64_t* recv_bytes) = 0;
};

}  // namespace moecap
