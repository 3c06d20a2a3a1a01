// Routing plan on the device: a stable counting sort of the T·k assignments by expert into
// block-padded segments, with the CPU core's capacity rule (an expert keeps its first C
// assignments in token order). Deterministic: no atomics decide any position.
//   general path (one block): each thread owns a contiguous chunk of assignments;
//     histogram per (expert, thread) → exclusive scan over threads per expert (a warp each) → padded
//     segment offsets (thread 0) → every thread scatters its chunk in order.
//   one-token path (T == 1, block == 1): the k ids are distinct, so the row of choice j is the
//     number of chosen experts with a smaller id; one warp, no sort.
#include "kernels.h"

namespace moecap_cuda {
namespace {

constexpr int kPlanThreads = 1024;

__device__ void write_shared_segment(const float* shared_gate, int T, int block, const PlanDev& p, int E, int tid,
                                     int nthreads) {
  const int base = p.offsets[E];
  const int rows = round_up(T, block);
  for (int r = tid; r < rows; r += nthreads) {
    p.slot_token[base + r] = r < T ? r : -1;
    p.slot_scale[base + r] = r < T ? (shared_gate ? shared_gate[r] : 1.0f) : 0.0f;
  }
}

__global__ void plan_one_token_kernel(const int32_t* __restrict__ ids, const float* __restrict__ w,
                                      const float* __restrict__ shared_gate, int k, int E, bool shared, PlanDev p) {
  const int lane = threadIdx.x;
  // offsets[e] = chosen experts with id < e (segments of one row each).
  for (int e = lane; e <= E; e += 32) {
    int below = 0, hit = 0;
    for (int j = 0; j < k; ++j) {
      below += ids[j] < e;
      hit |= ids[j] == e;
    }
    if (e < E) {
      p.offsets[e] = below;
      p.counts[e] = hit;
    } else {
      p.offsets[E] = k;
      p.counts[E] = shared ? 1 : 0;
      p.offsets[E + 1] = k + (shared ? 1 : 0);
    }
  }
  for (int j = lane; j < k; j += 32) {
    int rank = 0;
    for (int i = 0; i < k; ++i) rank += ids[i] < ids[j];
    p.token_slot[j] = rank;
    p.slot_token[rank] = 0;
    p.slot_scale[rank] = w[j];
    p.active[rank] = ids[j];
  }
  if (lane == 0) {
    if (shared) {
      p.active[k] = E;
      p.slot_token[k] = 0;
      p.slot_scale[k] = shared_gate ? shared_gate[0] : 1.0f;
    }
    p.scalars[kNActive] = k + (shared ? 1 : 0);
    p.scalars[kDistinct] = k;
    p.scalars[kDropped] = 0;
    p.scalars[kTotalRows] = k + (shared ? 1 : 0);
  }
}

__global__ void plan_general_kernel(const int32_t* __restrict__ ids, const float* __restrict__ w,
                                    const float* __restrict__ shared_gate, int T, int k, int E, long long capacity,
                                    int block, bool shared, PlanDev p) {
  const int tid = threadIdx.x, P = blockDim.x;
  const int N = T * k;
  const int chunk = ceil_div(N, P);
  const int a0 = min(N, tid * chunk), a1 = min(N, a0 + chunk);
  int* cnt = p.scratch;  // [E][P]: assignments of expert e in thread p's chunk, then its rank base
  __shared__ int s_dropped;
  for (int e = 0; e < E; ++e) cnt[size_t(e) * P + tid] = 0;
  for (int a = a0; a < a1; ++a) ++cnt[size_t(ids[a]) * P + tid];
  if (tid == 0) s_dropped = 0;
  __syncthreads();
  // Per expert, one warp: exclusive scan over the threads' counts (token order) → each thread's
  // rank base; the expert's total and kept rows. Lane l scans threads [l·P/32, (l+1)·P/32).
  {
    const int lane = tid & 31, warp = tid >> 5, warps = P >> 5, per = P >> 5;
    for (int e = warp; e < E; e += warps) {
      int* row = cnt + size_t(e) * P + lane * per;
      int local = 0;
      for (int q = 0; q < per; ++q) local += row[q];
      int incl = local;
      for (int o = 1; o < 32; o <<= 1) {
        const int v = __shfl_up_sync(0xffffffffu, incl, o);
        if (lane >= o) incl += v;
      }
      int run = incl - local;
      for (int q = 0; q < per; ++q) {
        const int c = row[q];
        row[q] = run;
        run += c;
      }
      const int total = __shfl_sync(0xffffffffu, incl, 31);
      if (lane == 0) {
        const int kept = kept_rows(total, capacity);
        p.counts[e] = kept;
        atomicAdd(&s_dropped, total - kept);  // a sum: order-independent
      }
    }
  }
  __syncthreads();
  if (tid == 0) {
    if (shared) p.counts[E] = T;
    else p.counts[E] = 0;
    padded_offsets(p.counts, E + 1, block, p.offsets);
    int n = 0, distinct = 0;
    for (int e = 0; e <= E; ++e)
      if (p.counts[e] > 0) {
        p.active[n++] = e;
        distinct += e < E;
      }
    p.scalars[kNActive] = n;
    p.scalars[kDistinct] = distinct;
    p.scalars[kDropped] = s_dropped;
    p.scalars[kTotalRows] = p.offsets[E + 1];
  }
  __syncthreads();
  for (int a = a0; a < a1; ++a) {
    const int e = ids[a];
    const int rank = cnt[size_t(e) * P + tid]++;
    if (rank < capacity) {
      const int slot = p.offsets[e] + rank;
      p.token_slot[a] = slot;
      p.slot_token[slot] = a / k;
      p.slot_scale[slot] = w[a];
    } else {
      p.token_slot[a] = -1;
    }
  }
  // Padding rows of each routed segment.
  for (int e = 0; e < E; ++e)
    for (int r = p.offsets[e] + p.counts[e] + tid; r < p.offsets[e + 1]; r += P) {
      p.slot_token[r] = -1;
      p.slot_scale[r] = 0.0f;
    }
  if (shared) write_shared_segment(shared_gate, T, block, p, E, tid, P);
}

}  // namespace

size_t plan_scratch_ints(int T, int k, int E) {
  (void)T;
  (void)k;
  return size_t(E) * kPlanThreads;
}

size_t plan_rows_bound(int T, int k, int E, int block, bool shared) {
  return size_t(padded_rows_bound(int64_t(T) * k, E, block)) + (shared ? size_t(round_up(T, block)) : 0) + block;
}

void launch_build_plan(const int32_t* ids, const float* weights, const float* shared_gate, int T, int k, int E,
                       int64_t capacity, int block, bool shared, const PlanDev& p, cudaStream_t s) {
  if (T == 1 && block == 1) {
    plan_one_token_kernel<<<1, 32, 0, s>>>(ids, weights, shared_gate, k, E, shared, p);
    return;
  }
  // Enough threads that each owns a few dozen assignments, never more than kPlanThreads.
  int threads = round_up(max(1, min(kPlanThreads, ceil_div(T * k, 16))), 32);
  plan_general_kernel<<<1, threads, 0, s>>>(ids, weights, shared_gate, T, k, E, (long long)capacity, block, shared, p);
}

}  // namespace moecap_cuda
