// NCCL exchange self-test (scripts/gpu-check.sh): N ranks as N forked processes, one GPU each
// (NCCL refuses two ranks of one communicator on one device, so N ≤ the GPUs; N = 1 exchanges
// with itself through NCCL). Rank 0's unique id reaches the others through pipes, as the MPI
// library carries it in a real run. Checks every received byte of odd-sized blocks with an empty
// pair, then times a 64 MiB exchange.
//   nccl_selftest [RANKS]      exit 0 ok, 1 a check failed, 77 NCCL not installed or no GPU
//   nccl_selftest --share-id N  only the unique id's trip from rank 0 to N ranks over a host
//                               transport (loopback threads standing in for MPI); no GPU needed
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "ep/loopback_transport.h"
#include "error.h"
#include "nccl_transport.h"

using moecap::NcclUniqueId;

namespace {

unsigned char pattern(int from, int to, int64_t i) {
  return static_cast<unsigned char>(from * 131 + to * 17 + i * 7 + 1);
}

int64_t block(int from, int to, int P) {
  if (P > 1 && to == (from + 1) % P) return 0;  // an empty pair
  return 1000 * (from + 1) + 37 * to + 1;
}

void cuda_ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

// One rank's exchange: send_bytes[p] = sb(me, p), recv_bytes[p] = sb(p, me). Returns the bytes wrong.
int64_t exchange(moecap::NcclTransport& tr, int64_t (*sb)(int, int, int), bool fill, double* seconds) {
  const int P = tr.size(), me = tr.rank();
  std::vector<int64_t> s(static_cast<size_t>(P)), r(static_cast<size_t>(P));
  int64_t st = 0, rt = 0;
  for (int p = 0; p < P; ++p) {
    s[size_t(p)] = sb(me, p, P);
    r[size_t(p)] = sb(p, me, P);
    st += s[size_t(p)];
    rt += r[size_t(p)];
  }
  std::vector<unsigned char> hs(size_t(st) + 1), hr(size_t(rt) + 1);
  for (int p = 0, o = 0; p < P; o += int(s[size_t(p)]), ++p)
    for (int64_t i = 0; i < s[size_t(p)]; ++i) hs[size_t(o + i)] = fill ? pattern(me, p, i) : 0;
  void *ds = nullptr, *dr = nullptr;
  cuda_ok(cudaMalloc(&ds, size_t(st) + 1), "cudaMalloc");
  cuda_ok(cudaMalloc(&dr, size_t(rt) + 1), "cudaMalloc");
  cuda_ok(cudaMemcpy(ds, hs.data(), size_t(st), cudaMemcpyHostToDevice), "cudaMemcpy");
  cuda_ok(cudaMemset(dr, 0xEE, size_t(rt) + 1), "cudaMemset");  // poisoned: unwritten bytes show
  tr.alltoallv(ds, s.data(), dr, r.data());                     // warm-up, and the checked one
  int64_t wrong = 0;
  if (fill) {
    cuda_ok(cudaMemcpy(hr.data(), dr, size_t(rt), cudaMemcpyDeviceToHost), "cudaMemcpy");
    for (int p = 0, o = 0; p < P; o += int(r[size_t(p)]), ++p)
      for (int64_t i = 0; i < r[size_t(p)]; ++i) wrong += hr[size_t(o + i)] != pattern(p, me, i);
  }
  if (seconds) {
    const int iters = 5;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; ++i) tr.alltoallv(ds, s.data(), dr, r.data());
    *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / iters;
  }
  cudaFree(ds);
  cudaFree(dr);
  return wrong;
}

int64_t odd_blocks(int from, int to, int P) { return block(from, to, P); }
int64_t no_blocks(int, int, int) { return 0; }
int64_t big_blocks(int, int, int P) { return (int64_t(64) << 20) / P; }

int run_rank(int me, int P, int id_in, const std::vector<int>& id_out) {
  const moecap::NcclApi& api = moecap::load_nccl();
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices < P) {
    std::printf("rank %d: %d CUDA devices for %d ranks\n", me, devices, P);
    return 77;
  }
  cuda_ok(cudaSetDevice(me), "cudaSetDevice");
  NcclUniqueId id;
  if (me == 0) {
    if (api.get_unique_id(&id) != 0) throw std::runtime_error("ncclGetUniqueId failed");
    for (int fd : id_out)
      if (write(fd, &id, sizeof id) != ssize_t(sizeof id)) throw std::runtime_error("writing the unique id");
  } else if (read(id_in, &id, sizeof id) != ssize_t(sizeof id)) {
    throw std::runtime_error("reading the unique id");
  }
  cudaStream_t stream;
  cuda_ok(cudaStreamCreate(&stream), "cudaStreamCreate");
  int failed = 0;
  {
    moecap::NcclTransport tr(api, me, P, id, stream);
    const int64_t wrong = exchange(tr, odd_blocks, true, nullptr);
    std::printf("%s nccl rank %d/%d: odd blocks (1000·(r+1) + 37·p + 1 bytes), an empty pair: %lld bytes wrong\n",
                wrong ? "FAIL" : "PASS", me, P, static_cast<long long>(wrong));
    failed += wrong != 0;
    exchange(tr, no_blocks, false, nullptr);
    std::printf("PASS nccl rank %d/%d: an exchange with nothing to move returns\n", me, P);
    double s = 0;
    exchange(tr, big_blocks, false, &s);
    const double off = P > 1 ? double(int64_t(64) << 20) * (P - 1) / P : double(int64_t(64) << 20);
    std::printf("nccl rank %d/%d: 64 MiB all-to-all %.3f ms, %.1f GB/s %s\n", me, P, s * 1e3, off / s / 1e9,
                P > 1 ? "sent to other ranks" : "through NCCL to itself (device copy)");
  }
  cudaStreamDestroy(stream);
  return failed ? 1 : 0;
}

// NcclTransport::share_unique_id over N loopback ranks: every rank must get rank 0's id.
int share_id_test(int P) {
  const moecap::NcclApi& api = moecap::load_nccl();
  auto hub = std::make_shared<moecap::LoopbackHub>(P);
  std::vector<NcclUniqueId> got(static_cast<size_t>(P));
  std::vector<std::string> errors(static_cast<size_t>(P));
  std::vector<std::thread> threads;
  for (int r = 0; r < P; ++r)
    threads.emplace_back([&, r] {
      try {
        moecap::LoopbackTransport host(hub, r);
        got[size_t(r)] = moecap::NcclTransport::share_unique_id(api, host);
      } catch (const std::exception& e) {
        errors[size_t(r)] = e.what();
        hub->abort(e.what());
      }
    });
  for (auto& t : threads) t.join();
  int failed = 0;
  for (int r = 0; r < P; ++r) {
    const bool same = std::memcmp(&got[size_t(r)], &got[0], sizeof(NcclUniqueId)) == 0;
    const bool nonzero =
        std::any_of(got[0].internal, got[0].internal + sizeof got[0].internal, [](char c) { return c; });
    const bool ok = errors[size_t(r)].empty() && same && nonzero;
    std::printf("%s nccl unique id on rank %d/%d%s%s\n", ok ? "PASS" : "FAIL", r, P, ok ? ": rank 0's" : ": ",
                errors[size_t(r)].c_str());
    failed += !ok;
  }
  return failed ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  const bool share_id = argc > 1 && std::string(argv[1]) == "--share-id";
  if (share_id) argv++, argc--;
  const int P = argc > 1 ? std::atoi(argv[1]) : 1;
  if (P < 1 || P > 64) {
    std::fprintf(stderr, "usage: nccl_selftest [RANKS 1..64]\n");
    return 2;
  }
  // Loaded in the parent only to report a missing NCCL once (no CUDA call before fork).
  try {
    const moecap::NcclApi& api = moecap::load_nccl();
    std::printf("NCCL %d (%s), %d ranks\n", api.version, api.library.c_str(), P);
  } catch (const moecap::Error& e) {
    std::printf("%s: %s\n", moecap::error_code_name(e.code()), e.what());
    return 77;
  }
  std::fflush(stdout);
  if (share_id) return share_id_test(P);
  std::vector<int> rd(static_cast<size_t>(P), -1), wr(static_cast<size_t>(P), -1);
  for (int r = 1; r < P; ++r) {
    int fd[2];
    if (pipe(fd) != 0) return 2;
    rd[size_t(r)] = fd[0];
    wr[size_t(r)] = fd[1];
  }
  std::vector<pid_t> kids;
  for (int r = 0; r < P; ++r) {
    const pid_t pid = fork();
    if (pid == 0) {
      int rc;
      try {
        rc = run_rank(r, P, rd[size_t(r)], std::vector<int>(wr.begin() + 1, wr.end()));
      } catch (const std::exception& e) {
        std::printf("FAIL nccl rank %d/%d: %s\n", r, P, e.what());
        rc = 1;
      }
      std::fflush(stdout);
      _exit(rc);
    }
    kids.push_back(pid);
  }
  int worst = 0;
  for (pid_t k : kids) {
    int st = 0;
    waitpid(k, &st, 0);
    const int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 1;
    if (rc == 1 || (rc != 0 && worst == 0)) worst = rc;
  }
  std::printf("nccl exchange self-test, %d ranks: %s\n", P, worst == 0 ? "ok" : worst == 77 ? "skipped" : "FAILED");
  return worst;
}
