// MoeLayer's expert-parallel pass and its partial expert compute (declared in layer/moe_layer.h).
// The pass splits forward() at its steps: route and plan here; every kept row travels to a rank
// holding its expert (counts first, then rows); each rank computes the rows it received with the
// same kernels, an expert's rows in origin-rank then token order (with tokens split over ranks in
// order, exactly forward()'s row order); the results travel back and the combine runs here in
// forward()'s order.
#include <algorithm>
#include <cstring>

#include "ep/ep_pass_stats.h"
#include "ep/expert_placement.h"
#include "ep/expert_transport.h"
#include "ep/ep_wire.h"
#include "error.h"
#include "experts/expert_ffn.h"
#include "int_math.h"
#include "layer/moe_layer.h"
#include "runtime/clock.h"
#include "weights/activation_rows.h"

namespace moecap {

void MoeLayer::compute_partial(const std::vector<PartialRows>& parts, OffloadStats* offload) {
  auto lock = pool_->acquire();
  const DType dt = cfg_.dtype;
  const int fp = round_up(cfg_.intermediate, 16);
  const size_t hab = activation_row_bytes(dt, fp);
  int64_t rows = 0;
  std::vector<int> first_row(size_t(cfg_.experts), -1), part_of(size_t(cfg_.experts), -1);
  for (size_t i = 0; i < parts.size(); ++i) {
    const PartialRows& p = parts[i];
    if (!holds(p.expert))
      throw_runtime("expert " + std::to_string(p.expert) +
                    " is not held by this layer (placements differ between ranks?)");
    if (part_of[size_t(p.expert)] >= 0) throw_runtime("compute_partial: expert " + std::to_string(p.expert) + " twice");
    part_of[size_t(p.expert)] = int(i);
    first_row[size_t(p.expert)] = int(rows);
    rows += p.n;
  }
  ws_.ep_h.reserve(size_t(rows) * fp * 4);
  ws_.ep_hact.reserve(size_t(rows) * hab);
  std::vector<float*> h(static_cast<size_t>(rows));
  std::vector<void*> hact(static_cast<size_t>(rows));
  for (int64_t i = 0; i < rows; ++i) {
    h[size_t(i)] = ws_.ep_h.as<float>() + size_t(i) * fp;
    hact[size_t(i)] = ws_.ep_hact.data() + size_t(i) * hab;
  }
  std::vector<ExpertRows> groups;
  auto add_group = [&](int e, const ExpertWeights* w) {
    const PartialRows& p = parts[size_t(part_of[size_t(e)])];
    ExpertRows g;
    g.w = w;
    g.n = p.n;
    g.in = p.in;
    g.h = h.data() + first_row[size_t(e)];
    g.h_act = hact.data() + first_row[size_t(e)];
    g.out = p.out;
    g.scale = p.scale;
    set_variant(g, p.expert);
    groups.push_back(g);
  };
  if (!cache_) {
    for (const PartialRows& p : parts)
      if (p.n > 0) add_group(p.expert, &experts_[size_t(p.expert)]);
    if (!groups.empty()) run_expert_ffn(*pool_, *kernels_, dt, groups);
    return;
  }
  // Offloaded: the same waves as run_experts (resident experts first, then each load as it lands);
  // an expert's rows are computed exactly as when resident.
  std::vector<int> needed;
  for (const PartialRows& p : parts)
    if (p.n > 0) needed.push_back(p.expert);
  const OffloadStats before = cache_->stats();
  cache_->begin_pass(to_entries(needed));
  ExpertCache::PassGuard guard{cache_.get()};
  std::vector<ExpertCache::Ready> batch;
  for (bool first = true;; first = false) {
    cache_->next_ready(batch, /*wait=*/!first);
    groups.clear();
    for (const auto& r : batch) add_group(file_expert_[size_t(r.expert)], r.weights);
    if (!groups.empty()) {
      run_expert_ffn(*pool_, *kernels_, dt, groups);
      cache_->release(batch);
    }
    if (!first && batch.empty()) break;
  }
  if (offload) *offload = cache_->stats() - before;
}

void MoeLayer::forward_ep(const float* x, int T, ForwardResult& out, ExpertTransport& tr, const ExpertPlacement& pl,
                          EpPassStats& st) {
  auto lock = pool_->acquire();
  const int P = tr.size(), me = tr.rank(), E = cfg_.experts, H = cfg_.hidden;
  if (pl.ranks != P || pl.experts != E)
    throw_runtime("expert placement is for " + std::to_string(pl.ranks) + " ranks and " + std::to_string(pl.experts) +
                  " experts, the transport has " + std::to_string(P) + " ranks and the layer " + std::to_string(E));
  st = EpPassStats();
  st.rank = me;
  st.ranks = P;
  const int64_t t0 = now_ns();

  // 1. Route and plan this rank's tokens (forward()'s own steps).
  prepare_activations(x, T);
  route_locked(x, T, out);
  if (cfg_.capacity_factor > 0) {
    // The single-process layer's capacity: C from the whole batch's tokens, and an expert keeps
    // its first C assignments in token order, tokens split over ranks in rank order. Every rank
    // sends every rank its tokens and per-expert assignment counts; this rank keeps of each
    // expert what the ranks before it left of C.
    std::vector<int64_t> mine(size_t(E) + 1, 0), all(size_t(P) * (E + 1));
    for (int64_t a = 0; a < int64_t(T) * cfg_.top_k; ++a) ++mine[size_t(out.ids[size_t(a)])];
    mine[size_t(E)] = T;
    std::vector<int64_t> send(size_t(P) * (E + 1));
    for (int p = 0; p < P; ++p) std::copy(mine.begin(), mine.end(), send.begin() + size_t(p) * (E + 1));
    const std::vector<int64_t> block(size_t(P), int64_t(E + 1) * 8);
    tr.alltoallv(send.data(), block.data(), all.data(), block.data());
    st.bytes_sent += double(P - 1) * double(E + 1) * 8;
    st.bytes_received += double(P - 1) * double(E + 1) * 8;
    int64_t tokens = 0;
    for (int p = 0; p < P; ++p) tokens += all[size_t(p) * (E + 1) + size_t(E)];
    const int64_t cap = expert_capacity(cfg_, tokens);
    std::vector<int64_t> left(size_t(E), cap);
    for (int p = 0; p < me; ++p)
      for (int e = 0; e < E; ++e)
        left[size_t(e)] = std::max<int64_t>(0, left[size_t(e)] - all[size_t(p) * (E + 1) + e]);
    plan_routes(T, out, left, cap);
  }
  plan_expert_rows(x, T, out);
  const RoutingPlan& plan = ws_.plan;
  const int kept = plan.kept();
  st.dropped = plan.dropped;
  const int64_t t_routed = now_ns();

  // 2. Dispatch: rows grouped by destination rank, then expert, then token.
  const EpWireSizes wire = ep_wire_sizes(cfg_.dtype, H, E);
  const size_t act = wire.activation_bytes, rec = wire.record_bytes, ob = wire.result_bytes;
  const int Hp = round_up(H, 32);
  std::vector<int32_t> send_counts(size_t(P) * E, 0), recv_counts(size_t(P) * E, 0);  // [rank][expert]
  std::vector<int> dest(static_cast<size_t>(kept));
  for (int e = 0; e < E; ++e)
    for (int s = plan.offsets[e]; s < plan.offsets[e + 1]; ++s) {
      const int d = pl.rank_for(e, me, plan.slot_token[s]);
      dest[size_t(s)] = d;
      ++send_counts[size_t(d) * E + e];
    }
  std::vector<int64_t> rows_to(size_t(P), 0), rows_from(size_t(P), 0), send_first(size_t(P), 0);
  for (int d = 0; d < P; ++d)
    for (int e = 0; e < E; ++e) rows_to[size_t(d)] += send_counts[size_t(d) * E + e];
  for (int d = 1; d < P; ++d) send_first[size_t(d)] = send_first[size_t(d - 1)] + rows_to[size_t(d - 1)];
  std::vector<int64_t> send_pos(static_cast<size_t>(kept));
  {
    std::vector<int64_t> cursor = send_first;
    for (int s = 0; s < kept; ++s) send_pos[size_t(s)] = cursor[size_t(dest[size_t(s)])]++;
  }
  ws_.ep_send.reserve(size_t(kept) * rec);
  uint8_t* send = ws_.ep_send.data();
  pool_->parallel_for((kept + 63) / 64, [&](int task, int) {
    for (int s = task * 64; s < std::min(kept, task * 64 + 64); ++s) {
      uint8_t* r = send + size_t(send_pos[size_t(s)]) * rec;
      std::memcpy(r, ws_.in_ptrs[size_t(s)], act);
      std::memcpy(r + act, &ws_.scales[size_t(s)], sizeof(float));
      std::memset(r + act + sizeof(float), 0, rec - act - sizeof(float));
    }
  });
  const std::vector<int64_t> count_bytes(size_t(P), wire.counts_bytes);
  tr.alltoallv(send_counts.data(), count_bytes.data(), recv_counts.data(), count_bytes.data());
  const int64_t recv_rows = rows_from_origins(
      recv_counts, P, E, me, [&](int e) { return holds(e); }, rows_from);
  std::vector<int64_t> sb, rb;
  row_bytes_per_rank(rows_to, rows_from, rec, sb, rb);
  ws_.ep_recv.reserve(size_t(recv_rows) * rec);
  tr.alltoallv(send, sb.data(), ws_.ep_recv.data(), rb.data());
  st.bytes_sent += off_rank(sb, me) + double(P - 1) * double(wire.counts_bytes);
  st.bytes_received += off_rank(rb, me) + double(P - 1) * double(wire.counts_bytes);
  st.rows_sent = kept - rows_to[size_t(me)];
  st.rows_received = recv_rows - rows_from[size_t(me)];
  const int64_t t_dispatched = now_ns();

  // 3. Compute the received rows: an expert's rows in origin-rank order, then token order. Each
  // result lands at its row's receive position, so the results go back as one block per origin.
  ws_.ep_out.reserve(size_t(recv_rows) * ob);
  if (cfg_.poison && ws_.ep_out.size()) std::memset(ws_.ep_out.data(), 0xFF, ws_.ep_out.size());
  std::vector<int64_t> block_first(size_t(P) * E);  // first receive row of (origin, expert)
  for (int p = 0, i = 0; p < P; ++p)
    for (int e = 0; e < E; ++e) {
      block_first[size_t(p) * E + e] = i;
      i += recv_counts[size_t(p) * E + e];
    }
  std::vector<const void*> in(static_cast<size_t>(recv_rows));
  std::vector<float> scale(static_cast<size_t>(recv_rows));
  std::vector<float*> outp(static_cast<size_t>(recv_rows));
  std::vector<PartialRows> parts;
  int64_t j = 0;
  for (int e = 0; e < E; ++e) {
    const int64_t start = j;
    for (int p = 0; p < P; ++p)
      for (int32_t r = 0; r < recv_counts[size_t(p) * E + e]; ++r, ++j) {
        const size_t i = size_t(block_first[size_t(p) * E + e] + r);
        const uint8_t* row = ws_.ep_recv.data() + i * rec;
        in[size_t(j)] = row;
        std::memcpy(&scale[size_t(j)], row + act, sizeof(float));
        outp[size_t(j)] = reinterpret_cast<float*>(ws_.ep_out.data() + i * ob);
      }
    if (j == start) continue;
    PartialRows g;
    g.expert = e;
    g.n = int(j - start);
    g.in = in.data() + start;
    g.scale = scale.data() + start;
    g.out = outp.data() + start;
    parts.push_back(g);
  }
  compute_partial(parts, cache_ ? &st.offload : nullptr);
  st.offloaded = cache_ != nullptr;
  st.rows_computed = recv_rows;
  st.experts_computed = int64_t(parts.size());
  st.expert_bytes = expert_bytes();
  st.row_bytes = double(act + ob);
  const int64_t t_computed = now_ns();

  // 4. Results back to their origins, then the shared expert and forward()'s combine.
  for (int p = 0; p < P; ++p) {
    sb[size_t(p)] = rows_from[size_t(p)] * int64_t(ob);
    rb[size_t(p)] = rows_to[size_t(p)] * int64_t(ob);
  }
  ws_.ep_ret.reserve(size_t(kept) * ob);
  if (cfg_.poison && ws_.ep_ret.size()) std::memset(ws_.ep_ret.data(), 0xFF, ws_.ep_ret.size());
  tr.alltoallv(ws_.ep_out.data(), sb.data(), ws_.ep_ret.data(), rb.data());
  st.bytes_sent += off_rank(sb, me);
  st.bytes_received += off_rank(rb, me);
  float* ret = ws_.ep_ret.as<float>();
  for (int s = 0; s < kept; ++s) ws_.out_ptrs[size_t(s)] = ret + size_t(send_pos[size_t(s)]) * Hp;
  const int64_t t_shared = now_ns();
  if (shared_ && T > 0) {
    ExpertRows g;
    g.w = shared_.get();
    g.n = T;
    g.in = ws_.in_ptrs.data() + kept;
    g.h = ws_.h_ptrs.data() + kept;
    g.h_act = ws_.hact_ptrs.data() + kept;
    g.out = ws_.out_ptrs.data() + kept;
    g.scale = ws_.scales.data() + kept;
    run_expert_ffn(*pool_, *kernels_, cfg_.dtype, {g});
    st.shared_rows = T;
    st.shared_bytes = double(shared_->bytes());
  }
  st.shared_ns = now_ns() - t_shared;
  combine(T, out);
  const int64_t t_end = now_ns();

  st.route_ns = t_routed - t0;
  st.dispatch_ns = t_dispatched - t_routed;
  st.compute_ns = t_computed - t_dispatched;
  st.combine_ns = t_end - t_computed;
  st.total_ns = t_end - t0;
  out.stats.route_ns = st.route_ns;
  out.stats.experts_ns = t_computed - t_routed;
  out.stats.combine_ns = st.combine_ns;
  out.stats.total_ns = st.total_ns;
  out.stats.compute_ns = st.route_ns + st.compute_ns;
  if (cache_) {
    out.stats.offloaded = true;
    out.stats.offload = st.offload;
    out.stats.resident = resident();
  }

  // 5. Every rank's expert compute time, for the imbalance (slowest vs mean).
  const std::vector<int64_t> mine(size_t(P), st.compute_ns), eight(size_t(P), 8);
  st.rank_compute_ns.assign(size_t(P), 0);
  tr.alltoallv(mine.data(), eight.data(), st.rank_compute_ns.data(), eight.data());
}

}  // namespace moecap
