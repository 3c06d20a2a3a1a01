// A stand-in for libmoecap_cuda.so on the host, for the expert-parallel tests without a GPU
// (test/ep/ep_cuda.test.ts): the C ABI of native/core/backend/cuda_abi.h over a toy layer whose
// every step is a plain function of its inputs (router scores from x, an expert's output from its
// row, its router weight and its id, the combine a sum in slot order). The single-process forward
// and the three expert-parallel calls use the same functions, so an expert-parallel run over
// mpirun equals the single-process forward bitwise exactly when the core's exchange (who sends
// which row where, and where each result lands) is right. Never used outside the tests; not a
// model of the real kernels (scripts/gpu-check.sh checks those).
// Build: g++ -shared -fPIC -I native/core -I cuda -I cuda/test/fake_cuda_runtime
//        cuda/test/fake_libmoecap_cuda.cc cuda/nccl_abi.cc cuda/nccl_transport.cc -ldl
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "abi_error.h"
#include "backend/cuda_abi.h"

struct moecap_cuda_layer {
  int E = 0, H = 0, k = 0;
  bool shared = false;
  std::vector<uint8_t> held;  // [E], 1 = on this "device"
  // The last ep_route: tokens, router output, x.
  int T = -1;
  std::vector<int32_t> ids;
  std::vector<float> x;
};

namespace {

thread_local std::string g_error;

}  // namespace

// The NCCL exchange's C ABI (cuda/nccl_abi.cc, built into this stand-in with the real
// nccl_transport.cc over fake_cuda_runtime/) reports its failures here too.
void moecap_cuda::set_last_error(const std::string& message) { g_error = message; }

namespace {

size_t row_bytes(int H) { return (size_t(H) * 4 + 15) / 16 * 16; }

// Top-k of toy scores; ties go to the lower expert; weight of the j-th choice 1 / (j + 1 + score²).
void route(const moecap_cuda_layer& l, const float* x, int32_t* ids, float* w) {
  std::vector<float> s(size_t(l.E));
  for (int e = 0; e < l.E; ++e) {
    float a = 0;
    for (int h = 0; h < l.H; ++h) a += x[h] * std::sin(float(e * 7 + h));
    s[size_t(e)] = a;
  }
  std::vector<bool> taken(size_t(l.E), false);
  for (int j = 0; j < l.k; ++j) {
    int best = -1;
    for (int e = 0; e < l.E; ++e)
      if (!taken[size_t(e)] && (best < 0 || s[size_t(e)] > s[size_t(best)])) best = e;
    taken[size_t(best)] = true;
    ids[j] = best;
    w[j] = 1.0f / (float(j) + 1.0f + s[size_t(best)] * s[size_t(best)]);
  }
}

void expert(int e, const float* row, float scale, int H, float* out) {
  for (int h = 0; h < H; ++h) out[h] = scale * (row[h] * float(e + 1) + 0.25f * float(e));
}

// y = Σ_j results[j] in slot order, then the shared expert (x / 2).
void combine(const float* const* results, int k, const float* x, bool shared, int H, float* y) {
  for (int h = 0; h < H; ++h) {
    float a = 0;
    for (int j = 0; j < k; ++j) a += results[j][h];
    if (shared) a += 0.5f * x[h];
    y[h] = a;
  }
}

}  // namespace

extern "C" {

MOECAP_CUDA_API int moecap_cuda_abi_version(void) { return MOECAP_CUDA_ABI_VERSION; }
MOECAP_CUDA_API int moecap_cuda_runtime_version(void) { return 13000; }

MOECAP_CUDA_API int moecap_cuda_probe(int device, moecap_cuda_probe_t* out) {
  const size_t size = out->size;
  std::memset(out, 0, sizeof *out);
  out->size = size;
  out->abi_version = MOECAP_CUDA_ABI_VERSION;
  out->runtime_version = 13000;
  out->driver_version = 13000;
  out->device_count = 1;
  out->device = device;
  std::strcpy(out->name, "host stand-in (fake_libmoecap_cuda)");
  out->cc_major = 9;
  if (device != 0) {
    std::strcpy(out->reason, "the stand-in has one device");
    return 1;
  }
  return 0;
}

MOECAP_CUDA_API moecap_cuda_layer* moecap_cuda_layer_create(const moecap_cuda_config_t* c,
                                                            const moecap_cuda_weights_t*) {
  if (c->size != sizeof(moecap_cuda_config_t)) {
    g_error = "struct size mismatch";
    return nullptr;
  }
  if (c->hidden > 4096) {
    g_error = "the stand-in takes hidden <= 4096";
    return nullptr;
  }
  auto* l = new moecap_cuda_layer();
  l->E = c->experts, l->H = c->hidden, l->k = c->top_k, l->shared = c->shared_intermediate > 0;
  l->held.assign(size_t(l->E), 1);
  if (c->held) l->held.assign(c->held, c->held + l->E);
  return l;
}

MOECAP_CUDA_API int moecap_cuda_layer_forward(moecap_cuda_layer* l, const float* x, int T, float* y, int32_t* ids,
                                              float* weights, moecap_cuda_stats_t* st) {
  for (int e = 0; e < l->E; ++e)
    if (!l->held[size_t(e)]) {
      g_error = "forward on a layer that holds a share of the experts";
      return -1;
    }
  std::vector<int32_t> id(size_t(l->k));
  std::vector<float> w(size_t(l->k)), res(size_t(l->k) * l->H);
  std::vector<const float*> rp(size_t(l->k));
  for (int t = 0; t < T; ++t) {
    const float* xt = x + size_t(t) * l->H;
    route(*l, xt, id.data(), w.data());
    for (int j = 0; j < l->k; ++j) {
      expert(id[size_t(j)], xt, w[size_t(j)], l->H, res.data() + size_t(j) * l->H);
      rp[size_t(j)] = res.data() + size_t(j) * l->H;
    }
    if (y) combine(rp.data(), l->k, xt, l->shared, l->H, y + size_t(t) * l->H);
    if (ids) std::memcpy(ids + size_t(t) * l->k, id.data(), 4 * size_t(l->k));
    if (weights) std::memcpy(weights + size_t(t) * l->k, w.data(), 4 * size_t(l->k));
  }
  if (st) {
    const size_t size = st->size;
    int32_t* counts = st->expert_counts;
    int32_t* resident = st->resident;
    std::memset(st, 0, size);
    st->size = size, st->expert_counts = counts, st->resident = resident, st->tokens = T;
  }
  return 0;
}

MOECAP_CUDA_API int moecap_cuda_layer_prefetch(moecap_cuda_layer*, const int32_t*, int) { return 0; }
MOECAP_CUDA_API int moecap_cuda_layer_pin_static(moecap_cuda_layer*, int32_t*, int) { return -1; }
MOECAP_CUDA_API double moecap_cuda_layer_device_bytes(const moecap_cuda_layer*) { return 0; }
MOECAP_CUDA_API void moecap_cuda_layer_destroy(moecap_cuda_layer* l) { delete l; }
MOECAP_CUDA_API int moecap_cuda_nvml_sample(int, moecap_cuda_nvml_t* out) {
  out->available = 0;
  return -1;
}
MOECAP_CUDA_API const char* moecap_cuda_last_error(void) { return g_error.c_str(); }

MOECAP_CUDA_API size_t moecap_cuda_act_row_bytes(int, int hidden) { return row_bytes(hidden); }

MOECAP_CUDA_API int moecap_cuda_layer_ep_route(moecap_cuda_layer* l, const float* x, int T, int global_tokens,
                                               int32_t* ids, float* weights, uint8_t* x_act) {
  if (global_tokens < T || global_tokens <= 0) {
    g_error = "ep_route: global_tokens " + std::to_string(global_tokens) + " < tokens " + std::to_string(T);
    return -1;
  }
  l->T = T;
  l->ids.assign(size_t(T) * l->k, 0);
  l->x.assign(x, x + size_t(T) * l->H);
  for (int t = 0; t < T; ++t) {
    route(*l, x + size_t(t) * l->H, ids + size_t(t) * l->k, weights + size_t(t) * l->k);
    uint8_t* r = x_act + size_t(t) * row_bytes(l->H);
    std::memset(r, 0, row_bytes(l->H));
    std::memcpy(r, x + size_t(t) * l->H, 4 * size_t(l->H));
  }
  return 0;
}

MOECAP_CUDA_API int moecap_cuda_layer_ep_compute(moecap_cuda_layer* l, int, const int32_t* counts, const uint8_t* rows,
                                                 const float* scales, float* out) {
  int64_t r = 0;
  for (int e = 0; e < l->E; ++e)
    for (int i = 0; i < counts[e]; ++i, ++r) {
      if (!l->held[size_t(e)]) {
        g_error = "expert " + std::to_string(e) + " is not held by this layer";
        return -1;
      }
      float row[4096];
      std::memcpy(row, rows + size_t(r) * row_bytes(l->H), 4 * size_t(l->H));
      expert(e, row, scales[r], l->H, out + size_t(r) * l->H);
    }
  return 0;
}

MOECAP_CUDA_API int moecap_cuda_layer_ep_combine(moecap_cuda_layer* l, int, const float* results, float* y) {
  if (l->T < 0) {
    g_error = "ep_combine without ep_route";
    return -1;
  }
  std::vector<const float*> rp(size_t(l->k));
  for (int t = 0; t < l->T; ++t) {
    for (int j = 0; j < l->k; ++j) rp[size_t(j)] = results + (size_t(t) * l->k + j) * l->H;
    combine(rp.data(), l->k, l->x.data() + size_t(t) * l->H, l->shared, l->H, y + size_t(t) * l->H);
  }
  l->T = -1;
  return 0;
}

}  // extern "C"
