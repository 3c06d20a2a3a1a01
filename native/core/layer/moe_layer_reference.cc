// The fp64 reference of a layer: routing and SwiGLU experts (and the family variants) in double precision from the
// master weights (never the packed ones), for measuring the error of the packed kernels.
#include <algorithm>
#include <cmath>
#include <utility>

#include "layer/moe_layer.h"
#include "router/router_topk.h"

namespace moecap {

void MoeLayer::reference(const float* x, int T, const std::vector<int32_t>& sample, ReferenceResult& r) {
  auto lock = pool_->acquire();
  const int H = cfg_.hidden, E = cfg_.experts, k = cfg_.top_k, F = cfg_.intermediate;
  const RouterParams rp = RouterParams::from(cfg_);
  std::vector<float> router(size_t(E) * H);
  for (int e = 0; e < E; ++e) source_->row(Matrix::Router, 0, e, H, router.data() + size_t(e) * H);
  r.ids.resize(size_t(T) * k);
  r.weights.resize(size_t(T) * k);
  pool_->parallel_for(T, [&](int t, int) {
    std::vector<double> logits(static_cast<size_t>(E)), scratch(2 * size_t(E) + 2 * size_t(cfg_.group_count) + 16);
    const float* xt = x + size_t(t) * H;
    for (int e = 0; e < E; ++e) {
      double d = 0;
      for (int h = 0; h < H; ++h) d += double(xt[h]) * double(router[size_t(e) * H + h]);
      logits[e] = d + (cfg_.router_bias.empty() ? 0.0 : double(cfg_.router_bias[size_t(e)]));
    }
    route_token(rp, logits.data(), scratch.data(), r.ids.data() + size_t(t) * k, r.weights.data() + size_t(t) * k);
  });
  RoutingPlan plan;
  build_routing_plan(r.ids.data(), T, k, E, expert_capacity(cfg_, T), plan);
  r.dropped = plan.dropped;

  const int S = (int)sample.size();
  const int units = E + (shared_ ? 1 : 0);
  std::vector<std::vector<double>> partial(static_cast<size_t>(units));
  // One task per expert (and the shared one): fp64 SwiGLU of the sampled tokens that chose it.
  pool_->parallel_for(units, [&](int u, int) {
    const bool sh = u == E;
    std::vector<std::pair<int, double>> users;  // (sample index, weight)
    for (int s = 0; s < S; ++s) {
      const int t = sample[s];
      if (sh) {
        double w = 1;
        if (cfg_.shared_gated) {
          double d = 0;
          for (int h = 0; h < H; ++h) d += double(x[size_t(t) * H + h]) * double(shared_gate_weight_[h]);
          w = 1.0 / (1.0 + std::exp(-d));
        }
        users.emplace_back(s, w);
        continue;
      }
      for (int j = 0; j < k; ++j)
        if (r.ids[size_t(t) * k + j] == u && plan.token_slot[size_t(t) * k + j] >= 0)
          users.emplace_back(s, r.weights[size_t(t) * k + j]);
    }
    if (users.empty()) return;
    const int Fu = sh ? cfg_.shared_intermediate : F;
    const Matrix mg = sh ? Matrix::SharedGate : Matrix::Gate, mu = sh ? Matrix::SharedUp : Matrix::Up,
                 md = sh ? Matrix::SharedDown : Matrix::Down;
    const int e = sh ? 0 : u;
    const size_t U = users.size();
    std::vector<double> act(U * size_t(Fu));
    std::vector<float> rg(static_cast<size_t>(H)), ru(static_cast<size_t>(H)), rd(static_cast<size_t>(Fu));
    for (int f = 0; f < Fu; ++f) {
      source_->row(mg, e, f, H, rg.data());
      source_->row(mu, e, f, H, ru.data());
      for (size_t i = 0; i < U; ++i) {
        const float* xt = x + size_t(sample[users[i].first]) * H;
        double g = 0, v = 0;
        for (int h = 0; h < H; ++h) {
          g += double(xt[h]) * double(rg[h]);
          v += double(xt[h]) * double(ru[h]);
        }
        if (!sh) {
          // The family variants: Llama 4 scales the input by the score (x·s)·W = s·(x·W);
          // gpt-oss adds biases and clamps.
          if (cfg_.score_on_input) {
            g *= users[i].second;
            v *= users[i].second;
          }
          if (!cfg_.gate_bias.empty()) {
            g += double(cfg_.gate_bias[size_t(e) * F + f]);
            v += double(cfg_.up_bias[size_t(e) * F + f]);
          }
          if (cfg_.swiglu_limit != 0) {
            const double lim = cfg_.swiglu_limit;
            g = std::min(g, lim);
            v = std::max(-lim, std::min(v, lim));
            act[i * Fu + f] = (v + 1.0) * (g / (1.0 + std::exp(-double(cfg_.swiglu_alpha) * g)));
            continue;
          }
        }
        act[i * Fu + f] = g / (1.0 + std::exp(-g)) * v;
      }
    }
    std::vector<double>& out = partial[size_t(u)];
    out.assign(size_t(S) * H, 0.0);
    for (int h = 0; h < H; ++h) {
      source_->row(md, e, h, Fu, rd.data());
      for (size_t i = 0; i < U; ++i) {
        double d = 0;
        for (int f = 0; f < Fu; ++f) d += double(rd[f]) * act[i * Fu + f];
        if (!sh && !cfg_.down_bias.empty()) d += double(cfg_.down_bias[size_t(e) * H + h]);
        const double w = !sh && cfg_.score_on_input ? 1.0 : users[i].second;
        out[size_t(users[i].first) * H + h] += w * d;
      }
    }
  });
  r.output.assign(size_t(S) * H, 0.0);
  for (int u = 0; u < units; ++u)
    if (!partial[size_t(u)].empty())
      for (size_t i = 0; i < r.output.size(); ++i) r.output[i] += partial[size_t(u)][i];
}

}  // namespace moecap
