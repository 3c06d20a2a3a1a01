// What expert parallelism needs of the link between ranks: an all-to-all of variable-size byte
// blocks. The core knows no MPI: the MPI library (mpi/, loaded at run time) and the in-process
// loopback (N simulated ranks, for tests) both implement it.
#pragma once
#include <cstdint>
#include <cstring>
#include <vector>

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

// Collective: rank 0's `bytes` bytes at `data` land at `data` on every rank (an NCCL unique id, say).
inline void broadcast_from_root(ExpertTransport& tr, void* data, int64_t bytes) {
  const int P = tr.size(), me = tr.rank();
  std::vector<uint8_t> out(me == 0 ? size_t(P) * size_t(bytes) : 1);
  if (me == 0)
    for (int p = 0; p < P; ++p) std::memcpy(out.data() + size_t(p) * size_t(bytes), data, size_t(bytes));
  std::vector<int64_t> sb(size_t(P), me == 0 ? bytes : 0), rb(size_t(P), 0);
  rb[0] = bytes;
  std::vector<uint8_t> got(static_cast<size_t>(bytes));
  tr.alltoallv(out.data(), sb.data(), got.data(), rb.data());
  std::memcpy(data, got.data(), size_t(bytes));
}

}  // namespace moecap
