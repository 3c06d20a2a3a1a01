/* The C ABI of libmoecap_cuda.so (cuda/backend_cuda.cc). The CPU addon dlopens the library and
 * resolves these names with dlsym (native/core/backend/cuda_loader.cc), so nothing here may use
 * C++ types, and every struct starts with its size so that later versions can grow them.
 * Version rule: a change to any signature or to the meaning of a field bumps
 * MOECAP_CUDA_ABI_VERSION; the loader refuses a library with another version. */
#ifndef MOECAP_CUDA_ABI_H
#define MOECAP_CUDA_ABI_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MOECAP_CUDA_ABI_VERSION 8

#if defined(_WIN32)
#define MOECAP_CUDA_API __declspec(dllexport)
#else
#define MOECAP_CUDA_API __attribute__((visibility("default")))
#endif

/* ---- probing (no device memory is touched) ---- */
typedef struct {
  size_t size;         /* sizeof(moecap_cuda_probe_t) */
  int abi_version;     /* MOECAP_CUDA_ABI_VERSION of the library */
  int runtime_version; /* CUDA runtime the library was built with, e.g. 13000 */
  int driver_version;  /* cudaDriverGetVersion, 0 when no driver */
  int device_count;    /* 0 when unusable */
  int device;          /* the device described below */
  char name[256];
  int cc_major, cc_minor; /* compute capability */
  int sm_count;
  uint64_t total_memory;       /* bytes */
  double memory_bandwidth_gbs; /* from clock × bus width (a nominal figure, not measured) */
  char reason[512];            /* empty when usable, else why not */
} moecap_cuda_probe_t;

/* Returns 0 when `device` can run the layer, else non-zero with out->reason set. */
MOECAP_CUDA_API int moecap_cuda_abi_version(void);
MOECAP_CUDA_API int moecap_cuda_runtime_version(void); /* compile-time CUDART_VERSION, no CUDA call */
MOECAP_CUDA_API int moecap_cuda_probe(int device, moecap_cuda_probe_t* out);

/* ---- a layer ---- */
enum { MOECAP_CUDA_SOFTMAX = 0, MOECAP_CUDA_SIGMOID = 1, MOECAP_CUDA_SPARSEMIXER = 2 }; /* = moecap::Scoring */
enum { MOECAP_CUDA_GROUP_TOP2_SUM = 0, MOECAP_CUDA_GROUP_MAX = 1 };                     /* = moecap::GroupScore */
enum {
  MOECAP_CUDA_F32 = 0,
  MOECAP_CUDA_BF16 = 1,
  MOECAP_CUDA_I8 = 2,
  MOECAP_CUDA_I4 = 3,
  MOECAP_CUDA_MXFP4 = 4,
  MOECAP_CUDA_FP8 = 5
}; /* = moecap::DType */
/* AUTO: tensor cores for bf16 when T >= tensor_min_tokens, else SIMT. TENSOR_BASIC: the 4-warp
 * 64×64-tile tensor kernel instead of the default 8-warp 64×128 one (kept for comparison). */
/* Eviction policy of the offload cache slots (= moecap::CachePolicy; see native/core/offload/cache_policy.h). */
enum { MOECAP_CUDA_LRU = 0, MOECAP_CUDA_LFU = 1, MOECAP_CUDA_LFRU = 2, MOECAP_CUDA_STATIC = 3 };
enum {
  MOECAP_CUDA_PATH_AUTO = 0,
  MOECAP_CUDA_PATH_SIMT = 1,
  MOECAP_CUDA_PATH_TENSOR = 2,
  MOECAP_CUDA_PATH_TENSOR_BASIC = 3
};

typedef struct {
  size_t size; /* sizeof(moecap_cuda_config_t) */
  int hidden, intermediate, experts, top_k;
  int scoring; /* MOECAP_CUDA_SOFTMAX | MOECAP_CUDA_SIGMOID | MOECAP_CUDA_SPARSEMIXER (top_k 2) */
  int renormalize;
  float routed_scaling_factor;
  const float* selection_bias; /* [experts] or NULL (copied) */
  int group_count, group_keep; /* 0, 0 = plain top-k */
  int group_score;             /* MOECAP_CUDA_GROUP_TOP2_SUM | MOECAP_CUDA_GROUP_MAX */
  int shared_intermediate;     /* 0 = no shared expert */
  int shared_gated;
  double capacity_factor; /* 0 = unlimited */
  int dtype;              /* MOECAP_CUDA_F32.. */
  int device;
  int max_tokens;        /* largest T a forward will get (sizes the workspace) */
  int expert_path;       /* MOECAP_CUDA_PATH_*: AUTO = tensor cores for bf16 when T >= tensor_min_tokens */
  int tensor_min_tokens; /* 0 = 32 */
  /* offload: experts in host memory, `cache_slots` of them on the device (0 = all resident) */
  int offload;
  int cache_slots;
  int host_threads; /* for packing; 0 = hardware threads */
  int cache_policy; /* MOECAP_CUDA_LRU.. (offload); STATIC pins at moecap_cuda_layer_pin_static */
  /* Expert variants (moecap::LayerConfig; all NULL / 0 = the plain SwiGLU expert), copied: */
  const float* router_bias;         /* [E] added to the logits (gpt-oss) */
  const float* gate_bias;           /* [E][F] (gpt-oss), with up_bias and down_bias */
  const float* up_bias;             /* [E][F] */
  const float* down_bias;           /* [E][H] */
  float swiglu_limit, swiglu_alpha; /* limit > 0: gpt-oss's clamped SwiGLU */
  int score_on_input;               /* Llama 4: the routed expert's input is x·score */
  /* [experts] or NULL (all): the routed experts this layer holds on the device (an expert-parallel
   * rank's share; the others are never packed nor uploaded). Not with offload. */
  const uint8_t* held;
  float jitter_eps; /* MOECAP_CUDA_SPARSEMIXER's mask threshold (moecap::LayerConfig::jitter_eps) */
} moecap_cuda_config_t;

/* fp32 master weights in HF layout (rows = outputs), or a seed for moecap::SeededWeights
 * (the same generator as the CPU core, so both backends hold identical weights). Experts may come
 * already in the GPU layout instead (experts_packed, shared_packed: the core's packer,
 * backend/gpu_weight_pack.h, from a checkpoint's stored fp8/mxfp4/bf16 codes, which fp32 could
 * not carry bitwise); their fp32 matrices are then not read (may be NULL). */
typedef struct {
  size_t size; /* sizeof(moecap_cuda_weights_t) */
  int use_seed;
  uint64_t seed;
  const float* router;      /* [E,H] */
  const float* gate;        /* [E][F,H] */
  const float* up;          /* [E][F,H] */
  const float* down;        /* [E][H,F] */
  const float* shared_gate; /* [Fs,H] */
  const float* shared_up;
  const float* shared_down;        /* [H,Fs] */
  const float* shared_gate_weight; /* [H] when shared_gated */
  const uint8_t* experts_packed;   /* NULL, or [E][expert_layout(dtype, H, F).bytes] (non-held experts unread) */
  const uint8_t* shared_packed;    /* NULL, or [expert_layout(dtype, H, Fs).bytes] */
} moecap_cuda_weights_t;

typedef struct {
  size_t size; /* sizeof(moecap_cuda_stats_t) */
  int tokens, distinct_experts;
  int64_t assignments, dropped, capacity; /* capacity -1 = unlimited */
  double expert_bytes, shared_bytes, router_bytes, flops;
  /* CUDA event times of this pass, milliseconds */
  double total_ms, route_ms, experts_ms, combine_ms;
  int used_tensor_path;
  /* offload (zero when everything is resident) */
  int64_t cache_hits, cache_misses, evictions;
  double h2d_bytes, h2d_ms; /* bytes copied host → device and the copy stream's busy time */
  int32_t* expert_counts;   /* caller's [E] array or NULL */
  /* offload, since the previous forward (so prefetches issued between passes count here) */
  int64_t loads; /* copies into slots: misses + prefetches */
  int64_t prefetch_issued, prefetch_used;
  int64_t waves;     /* the most experts of the pass that went through one slot (1 when all fit) */
  int32_t* resident; /* caller's [E] array or NULL: experts on the device after the pass, ascending */
  int resident_count;
} moecap_cuda_stats_t;

typedef struct {
  size_t size;
  int available; /* 0: see reason */
  char reason[256];
  double energy_j;                 /* total since driver load (NVML mJ counter), -1 unavailable */
  double power_w;                  /* -1 unavailable */
  int sm_clock_mhz, mem_clock_mhz; /* -1 unavailable */
  uint64_t memory_used, memory_total;
} moecap_cuda_nvml_t;

typedef struct moecap_cuda_layer moecap_cuda_layer;

/* NULL on failure (see moecap_cuda_last_error). */
MOECAP_CUDA_API moecap_cuda_layer* moecap_cuda_layer_create(const moecap_cuda_config_t* config,
                                                            const moecap_cuda_weights_t* weights);
/* x: host [T,H] fp32. out [T,H], ids [T,k], weights [T,k] host arrays (any may be NULL). 0 = ok. */
MOECAP_CUDA_API int moecap_cuda_layer_forward(moecap_cuda_layer* layer, const float* x, int tokens, float* out,
                                              int32_t* ids, float* weights, moecap_cuda_stats_t* stats);
/* Starts host→device copies of these experts into cache slots (offload only; no-op otherwise). */
MOECAP_CUDA_API int moecap_cuda_layer_prefetch(moecap_cuda_layer* layer, const int32_t* experts, int n);
/* Static policy: pins the most used experts of the passes so far (the profile run). Writes up to
 * `capacity` of them (ascending) to out; returns how many were pinned, or -1 (not offloaded). */
MOECAP_CUDA_API int moecap_cuda_layer_pin_static(moecap_cuda_layer* layer, int32_t* out, int capacity);
/* Device bytes held by the layer (weights + workspace). */
MOECAP_CUDA_API double moecap_cuda_layer_device_bytes(const moecap_cuda_layer* layer);
MOECAP_CUDA_API void moecap_cuda_layer_destroy(moecap_cuda_layer* layer);

/* ---- expert parallelism: a rank's share of a pass, rows staged through host memory ----
 * `global_tokens` is the pass's tokens over all ranks: it picks the expert path (SIMT or tensor
 * cores) and the SIMT kernel's rows per weight stream exactly as a single-process forward of that
 * many tokens does, so every row goes through the same kernel and the combine sums the same
 * values in the same order: the output equals the single-process layer's bitwise. No offload and
 * no capacity factor. Calls of one pass: ep_route, then ep_compute (the rows this rank received),
 * then ep_combine. */
/* Bytes of one activation row of `hidden` values as the expert kernels read it (what a rank sends). */
MOECAP_CUDA_API size_t moecap_cuda_act_row_bytes(int dtype, int hidden);
/* x: host [T,H] (T may be 0). Router, top-k, routing plan and activation rows; ids and weights
 * [T,k] and x_act [T][act_row_bytes(dtype, H)] to host. */
MOECAP_CUDA_API int moecap_cuda_layer_ep_route(moecap_cuda_layer* layer, const float* x, int tokens, int global_tokens,
                                               int32_t* ids, float* weights, uint8_t* x_act);
/* counts [E]: rows per expert (only held experts); rows [n][act_row_bytes] and scales [n] (router
 * weights) expert-major, n = sum of counts → out [n][H] fp32, router weight applied. */
MOECAP_CUDA_API int moecap_cuda_layer_ep_compute(moecap_cuda_layer* layer, int global_tokens, const int32_t* counts,
                                                 const uint8_t* rows, const float* scales, float* out);
/* results [T*k][H]: the expert output of each assignment (t, j) of the last ep_route (dropped
 * ones unread) → shared expert and combine → y [T,H] on the host. */
MOECAP_CUDA_API int moecap_cuda_layer_ep_combine(moecap_cuda_layer* layer, int global_tokens, const float* results,
                                                 float* y);

/* ---- the expert-parallel exchange over NCCL (ep.transport 'nccl'; cuda/nccl_abi.cc) ----
 * libnccl.so.2 (or $MOECAP_NCCL_LIBRARY) is dlopened at the first call. Each call returns 0, or
 * MOECAP_CUDA_NCCL_UNAVAILABLE when NCCL is not installed (or lacks an entry point), or -1 on any
 * other failure; moecap_cuda_last_error says which. */
#define MOECAP_CUDA_NCCL_ID_BYTES 128
#define MOECAP_CUDA_NCCL_UNAVAILABLE 1
typedef struct moecap_cuda_nccl moecap_cuda_nccl;
/* Rank 0: a new ncclUniqueId, MOECAP_CUDA_NCCL_ID_BYTES bytes, for the caller to give every rank. */
MOECAP_CUDA_API int moecap_cuda_nccl_unique_id(void* id);
/* Collective over `ranks`: this rank's communicator on `device` from rank 0's id → *out. */
MOECAP_CUDA_API int moecap_cuda_nccl_create(int device, int rank, int ranks, const void* id, moecap_cuda_nccl** out);
/* Collective: host blocks (send_bytes[p] to rank p back to back in `send`; recv_bytes[p] from rank p
 * into `recv`) copied to device buffers, exchanged as one group of ncclSend/ncclRecv pairs, copied back. */
MOECAP_CUDA_API int moecap_cuda_nccl_alltoallv(moecap_cuda_nccl* comm, const void* send, const int64_t* send_bytes,
                                               void* recv, const int64_t* recv_bytes);
MOECAP_CUDA_API void moecap_cuda_nccl_destroy(moecap_cuda_nccl* comm);

MOECAP_CUDA_API int moecap_cuda_nvml_sample(int device, moecap_cuda_nvml_t* out);

/* Text of the last failure on this thread ("" if none). */
MOECAP_CUDA_API const char* moecap_cuda_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
