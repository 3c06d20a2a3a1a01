#include "ep/ep_forward_cuda.h"

#include <cstring>
#include <vector>

#include "error.h"
#include "runtime/clock.h"

namespace moecap {

void cuda_forward_ep(CudaLayer& layer, const float* x, int T, ForwardResult& out, ExpertTransport& tr,
                     const ExpertPlacement& pl, EpPassStats& st) {
  const LayerConfig& cfg = layer.config();
  const int P = tr.size(), me = tr.rank(), E = cfg.experts, H = cfg.hidden, k = cfg.top_k;
  if (pl.ranks != P || pl.experts != E)
    throw_runtime("expert placement is for " + std::to_string(pl.ranks) + " ranks and " + std::to_string(pl.experts) +
                  " experts, the transport has " + std::to_string(P) + " ranks and the layer " + std::to_string(E));
  if (cfg.capacity_factor > 0) throw_option("expert parallelism does not work with a capacity factor yet");
  if (layer.options().cache_slots > 0)
    throw_option("expert parallelism on the CUDA backend does not work with offload yet");
  layer.check_pass(T, false);  // before the first collective (this rank's T within maxTokens)
  st = EpPassStats();
  st.rank = me;
  st.ranks = P;
  const int64_t t0 = now_ns();

  // 0. The pass's tokens over all ranks: they pick the kernels (as a single-process pass would).
  const std::vector<int64_t> mine_T(size_t(P), T), eight(size_t(P), 8);
  std::vector<int64_t> all_T(size_t(P), 0);
  tr.alltoallv(mine_T.data(), eight.data(), all_T.data(), eight.data());
  int64_t global = 0;
  for (int64_t t : all_T) global += t;
  out.output.clear();
  out.ids.clear();
  out.weights.clear();
  out.stats = ForwardStats();
  out.stats.expert_counts.assign(size_t(E), 0);
  if (global == 0) {  // every rank sees it: nothing to exchange
    st.rank_compute_ns.assign(size_t(P), 0);
    return;
  }
  if (global > int64_t(1) << 30) throw_range("expert parallelism: more than 2^30 tokens in one pass");
  const int GT = int(global);

  // 1. Route and plan on the device; ids, router weights and activation rows come to the host.
  std::vector<uint8_t> x_act;
  layer.ep_route(x, T, GT, out, x_act);
  const size_t arb = layer.ep_row_bytes(), rec = arb + sizeof(float), ob = size_t(H) * sizeof(float);
  const int64_t kept = int64_t(T) * k;  // no capacity factor: every assignment is kept
  const int64_t t_routed = now_ns();

  // 2. Dispatch: rows grouped by destination rank, then expert, then token (forward()'s row order
  // within an expert, with ranks' tokens in rank order).
  std::vector<std::vector<int64_t>> by_expert(static_cast<size_t>(E));  // assignments t·k+j, token order
  for (int64_t a = 0; a < kept; ++a) {
    const int32_t e = out.ids[size_t(a)];
    if (e < 0 || e >= E) throw_runtime("CUDA router returned expert " + std::to_string(e));
    by_expert[size_t(e)].push_back(a);
    ++out.stats.expert_counts[size_t(e)];
  }
  std::vector<int32_t> send_counts(size_t(P) * E, 0), recv_counts(size_t(P) * E, 0);  // [rank][expert]
  std::vector<int> dest(static_cast<size_t>(kept));
  for (int e = 0; e < E; ++e)
    for (int64_t a : by_expert[size_t(e)]) {
      const int d = pl.rank_for(e, me, int(a / k));
      dest[size_t(a)] = d;
      ++send_counts[size_t(d) * E + e];
    }
  std::vector<int64_t> rows_to(size_t(P), 0), rows_from(size_t(P), 0), cursor(size_t(P), 0);
  for (int d = 0; d < P; ++d)
    for (int e = 0; e < E; ++e) rows_to[size_t(d)] += send_counts[size_t(d) * E + e];
  for (int d = 1; d < P; ++d) cursor[size_t(d)] = cursor[size_t(d - 1)] + rows_to[size_t(d - 1)];
  std::vector<int64_t> send_pos(static_cast<size_t>(kept));
  std::vector<uint8_t> send(size_t(kept) * rec);
  for (int e = 0; e < E; ++e)
    for (int64_t a : by_expert[size_t(e)]) {
      const int64_t pos = cursor[size_t(dest[size_t(a)])]++;
      send_pos[size_t(a)] = pos;
      uint8_t* r = send.data() + size_t(pos) * rec;
      std::memcpy(r, x_act.data() + size_t(a / k) * arb, arb);
      std::memcpy(r + arb, &out.weights[size_t(a)], sizeof(float));
    }
  const int64_t cb = int64_t(E) * int64_t(sizeof(int32_t));
  const std::vector<int64_t> count_bytes(size_t(P), cb);
  tr.alltoallv(send_counts.data(), count_bytes.data(), recv_counts.data(), count_bytes.data());
  const int64_t recv_rows = rows_from_origins(
      recv_counts, P, E, me, [&](int e) { return layer.holds(e); }, rows_from);
  std::vector<int64_t> sb, rb;
  row_bytes_per_rank(rows_to, rows_from, rec, sb, rb);
  std::vector<uint8_t> recv(size_t(recv_rows) * rec + 1);
  tr.alltoallv(send.data(), sb.data(), recv.data(), rb.data());
  st.bytes_sent += off_rank(sb, me) + double(P - 1) * double(cb);
  st.bytes_received += off_rank(rb, me) + double(P - 1) * double(cb);
  st.rows_sent = kept - rows_to[size_t(me)];
  st.rows_received = recv_rows - rows_from[size_t(me)];
  const int64_t t_dispatched = now_ns();

  // 3. The received rows expert-major (an expert's rows in origin-rank, then token order) through
  // the device; each result goes back to its receive position, one block per origin.
  std::vector<int64_t> block_first(size_t(P) * E);
  for (int p = 0, i = 0; p < P; ++p)
    for (int e = 0; e < E; ++e) {
      block_first[size_t(p) * E + e] = i;
      i += recv_counts[size_t(p) * E + e];
    }
  std::vector<int32_t> counts(size_t(E), 0);
  std::vector<uint8_t> rows(size_t(recv_rows) * arb + 1);
  std::vector<float> scales(static_cast<size_t>(recv_rows) + 1);
  std::vector<int64_t> recv_pos(static_cast<size_t>(recv_rows));
  int64_t j = 0;
  for (int e = 0; e < E; ++e)
    for (int p = 0; p < P; ++p)
      for (int32_t r = 0; r < recv_counts[size_t(p) * E + e]; ++r, ++j) {
        const int64_t i = block_first[size_t(p) * E + e] + r;
        const uint8_t* row = recv.data() + size_t(i) * rec;
        std::memcpy(rows.data() + size_t(j) * arb, row, arb);
        std::memcpy(&scales[size_t(j)], row + arb, sizeof(float));
        recv_pos[size_t(j)] = i;
        ++counts[size_t(e)];
      }
  std::vector<float> computed(size_t(recv_rows) * H + 1);
  if (recv_rows > 0) layer.ep_compute(GT, counts.data(), rows.data(), scales.data(), computed.data());
  std::vector<uint8_t> results_out(size_t(recv_rows) * ob + 1);
  for (int64_t r = 0; r < recv_rows; ++r)
    std::memcpy(results_out.data() + size_t(recv_pos[size_t(r)]) * ob, computed.data() + size_t(r) * H, ob);
  const int64_t t_computed = now_ns();
  st.rows_computed = recv_rows;
  for (int e = 0; e < E; ++e) st.experts_computed += counts[size_t(e)] > 0;
  st.row_bytes = double(arb + ob);
  st.expert_bytes = layer.expert_bytes();  // the shared expert runs inside ep_combine: not separated here

  // 4. Results back to their origins, each at its assignment (t, j); shared expert and combine.
  for (int p = 0; p < P; ++p) {
    sb[size_t(p)] = rows_from[size_t(p)] * int64_t(ob);
    rb[size_t(p)] = rows_to[size_t(p)] * int64_t(ob);
  }
  std::vector<uint8_t> back(size_t(kept) * ob + 1);
  tr.alltoallv(results_out.data(), sb.data(), back.data(), rb.data());
  st.bytes_sent += off_rank(sb, me);
  st.bytes_received += off_rank(rb, me);
  std::vector<float> results(size_t(kept) * H + 1);
  for (int64_t a = 0; a < kept; ++a)
    std::memcpy(results.data() + size_t(a) * H, back.data() + size_t(send_pos[size_t(a)]) * ob, ob);
  layer.ep_combine(GT, results.data(), out);
  const int64_t t_end = now_ns();

  ForwardStats& fs = out.stats;
  fs.tokens = T;
  fs.assignments = kept;
  fs.capacity = -1;
  for (int e = 0; e < E; ++e) fs.distinct_experts += fs.expert_counts[size_t(e)] > 0;
  st.route_ns = t_routed - t0;
  st.dispatch_ns = t_dispatched - t_routed;
  st.compute_ns = t_computed - t_dispatched;  // host staging included: copies to and from the device
  st.combine_ns = t_end - t_computed;
  st.total_ns = t_end - t0;
  fs.route_ns = st.route_ns;
  fs.experts_ns = t_computed - t_routed;
  fs.combine_ns = st.combine_ns;
  fs.total_ns = st.total_ns;
  fs.compute_ns = st.route_ns + st.compute_ns;

  // 5. Every rank's expert compute time, for the imbalance (slowest vs mean).
  const std::vector<int64_t> mine(size_t(P), st.compute_ns);
  st.rank_compute_ns.assign(size_t(P), 0);
  tr.alltoallv(mine.data(), eight.data(), st.rank_compute_ns.data(), eight.data());
}

}  // namespace moecap
