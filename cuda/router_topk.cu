// Router: fp32 logits, then one warp per token for scores → top-k, mirroring
// native/core/router/router_topk.cc step by step (same fp32 operations in the same order where
// the order matters for the result: selection, renormalisation and scaling are sequential on
// lane 0; only the softmax max/sum use a warp reduction).
#include <math.h>

#include "kernels.h"

namespace moecap_cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kTokensPerWarp = 8;

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// One warp per (router row j, 8 tokens): the row is read once for the 8 tokens.
template <bool kVec4>
__global__ void router_logits_kernel(const float* __restrict__ x, const float* __restrict__ w, int T, int H, int rows,
                                     float* __restrict__ logits, int ld) {
  const int lane = threadIdx.x & 31;
  const int j = blockIdx.x * kWarps + (threadIdx.x >> 5);
  const int t0 = blockIdx.y * kTokensPerWarp;
  if (j >= rows) return;
  const int nt = min(kTokensPerWarp, T - t0);
  float acc[kTokensPerWarp];
#pragma unroll
  for (int i = 0; i < kTokensPerWarp; ++i) acc[i] = 0.f;
  const float* wr = w + size_t(j) * H;
  if (kVec4) {
    for (int c = lane; c < H / 4; c += 32) {
      const float4 wv = reinterpret_cast<const float4*>(wr)[c];
#pragma unroll
      for (int i = 0; i < kTokensPerWarp; ++i)
        if (i < nt) {
          const float4 xv = reinterpret_cast<const float4*>(x + size_t(t0 + i) * H)[c];
          acc[i] = fmaf(xv.x, wv.x, acc[i]);
          acc[i] = fmaf(xv.y, wv.y, acc[i]);
          acc[i] = fmaf(xv.z, wv.z, acc[i]);
          acc[i] = fmaf(xv.w, wv.w, acc[i]);
        }
    }
  } else {
    for (int h = lane; h < H; h += 32) {
      const float wv = wr[h];
#pragma unroll
      for (int i = 0; i < kTokensPerWarp; ++i)
        if (i < nt) acc[i] = fmaf(x[size_t(t0 + i) * H + h], wv, acc[i]);
    }
  }
#pragma unroll
  for (int i = 0; i < kTokensPerWarp; ++i) {
    const float v = warp_sum(acc[i]);
    if (lane == 0 && i < nt) logits[size_t(t0 + i) * ld + j] = v;
  }
}

// Better of two (value, index) candidates: valid first, then larger value, then lower index.
__device__ __forceinline__ void better(float& v, int& i, float v2, int i2) {
  const bool take = i2 >= 0 && (i < 0 || v2 > v || (v2 == v && i2 < i));
  if (take) {
    v = v2;
    i = i2;
  }
}
__device__ __forceinline__ void warp_argmax(float& v, int& i) {
  for (int o = 16; o > 0; o >>= 1) {
    const float v2 = __shfl_xor_sync(0xffffffffu, v, o);
    const int i2 = __shfl_xor_sync(0xffffffffu, i, o);
    better(v, i, v2, i2);
  }
}

// Phi-3.5-MoE's sparsemixer (top-2 at inference), the CPU's sparsemixer_t step by step on lane 0
// (same fp32 operations in the same order; E is small): per round the best remaining logit m,
// the sum of exp(l_e − m) over the experts not masked by (m − l_e) / max(|l_e|, m) > 2·eps, weight
// 1 / sum, then the winner leaves. `l` (E floats of shared memory) holds the remaining logits.
template <class Logit>
__device__ void sparsemixer_token(const RouterArgs& a, Logit lg, float* l, int32_t* ids, float* weights, int lane) {
  if (lane == 0) {
    const int E = a.experts;
    const float neg_inf = -INFINITY;
    const float eps2 = 2.0f * a.jitter_eps;
    for (int e = 0; e < E; ++e) l[e] = lg(e);
    for (int j = 0; j < 2; ++j) {
      int best = -1;
      for (int e = 0; e < E; ++e)
        if (l[e] != neg_inf && (best < 0 || l[e] > l[best])) best = e;
      if (best < 0) best = j == 0 ? 0 : (ids[0] == 0 ? 1 : 0);  // only with non-finite logits
      const float m = l[best];
      float sum = 0.f;
      for (int e = 0; e < E; ++e) {
        if (l[e] == neg_inf) continue;
        const float le = lg(e);
        const float al = fabsf(le), factor = al < m ? m : al;  // std::max(|l_e|, m), NaN cases alike
        if (__fdiv_rn(m - le, factor) > eps2) continue;        // a NaN ratio does not mask, as on the CPU
        sum += expf(l[e] - m);
      }
      ids[j] = best;
      weights[j] = __fdiv_rn(1.0f, sum);
      l[best] = neg_inf;
    }
    if (a.scaling != 1.0f)
      for (int j = 0; j < 2; ++j) weights[j] *= a.scaling;
  }
  __syncwarp();
}

__global__ void router_topk_kernel(const float* __restrict__ logits, int ld, RouterArgs a, int32_t* __restrict__ ids,
                                   float* __restrict__ weights, float* __restrict__ shared_gate) {
  extern __shared__ float smem[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int t = blockIdx.x * kWarps + warp;
  if (t >= a.tokens) return;
  const int E = a.experts, k = a.top_k;
  float* scores = smem + size_t(warp) * 2 * E;
  float* sel = scores + E;
  const float* l = logits + size_t(t) * ld;
  const float neg_inf = -INFINITY;
  // gpt-oss's router bias joins the logits before scoring (selection and weights).
  auto lg = [&](int e) { return a.logit_bias ? l[e] + a.logit_bias[e] : l[e]; };
  if (a.scoring == 2) {
    sparsemixer_token(a, lg, scores, ids + size_t(t) * k, weights + size_t(t) * k, lane);
    if (lane == 0 && shared_gate) shared_gate[t] = a.shared_gated ? 1.0f / (1.0f + expf(-l[E])) : 1.0f;
    return;
  }

  if (a.scoring == 0) {
    float m = neg_inf;
    for (int e = lane; e < E; e += 32) m = fmaxf(m, lg(e));
    m = warp_max(m);
    float s = 0.f;
    for (int e = lane; e < E; e += 32) {
      const float v = expf(lg(e) - m);
      scores[e] = v;
      s += v;
    }
    const float inv = 1.0f / warp_sum(s);
    for (int e = lane; e < E; e += 32) scores[e] *= inv;
  } else {
    for (int e = lane; e < E; e += 32) scores[e] = 1.0f / (1.0f + expf(-lg(e)));
  }
  for (int e = lane; e < E; e += 32) sel[e] = a.bias ? scores[e] + a.bias[e] : scores[e];
  __syncwarp();

  if (a.group_count > 0) {
    // Lane g scores group g (its best selection score, or the sum of its two best) exactly like
    // the CPU loop.
    const int G = a.group_count, gs = E / G;
    float gscore = neg_inf;
    if (lane < G) {
      float x = neg_inf, y = neg_inf;
      for (int e = lane * gs; e < (lane + 1) * gs; ++e) {
        const float v = sel[e];
        if (v > x) {
          y = x;
          x = v;
        } else if (v > y) {
          y = v;
        }
      }
      gscore = a.group_max || gs < 2 ? x : x + y;
    }
    unsigned keep = 0;
    for (int r = 0; r < a.group_keep; ++r) {
      float v = gscore;
      int i = (lane < G && !((keep >> lane) & 1u)) ? lane : -1;
      warp_argmax(v, i);
      keep |= 1u << i;
    }
    __syncwarp();
    for (int e = lane; e < E; e += 32)
      if (!((keep >> (e / gs)) & 1u)) sel[e] = 0.f;  // masked_fill(~mask, 0.0), as on the CPU
    __syncwarp();
  }

  float sum = 0.f;  // meaningful on lane 0
  for (int j = 0; j < k; ++j) {
    float v = neg_inf;
    int best = -1;
    for (int e = lane; e < E; e += 32)  // ascending e: strict > keeps the lower index on ties
      if (sel[e] != neg_inf && (best < 0 || sel[e] > v)) {
        v = sel[e];
        best = e;
      }
    warp_argmax(v, best);
    if (lane == 0) {
      if (best < 0) {  // only with non-finite logits: the lowest unused index, as on the CPU
        for (int e = 0; e < E && best < 0; ++e) {
          bool used = false;
          for (int i = 0; i < j; ++i) used |= ids[size_t(t) * k + i] == e;
          if (!used) best = e;
        }
      }
      ids[size_t(t) * k + j] = best;
      weights[size_t(t) * k + j] = scores[best];
      sum += scores[best];
      sel[best] = neg_inf;
    }
    __syncwarp();
  }
  if (lane == 0) {
    if (a.renormalize) {
      const float denom = sum + 1e-20f;
      for (int j = 0; j < k; ++j) weights[size_t(t) * k + j] /= denom;
    }
    if (a.scaling != 1.0f)
      for (int j = 0; j < k; ++j) weights[size_t(t) * k + j] *= a.scaling;
    if (shared_gate) shared_gate[t] = a.shared_gated ? 1.0f / (1.0f + expf(-l[E])) : 1.0f;
  }
}

}  // namespace

void launch_router_logits(const float* x, const float* w, int T, int H, int rows, float* logits, int ld,
                          cudaStream_t s) {
  if (T <= 0) return;
  dim3 grid(ceil_div(rows, kWarps), ceil_div(T, kTokensPerWarp));
  const bool vec =
      H % 4 == 0 && (reinterpret_cast<uintptr_t>(x) % 16 == 0) && (reinterpret_cast<uintptr_t>(w) % 16 == 0);
  if (vec) router_logits_kernel<true><<<grid, kWarps * 32, 0, s>>>(x, w, T, H, rows, logits, ld);
  else router_logits_kernel<false><<<grid, kWarps * 32, 0, s>>>(x, w, T, H, rows, logits, ld);
}

void launch_router_topk(const float* logits, int ld, const RouterArgs& a, int32_t* ids, float* weights,
                        float* shared_gate, cudaStream_t s) {
  if (a.tokens <= 0) return;
  const size_t smem = size_t(kWarps) * 2 * a.experts * sizeof(float);
  router_topk_kernel<<<ceil_div(a.tokens, kWarps), kWarps * 32, smem, s>>>(logits, ld, a, ids, weights, shared_gate);
}

}  // namespace moecap_cuda
