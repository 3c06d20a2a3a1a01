// Expert FFN kernels over the routing plan's segments (see kernels.h):
//   make_act_rows   fp32 rows → the dtype's activation rows (bf16 RNE for bf16/fp8, or int8 per
//                   block of 32 for int8/int4/mxfp4 with the CPU core's scale rule), so integer
//                   dot products match the CPU's.
//   experts_simt    decode (and the prefill of the block formats): one warp per output row of one
//                   expert, 16-byte weight loads, the row is streamed once per 16 rows of its
//                   segment; SwiGLU fused into gate/up, router weight fused into the down store.
//   experts_tensor  prefill (bf16): grouped GEMM over block-padded segments with wmma
//                   m16n16k16 bf16 → fp32, gate and up tiles in one block so SwiGLU is fused.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <mma.h>

#include "block_decode.h"
#include "kernels.h"

namespace moecap_cuda {
namespace {

constexpr int kRowsPerBlock = 8;  // warps per block in the SIMT kernels

__device__ __forceinline__ float bf16_lo(uint32_t v) { return __uint_as_float(v << 16); }
__device__ __forceinline__ float bf16_hi(uint32_t v) { return __uint_as_float(v & 0xffff0000u); }
__device__ __forceinline__ float silu_f(float g) { return g / (1.0f + expf(-g)); }
__device__ __forceinline__ float half_bits_to_float(uint16_t h) { return __half2float(__ushort_as_half(h)); }

// The gate/up epilogue of row f of segment seg for a slot (the CPU's Epilogue::GatedVariant):
// input score (Llama 4), biases, then silu(g)·u or gpt-oss's (clamp(u) + 1)·g·σ(α·g), g ≤ limit.
__device__ __forceinline__ float glu_epilogue(const ExpertArgs& a, int seg, int slot, int f, float g, float u) {
  if (seg < a.E) {
    if (a.score_on_input) {
      const float s = a.slot_scale[slot];
      g *= s;
      u *= s;
    }
    if (a.gate_bias) {
      g += a.gate_bias[size_t(seg) * a.F + f];
      u += a.up_bias[size_t(seg) * a.F + f];
    }
    if (a.clamp_limit != 0.0f) {
      const float lim = a.clamp_limit;
      g = g > lim ? lim : g;
      u = u > lim ? lim : (u < -lim ? -lim : u);
      return (u + 1.0f) * (g / (1.0f + expf(-a.alpha * g)));
    }
  }
  return silu_f(g) * u;
}
// The down epilogue of output h: router weight · (acc + bias), or acc when the score went in.
__device__ __forceinline__ float down_epilogue(const ExpertArgs& a, int seg, int slot, int h, float acc) {
  if (seg < a.E) {
    if (a.down_bias) acc += a.down_bias[size_t(seg) * a.H + h];
    if (a.score_on_input) return acc;
  }
  return a.slot_scale[slot] * acc;
}

// ---- activation rows ----
__global__ void make_act_rows_kernel(int dt, const float* __restrict__ in, int ld_in, int rows, int K,
                                     uint8_t* __restrict__ out, const int* __restrict__ total) {
  const int lane = threadIdx.x & 31;
  const int r = blockIdx.x * (blockDim.x / 32) + (threadIdx.x >> 5);
  if (r >= rows || (total && r >= *total)) return;
  const int Kp = padded_k(K);
  const float* x = in + size_t(r) * ld_in;
  uint8_t* o = out + size_t(r) * act_row_bytes(dt, K);
  const int adt = act_dtype(dt);
  if (adt == kF32 || adt == kBF16) {
    for (int k = lane; k < Kp; k += 32) {
      const float v = k < K ? x[k] : 0.0f;
      if (adt == kF32) reinterpret_cast<float*>(o)[k] = v;
      else reinterpret_cast<__nv_bfloat16*>(o)[k] = __float2bfloat16_rn(v);
    }
    return;
  }
  int8_t* q = reinterpret_cast<int8_t*>(o);
  float* scale = reinterpret_cast<float*>(o + Kp);
  for (int b = lane; b < Kp / kQBlock; b += 32) {
    const int k0 = b * kQBlock;
    float amax = 0.0f;
    for (int i = 0; i < kQBlock; ++i)
      if (k0 + i < K) amax = fmaxf(amax, fabsf(x[k0 + i]));
    const float s = amax / 127.0f;
    const float inv = s > 0 ? 127.0f / amax : 0.0f;
    for (int i = 0; i < kQBlock; ++i) {
      int v = 0;
      if (k0 + i < K) v = max(-127, min(127, __float2int_rn(__fmul_rn(x[k0 + i], inv))));
      q[k0 + i] = int8_t(v);
    }
    scale[b] = s;
  }
}

// ---- SIMT (decode) ----
// Lane-partial dot products of one 16-byte chunk (f32: 4 values, bf16: 8, fp8: 16) or one
// 32-value block (int8: 32 bytes, int4/mxfp4: 16 bytes) of a weight row with an activation row;
// ws: the row's scales (fp16, E8M0 bytes or fp32 by dtype).
template <int DT>
struct ChunkDot;

template <>
struct ChunkDot<kF32> {
  static __device__ int chunks(int Kp) { return Kp / 4; }
  static __device__ __forceinline__ float dot(const uint8_t* w, const uint8_t*, const uint8_t* x, int xs_off, int c) {
    const float4 wv = __ldg(reinterpret_cast<const float4*>(w) + c);
    const float4 xv = *(reinterpret_cast<const float4*>(x) + c);
    float acc = wv.x * xv.x;
    acc = fmaf(wv.y, xv.y, acc);
    acc = fmaf(wv.z, xv.z, acc);
    return fmaf(wv.w, xv.w, acc);
  }
};

template <>
struct ChunkDot<kBF16> {
  static __device__ int chunks(int Kp) { return Kp / 8; }
  static __device__ __forceinline__ float dot(const uint8_t* w, const uint8_t*, const uint8_t* x, int xs_off, int c) {
    const uint4 wv = __ldg(reinterpret_cast<const uint4*>(w) + c);
    const uint4 xv = *(reinterpret_cast<const uint4*>(x) + c);
    float acc = bf16_lo(wv.x) * bf16_lo(xv.x);
    acc = fmaf(bf16_hi(wv.x), bf16_hi(xv.x), acc);
    acc = fmaf(bf16_lo(wv.y), bf16_lo(xv.y), acc);
    acc = fmaf(bf16_hi(wv.y), bf16_hi(xv.y), acc);
    acc = fmaf(bf16_lo(wv.z), bf16_lo(xv.z), acc);
    acc = fmaf(bf16_hi(wv.z), bf16_hi(xv.z), acc);
    acc = fmaf(bf16_lo(wv.w), bf16_lo(xv.w), acc);
    return fmaf(bf16_hi(wv.w), bf16_hi(xv.w), acc);
  }
};

// Quantised: exact int32 dot of one 32-block (dp4a), then × (w scale · x scale) as on the CPU.
template <>
struct ChunkDot<kI8> {
  static __device__ int chunks(int Kp) { return Kp / kQBlock; }
  static __device__ __forceinline__ float dot(const uint8_t* w, const uint8_t* ws, const uint8_t* x, int xs_off,
                                              int b) {
    const uint4 w0 = __ldg(reinterpret_cast<const uint4*>(w) + 2 * b);
    const uint4 w1 = __ldg(reinterpret_cast<const uint4*>(w) + 2 * b + 1);
    const uint4 x0 = *(reinterpret_cast<const uint4*>(x) + 2 * b);
    const uint4 x1 = *(reinterpret_cast<const uint4*>(x) + 2 * b + 1);
    int d = __dp4a(int(w0.x), int(x0.x), 0);
    d = __dp4a(int(w0.y), int(x0.y), d);
    d = __dp4a(int(w0.z), int(x0.z), d);
    d = __dp4a(int(w0.w), int(x0.w), d);
    d = __dp4a(int(w1.x), int(x1.x), d);
    d = __dp4a(int(w1.y), int(x1.y), d);
    d = __dp4a(int(w1.z), int(x1.z), d);
    d = __dp4a(int(w1.w), int(x1.w), d);
    const float xs = reinterpret_cast<const float*>(x + xs_off)[b];
    return float(d) * (half_bits_to_float(reinterpret_cast<const uint16_t*>(ws)[b]) * xs);
  }
};

// The exact integer dot of block b of 32 packed nibbles (16 bytes, int4's order: a 32-bit word's low
// nibbles are k..k+3, its high ones k+4..k+7) against its 32 int8 activations; `Bytes` turns four
// nibbles (one per byte) into four signed bytes for dp4a. int4 and mxfp4 differ only there.
template <class Bytes>
__device__ __forceinline__ int nibble_block_dot(const uint8_t* w, const uint8_t* x, int b) {
  const uint4 wv = __ldg(reinterpret_cast<const uint4*>(w) + b);
  const uint4 x0 = *(reinterpret_cast<const uint4*>(x) + 2 * b);
  const uint4 x1 = *(reinterpret_cast<const uint4*>(x) + 2 * b + 1);
  const uint32_t words[4] = {wv.x, wv.y, wv.z, wv.w}, xs[8] = {x0.x, x0.y, x0.z, x0.w, x1.x, x1.y, x1.z, x1.w};
  int d = 0;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    d = __dp4a(int(Bytes::of(words[i] & 0x0F0F0F0Fu)), int(xs[2 * i]), d);
    d = __dp4a(int(Bytes::of((words[i] >> 4) & 0x0F0F0F0Fu)), int(xs[2 * i + 1]), d);
  }
  return d;
}

// int4 levels: nibble − 8.
struct Int4Bytes {
  static __device__ __forceinline__ uint32_t of(uint32_t v) { return __vsub4(v, 0x08080808u); }
};
// mxfp4: E2M1 codes as 2·value (block_decode.h).
struct E2m1Bytes {
  static __device__ __forceinline__ uint32_t of(uint32_t v) { return e2m1_twice4(v); }
};

template <>
struct ChunkDot<kI4> {
  static __device__ int chunks(int Kp) { return Kp / kQBlock; }
  static __device__ __forceinline__ float dot(const uint8_t* w, const uint8_t* ws, const uint8_t* x, int xs_off,
                                              int b) {
    const int d = nibble_block_dot<Int4Bytes>(w, x, b);
    const float xs = reinterpret_cast<const float*>(x + xs_off)[b];
    return float(d) * (half_bits_to_float(reinterpret_cast<const uint16_t*>(ws)[b]) * xs);
  }
};

// mxfp4: the same exact dp4a block dot as int4 on 2·value, × the E8M0 scale halved, as the CPU's
// integer kernels.
template <>
struct ChunkDot<kMX4> {
  static __device__ int chunks(int Kp) { return Kp / kQBlock; }
  static __device__ __forceinline__ float dot(const uint8_t* w, const uint8_t* ws, const uint8_t* x, int xs_off,
                                              int b) {
    const int d = nibble_block_dot<E2m1Bytes>(w, x, b);
    const float xs = reinterpret_cast<const float*>(x + xs_off)[b];
    return float(d) * (__uint_as_float(e8m0_half_bits(__ldg(ws + b))) * xs);
  }
};

// fp8: 16 E4M3 codes against 16 bf16 activations. The codes' bits moved into fp16 are value·2^-8
// exactly (block_decode.h); products summed in fp32, then × (block scale · 2^8), the CPU's order.
__device__ __forceinline__ float2 e4m3_pair_scaled(uint32_t w, uint32_t sel) {
  const uint32_t h = e4m3_pair_f16_scaled(w, sel);
  return __half22float2(*reinterpret_cast<const __half2*>(&h));
}
__device__ __forceinline__ float fp8_word_dot(uint32_t w, uint32_t xa, uint32_t xb, float acc) {
  const float2 p = e4m3_pair_scaled(w, kE4m3Pair01), q = e4m3_pair_scaled(w, kE4m3Pair23);  // codes 0,1 and 2,3
  acc = fmaf(p.x, bf16_lo(xa), acc);
  acc = fmaf(p.y, bf16_hi(xa), acc);
  acc = fmaf(q.x, bf16_lo(xb), acc);
  return fmaf(q.y, bf16_hi(xb), acc);
}

template <>
struct ChunkDot<kFP8> {
  static __device__ int chunks(int Kp) { return Kp / 16; }
  static __device__ __forceinline__ float dot(const uint8_t* w, const uint8_t* ws, const uint8_t* x, int, int c) {
    const uint4 wv = __ldg(reinterpret_cast<const uint4*>(w) + c);
    const uint4 x0 = *(reinterpret_cast<const uint4*>(x) + 2 * c);
    const uint4 x1 = *(reinterpret_cast<const uint4*>(x) + 2 * c + 1);
    float acc = fp8_word_dot(wv.x, x0.x, x0.y, 0.0f);
    acc = fp8_word_dot(wv.y, x0.z, x0.w, acc);
    acc = fp8_word_dot(wv.z, x1.x, x1.y, acc);
    acc = fp8_word_dot(wv.w, x1.z, x1.w, acc);
    const float s = __ldg(reinterpret_cast<const float*>(ws) + c / (kFp8QBlock / 16));
    return acc * (s * 256.0f);
  }
};

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ int segment_for_block(const ExpertArgs& a, int y) {
  if (a.fixed_seg >= 0) return y == 0 ? a.fixed_seg : -1;
  return y < a.scalars[kNActive] ? a.active[y] : -1;
}

// GLU = true: rows f of gate and up → h = silu(g)·u (rows in [F, Fp) write zeros).
// GLU = false: rows h of down → out = scale · acc.
template <int DT, int NT, bool GLU>
__global__ void __launch_bounds__(kRowsPerBlock * 32) experts_simt_kernel(ExpertArgs a) {
  const int lane = threadIdx.x & 31;
  const int seg = segment_for_block(a, blockIdx.y);
  if (seg < 0) return;
  const int Fseg = seg == a.E ? a.Fs : a.F;
  const int row = blockIdx.x * kRowsPerBlock + (threadIdx.x >> 5);
  const int K = GLU ? a.H : Fseg;
  const int Kp = padded_k(K);
  const int n = a.counts[seg], base = a.offsets[seg];
  if (GLU ? row >= padded_k(Fseg) : row >= a.H) return;
  const int ADT = act_dtype(DT);
  if (GLU && row >= Fseg) {  // K padding of h must be zero for the down projection
    for (int r = lane; r < n; r += 32) {
      const int slot = base + r;
      if (ADT == kF32) reinterpret_cast<float*>(a.h_act + slot * a.h_stride)[row] = 0.0f;
      else if (ADT == kBF16) reinterpret_cast<uint16_t*>(a.h_act + slot * a.h_stride)[row] = 0;
      else a.h_f32[size_t(slot) * fp_max(a) + row] = 0.0f;
    }
    return;
  }
  const ExpertLayout L = expert_layout(DT, a.H, Fseg);
  const int mrows = GLU ? 2 * Fseg : a.H;
  const uint8_t* mat = a.wptr[seg] + (GLU ? L.w13 : L.w2);
  const size_t rvb = row_value_bytes(DT, K);
  const size_t rsb = size_t(row_scales(DT, K)) * scale_bytes(DT);  // a row's scale bytes
  const uint8_t* scales = rsb ? mat + scales_offset(DT, mrows, K) : nullptr;
  const uint8_t* w0 = mat + size_t(row) * rvb;
  const uint8_t* w1 = GLU ? mat + size_t(Fseg + row) * rvb : nullptr;
  const uint8_t* s0 = scales ? scales + size_t(row) * rsb : nullptr;
  const uint8_t* s1 = scales && GLU ? scales + size_t(Fseg + row) * rsb : nullptr;
  const size_t x_stride = act_row_bytes(DT, a.H);
  const int nchunks = ChunkDot<DT>::chunks(Kp);
  // Byte offset of the int8 rows' scales: x rows were quantised with K = H, h rows with K = Fpmax.
  const int xs_off = GLU ? padded_k(a.H) : fp_max(a);

  for (int r0 = 0; r0 < n; r0 += NT) {
    const int m = min(NT, n - r0);
    const uint8_t* xr[NT];
#pragma unroll
    for (int i = 0; i < NT; ++i) {
      const int slot = base + r0 + min(i, m - 1);
      xr[i] = GLU ? a.x_act + size_t(a.slot_token[slot]) * x_stride : a.h_act + size_t(slot) * a.h_stride;
    }
    float acc0[NT], acc1[NT];
#pragma unroll
    for (int i = 0; i < NT; ++i) acc0[i] = acc1[i] = 0.0f;
#pragma unroll 2
    for (int c = lane; c < nchunks; c += 32) {
#pragma unroll
      for (int i = 0; i < NT; ++i) {
        if (i < m) {
          acc0[i] += ChunkDot<DT>::dot(w0, s0, xr[i], xs_off, c);
          if (GLU) acc1[i] += ChunkDot<DT>::dot(w1, s1, xr[i], xs_off, c);
        }
      }
    }
#pragma unroll
    for (int i = 0; i < NT; ++i) {
      if (i >= m) break;
      const float g = warp_sum(acc0[i]);
      const float u = GLU ? warp_sum(acc1[i]) : 0.0f;
      if (lane == 0) {
        const int slot = base + r0 + i;
        if (GLU) {
          const float h = glu_epilogue(a, seg, slot, row, g, u);
          if (ADT == kF32) reinterpret_cast<float*>(a.h_act + slot * a.h_stride)[row] = h;
          else if (ADT == kBF16)
            reinterpret_cast<__nv_bfloat16*>(a.h_act + slot * a.h_stride)[row] = __float2bfloat16_rn(h);
          else a.h_f32[size_t(slot) * fp_max(a) + row] = h;
        } else {
          a.out[size_t(slot) * a.H + row] = down_epilogue(a, seg, slot, row, g);
        }
      }
    }
  }
}

template <int DT, int NT>
void launch_simt_dt(const ExpertArgs& a, cudaStream_t s) {
  const int segs = a.fixed_seg >= 0 ? 1 : a.grid_segments;
  const int fp = fp_max(a);
  experts_simt_kernel<DT, NT, true><<<dim3(ceil_div(fp, kRowsPerBlock), segs), kRowsPerBlock * 32, 0, s>>>(a);
  if (act_dtype(DT) == kI8)  // re-encode h as int8 blocks for the down projection's dp4a
    launch_make_act_rows(DT, a.h_f32, fp, a.rows_bound, fp, a.h_act, a.scalars + kTotalRows, s);
  experts_simt_kernel<DT, NT, false><<<dim3(ceil_div(a.H, kRowsPerBlock), segs), kRowsPerBlock * 32, 0, s>>>(a);
}

// Tokens per pass over a row. NT = 16 takes 128–170 registers (1–2 blocks an SM), so at decode
// sizes it starves the loads: on an H200, T = 16 ran 1.4–2.2× slower with 16 than with 4 (8 was
// between), each dtype, OLMoE and Mixtral shapes. T in 17..64 was not measured and keeps 16.
template <int DT>
void launch_simt_nt(const ExpertArgs& a, int T, cudaStream_t s) {
  if (T <= 1) launch_simt_dt<DT, 1>(a, s);
  else if (T <= 16) launch_simt_dt<DT, 4>(a, s);
  else launch_simt_dt<DT, 16>(a, s);
}

// ---- tensor cores (bf16 prefill) ----
using namespace nvcuda;
constexpr int BM = kTensorBM, BN = 64, BK = 32, LDS = BK + 8, LDC = BN + 4;
constexpr int kTensorThreads = 128;
constexpr size_t kTileBytes = size_t(BM) * LDS * 2 + 2 * size_t(BN) * LDS * 2;
constexpr size_t kEpiBytes = 2 * size_t(BM) * LDC * 4;
constexpr size_t kSmemBytes = kTileBytes > kEpiBytes ? kTileBytes : kEpiBytes;

struct TileRegs {
  uint4 a[2], b0[2], b1[2];
};

__device__ __forceinline__ uint4 load16(const uint8_t* p, bool ok) {
  return ok ? __ldg(reinterpret_cast<const uint4*>(p)) : make_uint4(0, 0, 0, 0);
}

// GLU: C_g = A·Wgᵀ and C_u = A·Wuᵀ over a 64×64 tile, then h = silu(C_g)·C_u as bf16.
// !GLU: C = A·W2ᵀ, out = scale · C in fp32.
template <bool GLU>
__global__ void __launch_bounds__(kTensorThreads) experts_tensor_kernel(ExpertArgs a) {
  __shared__ __align__(128) unsigned char smem[kSmemBytes];
  const int tid = threadIdx.x, warp = tid >> 5;
  const int m0 = blockIdx.x * BM;
  if (m0 >= a.scalars[kTotalRows]) return;
  const int seg = segment_of(a.offsets, a.E + 1, m0);
  if (seg < 0 || (a.fixed_seg >= 0 && seg != a.fixed_seg)) return;
  const int Fseg = seg == a.E ? a.Fs : a.F;
  const int n0 = blockIdx.y * BN;
  const int K = GLU ? a.H : Fseg, Kp = padded_k(K);
  const int N = GLU ? Fseg : a.H;  // valid output columns
  if (n0 >= (GLU ? padded_k(Fseg) : a.H)) return;
  const ExpertLayout L = expert_layout(kBF16, a.H, Fseg);
  const uint8_t* mat = a.wptr[seg] + (GLU ? L.w13 : L.w2);
  const size_t rvb = size_t(Kp) * 2;
  const size_t x_stride = act_row_bytes(kBF16, a.H);

  // Each thread moves 2 A chunks and 2 (or 4) B chunks of 16 bytes per k-step: row = idx / 4.
  const uint8_t* arow[2];
  const uint8_t* b0row[2];
  const uint8_t* b1row[2];
  bool aok[2], bok[2];
  int rr[2], cc[2];
  for (int i = 0; i < 2; ++i) {
    const int idx = tid + i * kTensorThreads;
    rr[i] = idx >> 2;
    cc[i] = idx & 3;
    if (GLU) {
      const int tok = a.slot_token[m0 + rr[i]];
      aok[i] = tok >= 0;
      arow[i] = a.x_act + size_t(aok[i] ? tok : 0) * x_stride;
    } else {
      aok[i] = true;
      arow[i] = a.h_act + size_t(m0 + rr[i]) * a.h_stride;
    }
    const int nr = n0 + rr[i];
    bok[i] = nr < N;
    b0row[i] = mat + size_t(bok[i] ? nr : 0) * rvb;
    b1row[i] = GLU ? mat + size_t(bok[i] ? Fseg + nr : 0) * rvb : nullptr;
  }
  auto load = [&](int k0, TileRegs& t) {
    for (int i = 0; i < 2; ++i) {
      const size_t off = size_t(k0 + cc[i] * 8) * 2;
      t.a[i] = load16(arow[i] + off, aok[i]);
      t.b0[i] = load16(b0row[i] + off, bok[i]);
      if (GLU) t.b1[i] = load16(b1row[i] + off, bok[i]);
    }
  };
  __nv_bfloat16* As = reinterpret_cast<__nv_bfloat16*>(smem);
  __nv_bfloat16* B0 = As + BM * LDS;
  __nv_bfloat16* B1 = B0 + BN * LDS;
  auto store = [&](const TileRegs& t) {
    for (int i = 0; i < 2; ++i) {
      *reinterpret_cast<uint4*>(As + rr[i] * LDS + cc[i] * 8) = t.a[i];
      *reinterpret_cast<uint4*>(B0 + rr[i] * LDS + cc[i] * 8) = t.b0[i];
      if (GLU) *reinterpret_cast<uint4*>(B1 + rr[i] * LDS + cc[i] * 8) = t.b1[i];
    }
  };

  const int wm = warp >> 1, wn = warp & 1;  // 2×2 warps, 32×32 each
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> c0[2][2], c1[2][2];
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) {
      wmma::fill_fragment(c0[i][j], 0.0f);
      if (GLU) wmma::fill_fragment(c1[i][j], 0.0f);
    }
  TileRegs regs;
  load(0, regs);
  for (int k0 = 0; k0 < Kp; k0 += BK) {
    __syncthreads();
    store(regs);
    __syncthreads();
    if (k0 + BK < Kp) load(k0 + BK, regs);  // next tile's loads overlap this tile's MMAs
    for (int kk = 0; kk < BK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa[2];
      for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(fa[i], As + (wm * 32 + i * 16) * LDS + kk, LDS);
      for (int j = 0; j < 2; ++j) {
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> fb;
        wmma::load_matrix_sync(fb, B0 + (wn * 32 + j * 16) * LDS + kk, LDS);
        for (int i = 0; i < 2; ++i) wmma::mma_sync(c0[i][j], fa[i], fb, c0[i][j]);
        if (GLU) {
          wmma::load_matrix_sync(fb, B1 + (wn * 32 + j * 16) * LDS + kk, LDS);
          for (int i = 0; i < 2; ++i) wmma::mma_sync(c1[i][j], fa[i], fb, c1[i][j]);
        }
      }
    }
  }
  __syncthreads();
  float* C0 = reinterpret_cast<float*>(smem);
  float* C1 = C0 + BM * LDC;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) {
      wmma::store_matrix_sync(C0 + (wm * 32 + i * 16) * LDC + wn * 32 + j * 16, c0[i][j], LDC, wmma::mem_row_major);
      if (GLU)
        wmma::store_matrix_sync(C1 + (wm * 32 + i * 16) * LDC + wn * 32 + j * 16, c1[i][j], LDC, wmma::mem_row_major);
    }
  __syncthreads();
  for (int idx = tid; idx < BM * BN; idx += kTensorThreads) {
    const int r = idx / BN, c = idx % BN;
    const int col = n0 + c, slot = m0 + r;
    if (GLU) {
      if (col >= padded_k(Fseg)) continue;
      const float h = col < Fseg ? glu_epilogue(a, seg, slot, col, C0[r * LDC + c], C1[r * LDC + c]) : 0.0f;
      reinterpret_cast<__nv_bfloat16*>(a.h_act + size_t(slot) * a.h_stride)[col] = __float2bfloat16_rn(h);
    } else {
      if (col >= a.H) continue;
      a.out[size_t(slot) * a.H + col] = down_epilogue(a, seg, slot, col, C0[r * LDC + c]);
    }
  }
}

// Wider variant (default): 8 warps as 2 (M) × 4 (N), tile 64 rows × 128 columns (for gate/up:
// 128 f, i.e. 256 weight rows per k-step), so each byte loaded feeds twice the MMAs of the basic
// kernel. Tiles move global → shared with cp.async into two stages (the next k-step's copies run
// under this one's MMAs; rows outside the matrix are zero-filled). SwiGLU is applied element-wise
// on the accumulator fragments (gate and up fragments share one layout), then each warp stages
// its 32×32 result in its own shared-memory tile for the stores.
constexpr int BNW = 128;
constexpr int kWideThreads = 256;
constexpr int LDW = 32 + 4;  // per-warp epilogue tile stride (floats)
constexpr size_t kWideStageBytes = size_t(BM) * LDS * 2 + 2 * size_t(BNW) * LDS * 2;
constexpr size_t kWideEpiBytes = size_t(kWideThreads / 32) * 32 * LDW * 4;
constexpr size_t kWideSmemBytes = 2 * kWideStageBytes > kWideEpiBytes ? 2 * kWideStageBytes : kWideEpiBytes;

__device__ __forceinline__ void cp_async16(void* smem_dst, const void* gmem_src, bool ok) {
  const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem_dst));
  const int src_bytes = ok ? 16 : 0;  // 0: the 16 bytes are zero-filled
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem_src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

template <bool GLU>
__global__ void __launch_bounds__(kWideThreads, 2) experts_tensor_wide_kernel(ExpertArgs a) {
  extern __shared__ __align__(128) unsigned char smem[];
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int m0 = blockIdx.x * BM;
  if (m0 >= a.scalars[kTotalRows]) return;
  const int seg = segment_of(a.offsets, a.E + 1, m0);
  if (seg < 0 || (a.fixed_seg >= 0 && seg != a.fixed_seg)) return;
  const int Fseg = seg == a.E ? a.Fs : a.F;
  const int n0 = blockIdx.y * BNW;
  const int K = GLU ? a.H : Fseg, Kp = padded_k(K);
  const int N = GLU ? Fseg : a.H;             // valid output columns
  const int Nw = GLU ? padded_k(Fseg) : a.H;  // columns written (h padding gets zeros)
  if (n0 >= Nw) return;
  const ExpertLayout L = expert_layout(kBF16, a.H, Fseg);
  const uint8_t* mat = a.wptr[seg] + (GLU ? L.w13 : L.w2);
  const size_t rvb = size_t(Kp) * 2;

  // Copies per k-step: A 64 rows × 4 chunks (1 per thread), B 128 rows × 4 chunks (2 per thread, ×2 for GLU).
  const int ar = tid >> 2, ac = tid & 3;
  const uint8_t* arow;
  bool aok = true;
  if (GLU) {
    const int tok = a.slot_token[m0 + ar];
    aok = tok >= 0;
    arow = a.x_act + size_t(aok ? tok : 0) * act_row_bytes(kBF16, a.H);
  } else {
    arow = a.h_act + size_t(m0 + ar) * a.h_stride;
  }
  const int br = tid >> 2, bc = tid & 3;  // rows br and br + 64
  const bool bok0 = n0 + br < N, bok1 = n0 + br + 64 < N;
  const uint8_t* g0 = mat + size_t(bok0 ? n0 + br : 0) * rvb;
  const uint8_t* g1 = mat + size_t(bok1 ? n0 + br + 64 : 0) * rvb;
  const uint8_t* u0 = GLU ? mat + size_t(bok0 ? Fseg + n0 + br : 0) * rvb : nullptr;
  const uint8_t* u1 = GLU ? mat + size_t(bok1 ? Fseg + n0 + br + 64 : 0) * rvb : nullptr;
  auto stage_ptr = [&](int st) { return reinterpret_cast<__nv_bfloat16*>(smem + size_t(st) * kWideStageBytes); };
  auto issue = [&](int k0, int st) {
    __nv_bfloat16* As = stage_ptr(st);
    __nv_bfloat16* B0 = As + BM * LDS;
    __nv_bfloat16* B1 = B0 + BNW * LDS;
    const size_t off = size_t(k0 + bc * 8) * 2;
    cp_async16(As + ar * LDS + ac * 8, arow + size_t(k0 + ac * 8) * 2, aok);
    cp_async16(B0 + br * LDS + bc * 8, g0 + off, bok0);
    cp_async16(B0 + (br + 64) * LDS + bc * 8, g1 + off, bok1);
    if (GLU) {
      cp_async16(B1 + br * LDS + bc * 8, u0 + off, bok0);
      cp_async16(B1 + (br + 64) * LDS + bc * 8, u1 + off, bok1);
    }
    cp_async_commit();
  };

  const int wm = warp >> 2, wn = warp & 3;  // 2 × 4 warps, 32 × 32 each
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> c0[2][2], c1[2][2];
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) {
      wmma::fill_fragment(c0[i][j], 0.0f);
      if (GLU) wmma::fill_fragment(c1[i][j], 0.0f);
    }
  const int steps = Kp / BK;
  issue(0, 0);
  for (int kt = 0; kt < steps; ++kt) {
    if (kt + 1 < steps) {
      issue((kt + 1) * BK, (kt + 1) & 1);
      cp_async_wait<1>();  // this step's group has landed, the next one may still be in flight
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const __nv_bfloat16* As = stage_ptr(kt & 1);
    const __nv_bfloat16* B0 = As + BM * LDS;
    const __nv_bfloat16* B1 = B0 + BNW * LDS;
    for (int kk = 0; kk < BK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa[2];
      for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(fa[i], As + (wm * 32 + i * 16) * LDS + kk, LDS);
      for (int j = 0; j < 2; ++j) {
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> fb;
        wmma::load_matrix_sync(fb, B0 + (wn * 32 + j * 16) * LDS + kk, LDS);
        for (int i = 0; i < 2; ++i) wmma::mma_sync(c0[i][j], fa[i], fb, c0[i][j]);
        if (GLU) {
          wmma::load_matrix_sync(fb, B1 + (wn * 32 + j * 16) * LDS + kk, LDS);
          for (int i = 0; i < 2; ++i) wmma::mma_sync(c1[i][j], fa[i], fb, c1[i][j]);
        }
      }
    }
    __syncthreads();  // everyone is done with this stage before it is refilled
  }
  // The stages become the per-warp epilogue tiles (all copies have landed, all MMAs are done).
  float* W = reinterpret_cast<float*>(smem) + size_t(warp) * 32 * LDW;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) {
      if (GLU)
        for (int e = 0; e < c0[i][j].num_elements; ++e) c0[i][j].x[e] = silu_f(c0[i][j].x[e]) * c1[i][j].x[e];
      wmma::store_matrix_sync(W + (i * 16) * LDW + j * 16, c0[i][j], LDW, wmma::mem_row_major);
    }
  __syncwarp();
  const int col = n0 + wn * 32 + lane;
  if (col >= Nw) return;
  for (int r = 0; r < 32; ++r) {
    const int slot = m0 + wm * 32 + r;
    const float v = W[r * LDW + lane];
    if (GLU)
      reinterpret_cast<__nv_bfloat16*>(a.h_act + size_t(slot) * a.h_stride)[col] =
          __float2bfloat16_rn(col < N ? v : 0.0f);
    else a.out[size_t(slot) * a.H + col] = a.slot_scale[slot] * v;
  }
}

template <bool GLU>
void launch_wide(const ExpertArgs& a, dim3 grid, cudaStream_t s) {
  static bool configured = false;  // the dynamic shared memory opt-in, once per kernel
  if (!configured) {
    cudaFuncSetAttribute(experts_tensor_wide_kernel<GLU>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                         int(kWideSmemBytes));
    configured = true;
  }
  experts_tensor_wide_kernel<GLU><<<grid, kWideThreads, kWideSmemBytes, s>>>(a);
}

}  // namespace

void launch_make_act_rows(int dtype, const float* in, int ld_in, int rows, int K, uint8_t* out, const int* total,
                          cudaStream_t s) {
  if (rows <= 0) return;
  make_act_rows_kernel<<<ceil_div(rows, 4), 128, 0, s>>>(dtype, in, ld_in, rows, K, out, total);
}

void launch_experts_simt(const ExpertArgs& a, int T, cudaStream_t s) {
  switch (a.dtype) {
    case kF32: launch_simt_nt<kF32>(a, T, s); break;
    case kBF16: launch_simt_nt<kBF16>(a, T, s); break;
    case kI8: launch_simt_nt<kI8>(a, T, s); break;
    case kI4: launch_simt_nt<kI4>(a, T, s); break;
    case kMX4: launch_simt_nt<kMX4>(a, T, s); break;
    default: launch_simt_nt<kFP8>(a, T, s); break;
  }
}

void launch_experts_tensor(const ExpertArgs& a, cudaStream_t s) {
  const int mtiles = ceil_div(a.rows_bound, BM);
  // The wide kernel applies SwiGLU on wmma fragments, whose element → column map is opaque, so
  // the expert variants (per-column biases) take the basic kernel's shared-memory epilogue.
  const bool variant = a.gate_bias || a.down_bias || a.clamp_limit != 0.0f || a.score_on_input;
  if (a.tensor_variant == 1 || variant) {
    experts_tensor_kernel<true><<<dim3(mtiles, ceil_div(fp_max(a), BN)), kTensorThreads, 0, s>>>(a);
    experts_tensor_kernel<false><<<dim3(mtiles, ceil_div(a.H, BN)), kTensorThreads, 0, s>>>(a);
  } else {
    launch_wide<true>(a, dim3(mtiles, ceil_div(fp_max(a), BNW)), s);
    launch_wide<false>(a, dim3(mtiles, ceil_div(a.H, BNW)), s);
  }
}

}  // namespace moecap_cuda
