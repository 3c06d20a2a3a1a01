#include "layer/moe_layer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <atomic>
#include <cstdlib>

#include "error.h"
#include "experts/expert_ffn.h"
#include "int_math.h"
#include "offload/cache_policy.h"
#include "offload/progress_bar.h"
#include "offload/xxhash64.h"
#include "router/router_topk.h"
#include "runtime/clock.h"
#include "runtime/environment.h"
#include "runtime/file_io.h"
#include "runtime/memory_info.h"
#include "weights/activation_rows.h"

namespace moecap {

double layer_packed_bytes(const LayerConfig& c) { return layer_packed_bytes(c, c.experts); }

// Sizes in 64 bits: experts, hidden and intermediate may each be up to 2^31 - 1.
double layer_packed_bytes(const LayerConfig& c, int resident_experts) {
  const int64_t router_panels = (int64_t(c.experts) + 31) / 32;
  double b = double(router_panels) * double(panel_bytes_for(DType::F32, c.hidden));
  b += double(resident_experts) * double(expert_packed_bytes(c.dtype, c.hidden, c.intermediate));
  if (c.shared_intermediate > 0) b += double(expert_packed_bytes(c.dtype, c.hidden, c.shared_intermediate));
  return b;
}

std::shared_ptr<ThreadPool> make_thread_pool(const LayerConfig& c) {
  return std::make_shared<ThreadPool>(c.threads > 0 ? c.threads : hardware_threads(), c.pin_threads);
}

// Resident slots an offload config asks for (experts) out of the `held` experts the layer keeps in
// its file, or an error naming the option.
static int offload_capacity(const LayerConfig& c, const OffloadConfig& off, int held) {
  const size_t eb = expert_packed_bytes(c.dtype, c.hidden, c.intermediate);
  if (off.capacity_fraction > 0) return std::max(1, int(std::ceil(off.capacity_fraction * held - 1e-9)));
  if (off.capacity_experts > 0) return std::min(off.capacity_experts, held);
  const double n = std::floor(off.capacity_bytes / double(eb));
  if (n < 1)
    throw_option("offload.capacity.bytes (" + format_bytes(off.capacity_bytes) + ") is smaller than one expert (" +
                 std::to_string(eb) + " bytes in " + dtype_name(c.dtype) + ")");
  return int(std::min(n, double(held)));
}

MoeLayer::MoeLayer(const LayerConfig& config, std::shared_ptr<const WeightSource> weights, const std::string& isa,
                   const OffloadConfig& offload, std::shared_ptr<Prefetcher> io, std::shared_ptr<ThreadPool> pool,
                   const std::vector<bool>& held)
    : cfg_(config),
      source_(std::move(weights)),
      kernels_(&select_kernels(isa, "isa")),
      pool_(pool ? std::move(pool) : make_thread_pool(config)) {
  validate_config(cfg_);
  if (!held.empty() && held.size() != size_t(cfg_.experts)) throw_runtime("held experts: one flag per expert");
  held_ = held.empty() ? std::vector<bool>(size_t(cfg_.experts), true) : held;
  const int n_held = int(std::count(held_.begin(), held_.end(), true));
  // An expert-parallel rank that holds no routed expert has nothing to offload (and no file).
  const bool offloaded = offload.enabled && n_held > 0;
  const double need = layer_packed_bytes(cfg_, offloaded ? offload_capacity(cfg_, offload, n_held) : n_held);
  const double avail = double(available_memory_bytes());
  if (need > avail)
    throw_out_of_memory(
        "weights of this layer need " + format_bytes(need) + " in " + dtype_name(cfg_.dtype) + " but only " +
        format_bytes(avail) + " of memory is available (hidden=" + std::to_string(cfg_.hidden) +
        ", intermediate=" + std::to_string(cfg_.intermediate) + ", experts=" + std::to_string(cfg_.experts) + ")");
  const int H = cfg_.hidden, E = cfg_.experts;
  try {
    pack_matrix(
        router_, DType::F32, H, int((int64_t(E) + 31) / 32),
        [&](int p, int lane, float* v) {
          int e = p * 32 + lane;
          if (e >= E) return false;
          source_->row(Matrix::Router, 0, e, H, v);
          return true;
        },
        pool_.get());
    if (offloaded) {
      setup_offload(offload, std::move(io));
    } else {
      experts_.resize(size_t(E));
      arena_.allocate(cfg_.dtype, H, cfg_.intermediate, n_held);
      for (int e = 0, slot = 0; e < E; ++e)
        if (held_[size_t(e)]) arena_.bind(experts_[e], slot++);
      for (int e = 0; e < E; ++e)
        if (held_[size_t(e)]) {
          for (int n = e + 1; n < E; ++n)
            if (held_[size_t(n)]) {
              source_->will_read_expert(n);
              break;
            }
          pack_expert(experts_[e], cfg_.dtype, H, cfg_.intermediate, *source_, Matrix::Gate, Matrix::Up, Matrix::Down,
                      e, pool_.get());
        }
      source_->done_reading_experts();
    }
    if (!cfg_.gate_bias.empty()) {
      // Panel p of w13 = 16 gate | 16 up rows of f ∈ [16p, 16p+16); of w2 = 32 output rows.
      const int F = cfg_.intermediate, p13 = (F + 15) / 16, p2 = (H + 31) / 32;
      b13_stride_ = size_t(p13) * 32;
      b2_stride_ = size_t(p2) * 32;
      b13_.assign(size_t(E) * b13_stride_, 0.0f);
      b2_.assign(size_t(E) * b2_stride_, 0.0f);
      for (int e = 0; e < E; ++e) {
        float* b13 = b13_.data() + size_t(e) * b13_stride_;
        for (int f = 0; f < F; ++f) {
          b13[size_t(f / 16) * 32 + size_t(f % 16)] = cfg_.gate_bias[size_t(e) * F + f];
          b13[size_t(f / 16) * 32 + 16 + size_t(f % 16)] = cfg_.up_bias[size_t(e) * F + f];
        }
        std::copy_n(cfg_.down_bias.data() + size_t(e) * H, H, b2_.data() + size_t(e) * b2_stride_);
      }
    }
    if (cfg_.shared_intermediate > 0) {
      shared_.reset(new ExpertWeights());
      pack_expert(*shared_, cfg_.dtype, H, cfg_.shared_intermediate, *source_, Matrix::SharedGate, Matrix::SharedUp,
                  Matrix::SharedDown, 0, pool_.get());
      if (cfg_.shared_gated) {
        shared_gate_weight_.resize(size_t(H));
        source_->row(Matrix::SharedGateWeight, 0, 0, H, shared_gate_weight_.data());
      }
    }
  } catch (const std::bad_alloc&) {
    throw_out_of_memory("out of memory while packing weights (" + format_bytes(need) + " needed)");
  }
}

double MoeLayer::packed_bytes() const {
  return layer_packed_bytes(cfg_, cache_ ? cache_->capacity() : int(std::count(held_.begin(), held_.end(), true)));
}

LayerInfo MoeLayer::info() const {
  LayerInfo i;
  i.isa = isa();
  i.isa_note = isa_note_;
  i.threads = threads();
  i.pinned_threads = pinned_threads();
  i.huge_pages = huge_pages_asked();
  i.packed_bytes = packed_bytes();
  i.expert_bytes = expert_bytes();
  i.splits_compute_time = true;
  return i;
}

// The work buffers of forward() (rows padded as plan_expert_rows pads them), with a margin for
// the activation rows and the allocator.
double MoeLayer::pass_workspace_bytes(int T) const {
  const auto& c = cfg_;
  const double fp = double(round_up64(c.intermediate, 16)), hp = double(round_up64(c.hidden, 32));
  const double rows = double(T) * c.top_k + (c.shared_intermediate ? T : 0);
  return rows * (fp + hp) * 4 * 1.5 + double(T) * c.hidden * 12;
}

void MoeLayer::check_pass(int T, bool route_only) const {
  if (route_only) return;
  const double need = pass_workspace_bytes(T);
  const double avail = double(available_memory_bytes());
  if (need > avail)
    throw_out_of_memory("x: a pass of " + std::to_string(T) + " tokens needs " + format_bytes(need) +
                        " of workspace but only " + format_bytes(avail) + " of memory is available; split the batch");
}

std::vector<int> MoeLayer::pin_static() {
  if (!cache_) throw_runtime("offload is not enabled (create it with an `offload` option)", ErrorCode::InvalidOption);
  return to_experts(cache_->pin_static());
}

std::vector<int> MoeLayer::to_experts(const std::vector<int>& entries) const {
  std::vector<int> out;
  out.reserve(entries.size());
  for (int i : entries) out.push_back(file_expert_[size_t(i)]);
  return out;
}

std::vector<int> MoeLayer::to_entries(const std::vector<int>& experts) const {
  std::vector<int> out;
  out.reserve(experts.size());
  for (int e : experts)
    if (holds(e)) out.push_back(file_entry_[size_t(e)]);
  return out;
}

std::vector<int> MoeLayer::resident() const { return cache_ ? to_experts(cache_->resident()) : std::vector<int>(); }

void MoeLayer::setup_offload(const OffloadConfig& off, std::shared_ptr<Prefetcher> io) {
  static std::atomic<uint64_t> scratch_counter{0};
  // The file holds the experts this layer holds, in expert order (all of them unless an
  // expert-parallel rank holds a share); a share's fingerprint also names its experts, so a file
  // of another share is refused.
  file_entry_.assign(size_t(cfg_.experts), -1);
  file_expert_.clear();
  for (int e = 0; e < cfg_.experts; ++e)
    if (held_[size_t(e)]) {
      file_entry_[size_t(e)] = int(file_expert_.size());
      file_expert_.push_back(e);
    }
  const int n_file = int(file_expert_.size());
  const int cap = offload_capacity(cfg_, off, n_file);
  ExpertFileShape shape;
  shape.dtype = cfg_.dtype;
  shape.hidden = cfg_.hidden;
  shape.intermediate = cfg_.intermediate;
  shape.experts = n_file;
  shape.fingerprint = source_->fingerprint();
  if (n_file < cfg_.experts)
    shape.fingerprint = xxhash64(file_expert_.data(), file_expert_.size() * sizeof(int), shape.fingerprint);
  std::string path = off.path;
  const bool scratch = path.empty();
  if (scratch) {
    path = read_environment().tmpdir + "/moecap-experts-" + std::to_string(process_id()) + "-" +
           std::to_string(scratch_counter++) + ".bin";
  }
  // An existing file is used as it is (and must validate); otherwise the experts are packed one at
  // a time straight into a new file, so packing never holds more than one expert.
  if (scratch || !path_exists(path)) {
    std::unique_ptr<ProgressBar> bar(off.progress.empty() ? nullptr : new ProgressBar(off.progress));
    write_expert_file(
        path, shape,
        [&](int i, ExpertWeights& w) {
          if (size_t(i) + 1 < file_expert_.size()) source_->will_read_expert(file_expert_[size_t(i) + 1]);
          pack_expert(w, cfg_.dtype, cfg_.hidden, cfg_.intermediate, *source_, Matrix::Gate, Matrix::Up, Matrix::Down,
                      file_expert_[size_t(i)], pool_.get());
        },
        [&](int done, int total, uint64_t bytes) {
          if (bar) bar->update(done, total, bytes);
        });
    source_->done_reading_experts();
  }
  std::unique_ptr<ExpertFile> file;
  try {
    file.reset(new ExpertFile(path, shape, off.cold));
  } catch (...) {
    if (scratch) remove_file(path);
    throw;
  }
  if (scratch) file->unlink_now();  // the open descriptor keeps it until the layer goes
  // Static policy: keep a few slots for the experts outside the profiled hot set.
  const int stream = static_stream_slots(cfg_.top_k, cap);
  cache_.reset(new ExpertCache(std::move(file), n_file, cap, off.policy, off.prefetch, std::move(io), stream));
}

const void* MoeLayer::act_row(const float* x, int t) const {
  const size_t ab = activation_row_bytes(cfg_.dtype, cfg_.hidden);
  return ab ? static_cast<const void*>(ws_.act.data() + size_t(t) * ab)
            : static_cast<const void*>(x + size_t(t) * cfg_.hidden);
}

void MoeLayer::route_locked(const float* x, int T, ForwardResult& out) {
  const int H = cfg_.hidden, E = cfg_.experts, k = cfg_.top_k;
  const size_t Ep = size_t(round_up64(E, 32));
  ws_.logits.resize(size_t(T) * Ep);
  if (cfg_.poison) std::fill(ws_.logits.begin(), ws_.logits.end(), std::nanf(""));
  out.ids.resize(size_t(T) * k);
  out.weights.resize(size_t(T) * k);
  const RouterParams rp = RouterParams::from(cfg_);
  const size_t scratch = 2 * size_t(E) + 2 * size_t(cfg_.group_count) + 16;
  ws_.route_scratch.resize(scratch * size_t(pool_->size()));
  // Tasks: chunks of 8 tokens; with fewer chunks than threads (decode) each chunk's router panels
  // are split too, so the router read (E·H·4 bytes, from memory after the experts' stream) is not
  // one thread's. A panel's logits come out bitwise the same whichever task computes them; the
  // task that finishes a chunk's last part adds the bias and picks the chunk's experts.
  const int chunk = 8;
  const int chunks = (T + chunk - 1) / chunk;
  const int parts = chunks > 0 ? std::max(1, std::min(router_.panels, pool_->size() / chunks)) : 1;
  // parts > 1 only when chunks <= threads / 2, so the pool-sized counters always suffice.
  if (parts > 1 && !ws_.route_pending) ws_.route_pending.reset(new std::atomic<int>[size_t(pool_->size())]);
  std::atomic<int>* const pending = ws_.route_pending.get();
  if (parts > 1)
    for (int c = 0; c < chunks; ++c) pending[c].store(parts, std::memory_order_relaxed);
  pool_->parallel_for(chunks * parts, [&](int task, int thread) {
    const int c = task / parts, part = task % parts;
    const int t0 = c * chunk, n = std::min(chunk, T - t0);
    const void* rows[chunk];
    float* outs[chunk];
    for (int i = 0; i < n; ++i) {
      rows[i] = x + size_t(t0 + i) * H;
      outs[i] = ws_.logits.data() + size_t(t0 + i) * Ep;
    }
    LinearJob job = linear_job(router_);
    job.p0 = int(int64_t(router_.panels) * part / parts);
    job.p1 = int(int64_t(router_.panels) * (part + 1) / parts);
    job.n = n;
    job.rows = rows;
    job.out = outs;
    job.epilogue = Epilogue::Store;
    kernels_->linear[int(DType::F32)](job);
    // acq_rel: the chunk's last part sees the other parts' logits.
    if (parts > 1 && pending[c].fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    if (!cfg_.router_bias.empty())
      for (int i = 0; i < n; ++i)
        for (int e = 0; e < E; ++e) outs[i][e] += cfg_.router_bias[size_t(e)];
    float* s = ws_.route_scratch.data() + scratch * size_t(thread);
    for (int i = 0; i < n; ++i) {
      const int t = t0 + i;
      route_token(rp, outs[i], s, out.ids.data() + size_t(t) * k, out.weights.data() + size_t(t) * k);
    }
  });
  const int64_t cap = expert_capacity(cfg_, T);
  plan_routes(T, out, std::vector<int64_t>(size_t(E), cap), cap);
}

void MoeLayer::plan_routes(int T, ForwardResult& out, const std::vector<int64_t>& capacity, int64_t cap) {
  const int H = cfg_.hidden, E = cfg_.experts, k = cfg_.top_k;
  build_routing_plan(out.ids.data(), T, k, E, capacity, ws_.plan);
  ForwardStats& st = out.stats;
  st.tokens = T;
  st.distinct_experts = ws_.plan.distinct;
  st.assignments = ws_.plan.kept();
  st.dropped = ws_.plan.dropped;
  st.capacity = cfg_.capacity_factor > 0 ? cap : -1;
  st.expert_counts = ws_.plan.counts;
  st.router_bytes = double(E) * H * 4;
  st.expert_bytes = double(ws_.plan.distinct) * expert_bytes();
  st.shared_bytes = shared_ && T > 0 ? double(shared_->bytes()) : 0;
  st.flops = 2.0 * H * E * T + 6.0 * H * cfg_.intermediate * double(st.assignments) +
             6.0 * H * cfg_.shared_intermediate * double(T);
}

void MoeLayer::route(const float* x, int T, ForwardResult& out) {
  auto lock = pool_->acquire();
  const int64_t t0 = now_ns();
  route_locked(x, T, out);
  out.stats.route_ns = out.stats.total_ns = now_ns() - t0;
  out.stats.flops = 2.0 * cfg_.hidden * cfg_.experts * T;
}

void MoeLayer::predict_and_prefetch(const float* x, int T, std::vector<int>& experts) {
  ForwardResult r;
  route(x, T, r);
  experts.clear();
  for (int e = 0; e < cfg_.experts; ++e)
    if (r.stats.expert_counts[size_t(e)] > 0) experts.push_back(e);
  std::stable_sort(experts.begin(), experts.end(),
                   [&](int a, int b) { return r.stats.expert_counts[size_t(a)] > r.stats.expert_counts[size_t(b)]; });
  if (cache_) cache_->prefetch(to_entries(experts));
}

// A pass: activation rows, route, plan the expert rows, the experts (in waves when offloaded),
// then the weighted combine.
void MoeLayer::forward(const float* x, int T, ForwardResult& out, const std::function<void()>* before_experts) {
  auto lock = pool_->acquire();
  const int64_t t_start = now_ns();
  prepare_activations(x, T);
  route_locked(x, T, out);
  const int64_t t_routed = now_ns();
  plan_expert_rows(x, T, out);
  int64_t compute_ns = run_experts(out, before_experts);
  const int64_t t_experts = now_ns();
  if (!cache_) compute_ns = t_experts - t_routed;
  combine(T, out);
  const int64_t t_end = now_ns();
  out.stats.route_ns = t_routed - t_start;
  out.stats.experts_ns = t_experts - t_routed;
  out.stats.combine_ns = t_end - t_experts;
  out.stats.total_ns = t_end - t_start;
  out.stats.compute_ns = (t_routed - t_start) + compute_ns + (t_end - t_experts);
}

// Activation rows once per token (quantised formats), and the shared expert's gate.
void MoeLayer::prepare_activations(const float* x, int T) {
  const int H = cfg_.hidden;
  const DType dt = cfg_.dtype;
  const size_t ab = activation_row_bytes(dt, H);
  if (ab) ws_.act.resize(size_t(T) * ab);
  ws_.shared_gate.assign(size_t(T), 1.0f);
  if (ab || !shared_gate_weight_.empty()) {
    pool_->parallel_for((T + 15) / 16, [&](int task, int) {
      for (int t = task * 16; t < std::min(T, task * 16 + 16); ++t) {
        const float* xt = x + size_t(t) * H;
        if (ab && dt == DType::BF16) make_activation_row(dt, xt, H, ws_.act.data() + size_t(t) * ab);
        else if (ab) kernels_->quant_row(xt, H, ws_.act.data() + size_t(t) * ab);
        if (!shared_gate_weight_.empty()) {
          float dot = 0;
          for (int h = 0; h < H; ++h) dot += xt[h] * shared_gate_weight_[h];
          ws_.shared_gate[t] = 1.0f / (1.0f + std::exp(-dot));
        }
      }
    });
  }
}

// One row per kept (token, expert) pair in plan order, then one per token for the shared expert:
// its input, intermediate and output rows in the grow-only work buffers, and its combine weight.
void MoeLayer::plan_expert_rows(const float* x, int T, const ForwardResult& out) {
  const int H = cfg_.hidden, k = cfg_.top_k;
  const DType dt = cfg_.dtype;
  const RoutingPlan& plan = ws_.plan;
  const int kept = plan.kept();
  const int ns = shared_ ? T : 0;
  const int rows = kept + ns;
  const int fp = round_up(cfg_.intermediate, 16);
  const int fps = shared_ ? shared_->f_padded() : 0;
  const int Hp = round_up(H, 32);
  const size_t hab = activation_row_bytes(dt, fp), habs = shared_ ? activation_row_bytes(dt, fps) : 0;
  // Grow-only work buffers: re-allocating them every pass costs a page fault (and zeroing) per
  // page touched, a noticeable share of a prefill pass.
  ws_.h.reserve((size_t(kept) * fp + size_t(ns) * fps) * 4);
  ws_.h_act.reserve(size_t(kept) * hab + size_t(ns) * habs);
  ws_.out.reserve(size_t(rows) * Hp * 4);
  ws_.in_ptrs.resize(size_t(rows));
  ws_.h_ptrs.resize(size_t(rows));
  ws_.hact_ptrs.resize(size_t(rows));
  ws_.out_ptrs.resize(size_t(rows));
  ws_.scales.resize(size_t(rows));
  if (cfg_.poison) {
    for (AlignedBuffer* b : {&ws_.h, &ws_.h_act, &ws_.out})
      if (b->size()) std::memset(b->data(), 0xFF, b->size());  // never memset(nullptr, ., 0)
  }
  float* hbase = ws_.h.as<float>();
  float* obase = ws_.out.as<float>();
  for (int s = 0; s < rows; ++s) {
    const bool sh = s >= kept;
    const int t = sh ? s - kept : plan.slot_token[s];
    ws_.in_ptrs[s] = act_row(x, t);
    ws_.h_ptrs[s] = sh ? hbase + size_t(kept) * fp + size_t(s - kept) * fps : hbase + size_t(s) * fp;
    ws_.hact_ptrs[s] =
        sh ? ws_.h_act.data() + size_t(kept) * hab + size_t(s - kept) * habs : ws_.h_act.data() + size_t(s) * hab;
    ws_.out_ptrs[s] = obase + size_t(s) * Hp;
    ws_.scales[s] = sh ? ws_.shared_gate[t] : out.weights[size_t(t) * k + plan.slot_choice[s]];
  }
}

// The experts' SwiGLU rows: all at once when resident; when offloaded, every miss is issued
// before compute starts, the resident experts (and the shared one) run while the loads are in
// flight, then each batch of landed experts as it arrives. An expert's rows are computed exactly
// as in the all-resident pass, so outputs match bitwise. → time spent computing (offloaded).
int64_t MoeLayer::run_experts(ForwardResult& out, const std::function<void()>* before_experts) {
  const DType dt = cfg_.dtype;
  const RoutingPlan& plan = ws_.plan;
  const int kept = plan.kept();
  const int ns = shared_ ? out.stats.tokens : 0;
  std::vector<ExpertRows> groups;
  auto add_group = [&](const ExpertWeights* w, int first, int n, int expert) {
    ExpertRows g;
    g.w = w;
    g.n = n;
    g.in = ws_.in_ptrs.data() + first;
    g.h = ws_.h_ptrs.data() + first;
    g.h_act = ws_.hact_ptrs.data() + first;
    g.out = ws_.out_ptrs.data() + first;
    g.scale = ws_.scales.data() + first;
    set_variant(g, expert);
    groups.push_back(g);
  };
  int64_t compute_ns = 0;
  if (!cache_) {
    for (int e = 0; e < cfg_.experts; ++e)
      if (plan.counts[e] > 0) add_group(&experts_[e], plan.offsets[e], plan.counts[e], e);
    if (ns) add_group(shared_.get(), kept, ns, -1);
    run_expert_ffn(*pool_, *kernels_, dt, groups);
    if (before_experts) (*before_experts)();
    return compute_ns;
  }
  std::vector<int> needed;
  for (int e = 0; e < cfg_.experts; ++e)
    if (plan.counts[e] > 0) needed.push_back(e);
  const OffloadStats before = cache_->stats();
  cache_->begin_pass(to_entries(needed));
  ExpertCache::PassGuard guard{cache_.get()};
  if (before_experts) (*before_experts)();
  std::vector<ExpertCache::Ready> batch;
  for (bool first = true;; first = false) {
    cache_->next_ready(batch, /*wait=*/!first);
    groups.clear();
    for (const auto& r : batch) {
      const int e = file_expert_[size_t(r.expert)];
      add_group(r.weights, plan.offsets[e], plan.counts[e], e);
    }
    if (first && ns) add_group(shared_.get(), kept, ns, -1);
    if (!groups.empty()) {
      const int64_t c0 = now_ns();
      run_expert_ffn(*pool_, *kernels_, dt, groups);
      compute_ns += now_ns() - c0;
      cache_->release(batch);
    }
    if (!first && batch.empty()) break;
  }
  out.stats.offloaded = true;
  out.stats.offload = cache_->stats() - before;
  out.stats.resident = resident();
  return compute_ns;
}

void MoeLayer::set_variant(ExpertRows& g, int expert) const {
  if (expert < 0) return;  // the shared expert is always the plain SwiGLU one
  if (cfg_.score_on_input) {
    g.in_scale = g.scale;
    g.scale = nullptr;
  }
  if (!b13_.empty()) {
    g.b13 = b13_.data() + size_t(expert) * b13_stride_;
    g.b2 = b2_.data() + size_t(expert) * b2_stride_;
  }
  g.clamp_limit = cfg_.swiglu_limit;
  g.alpha = cfg_.swiglu_alpha;
}

// Weighted combine in a fixed order (choices j = 0..k-1, then the shared expert), so a token's
// output never depends on the other tokens of the batch.
void MoeLayer::combine(int T, ForwardResult& out) {
  const int H = cfg_.hidden, k = cfg_.top_k;
  const RoutingPlan& plan = ws_.plan;
  const int kept = plan.kept();
  const bool has_shared = shared_ != nullptr;
  out.output.resize(size_t(T) * H);
  if (cfg_.poison) std::fill(out.output.begin(), out.output.end(), std::nanf(""));
  pool_->parallel_for((T + 7) / 8, [&](int task, int) {
    for (int t = task * 8; t < std::min(T, task * 8 + 8); ++t) {
      float* y = out.output.data() + size_t(t) * H;
      std::memset(y, 0, sizeof(float) * size_t(H));
      for (int j = 0; j < k; ++j) {
        const int s = plan.token_slot[size_t(t) * k + j];
        if (s < 0) continue;
        const float* o = ws_.out_ptrs[s];
        for (int h = 0; h < H; ++h) y[h] += o[h];
      }
      if (has_shared) {
        const float* o = ws_.out_ptrs[kept + t];
        for (int h = 0; h < H; ++h) y[h] += o[h];
      }
    }
  });
}

}  // namespace moecap
