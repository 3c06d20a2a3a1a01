#include "ep/ep_simulation.h"

#include <exception>
#include <thread>

#include "ep/ep_layer.h"
#include "ep/loopback_transport.h"
#include "error.h"
#include "layer/moe_layer.h"

namespace moecap {

EpSimulationResult simulate_ep(const LayerConfig& cfg, std::shared_ptr<const WeightSource> weights,
                               const std::string& isa, const ExpertPlacement& pl, const float* x, int T,
                               const OffloadConfig& offload) {
  const int P = pl.ranks, H = cfg.hidden, k = cfg.top_k;
  std::vector<std::unique_ptr<MoeLayer>> layers;
  EpSimulationResult res;
  for (int r = 0; r < P; ++r) {
    layers.emplace_back(new MoeLayer(cfg, weights, isa, rank_offload(offload, r, P), nullptr, nullptr, pl.held_by(r)));
    std::vector<int> held;
    for (int e = 0; e < cfg.experts; ++e)
      if (layers.back()->holds(e)) held.push_back(e);
    res.held.push_back(held);
  }
  auto hub = std::make_shared<LoopbackHub>(P);
  std::vector<ForwardResult> outs(static_cast<size_t>(P));
  res.ranks.resize(size_t(P));
  std::vector<std::exception_ptr> errors(static_cast<size_t>(P));
  std::vector<std::thread> threads;
  for (int r = 0; r < P; ++r)
    threads.emplace_back([&, r] {
      try {
        LoopbackTransport tr(hub, r);
        const int t0 = ep_first_token(T, P, r), t1 = ep_first_token(T, P, r + 1);
        layers[size_t(r)]->forward_ep(x + size_t(t0) * H, t1 - t0, outs[size_t(r)], tr, pl, res.ranks[size_t(r)]);
      } catch (...) {
        errors[size_t(r)] = std::current_exception();
        hub->abort("rank " + std::to_string(r) + " failed");
      }
    });
  for (auto& t : threads) t.join();
  for (auto& e : errors)  // the first rank's own error, not another's "aborted"
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const Error& err) {
        if (std::string(err.what()).rfind("loopback exchange aborted", 0) != 0) throw;
      }
    }
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  res.output.reserve(size_t(T) * H);
  res.ids.reserve(size_t(T) * k);
  for (auto& o : outs) {
    res.output.insert(res.output.end(), o.output.begin(), o.output.end());
    res.ids.insert(res.ids.end(), o.ids.begin(), o.ids.end());
  }
  return res;
}

}  // namespace moecap
