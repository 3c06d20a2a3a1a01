#include "ep/ep_layer.h"

#include <cstring>

#include "ep/cuda_nccl_transport.h"
#include "ep/ep_forward_cuda.h"
#include "error.h"
#include "runtime/environment.h"

namespace moecap {

int rank_device(int local_rank, int rank, int device_count) {
  if (device_count < 1) return 0;
  return (local_rank >= 0 ? local_rank : rank) % device_count;
}

OffloadConfig rank_offload(const OffloadConfig& offload, int rank, int ranks) {
  OffloadConfig o = offload;
  if (o.enabled && !o.path.empty()) o.path += ".rank" + std::to_string(rank) + "-of-" + std::to_string(ranks);
  return o;
}

EpLayer::EpLayer(const LayerConfig& config, std::shared_ptr<const WeightSource> weights, const std::string& isa,
                 ExpertPlacement placement, std::shared_ptr<ExpertTransport> transport, const OffloadConfig& offload)
    : placement_(std::move(placement)), transport_(std::move(transport)) {
  if (placement_.ranks != transport_->size())
    throw_option("ep.ranks (" + std::to_string(placement_.ranks) + ") differs from the ranks running (" +
                 std::to_string(transport_->size()) + ")");
  const int me = transport_->rank();
  layer_.reset(new MoeLayer(config, std::move(weights), isa, rank_offload(offload, me, placement_.ranks), nullptr,
                            nullptr, placement_.held_by(me)));
}

EpLayer::EpLayer(const CudaApi* api, const LayerConfig& config, std::shared_ptr<const WeightSource> weights,
                 CudaLayerOptions cuda, ExpertPlacement placement, std::shared_ptr<ExpertTransport> transport,
                 bool nccl)
    : placement_(std::move(placement)), transport_(std::move(transport)) {
  if (placement_.ranks != transport_->size())
    throw_option("ep.ranks (" + std::to_string(placement_.ranks) + ") differs from the ranks running (" +
                 std::to_string(transport_->size()) + ")");
  if (cuda.cache_slots > 0 || cuda.cache_bytes > 0)
    throw_option("expert parallelism on the CUDA backend does not work with offload yet");
  cuda.held = placement_.held_by(transport_->rank());
  moecap_cuda_probe_t probe;
  std::memset(&probe, 0, sizeof probe);
  probe.size = sizeof probe;
  if (api->probe(0, &probe) != 0 && probe.device_count == 0)
    throw_runtime(std::string("CUDA backend: ") + probe.reason, ErrorCode::BackendUnavailable);
  cuda.device = rank_device(read_environment().local_rank, transport_->rank(), probe.device_count);
  cuda_.reset(new CudaLayer(api, config, std::move(weights), cuda));
  if (nccl) exchange_ = std::make_shared<CudaNcclTransport>(api, cuda.device, *transport_);
}

void EpLayer::forward(const float* x, int T, ForwardResult& out, EpPassStats& stats) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cuda_) cuda_forward_ep(*cuda_, x, T, out, exchange_ ? *exchange_ : *transport_, placement_, stats);
  else layer_->forward_ep(x, T, out, *transport_, placement_, stats);
}

void EpLayer::route(const float* x, int T, ForwardResult& out) {
  if (!cuda_) return layer_->route(x, T, out);
  // The device holds only this rank's experts: the router steps alone (a pass of T tokens).
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<uint8_t> rows;
  out = ForwardResult();
  if (T > 0) cuda_->ep_route(x, T, T, out, rows);
}

std::vector<int> EpLayer::held() const {
  std::vector<int> h;
  for (int e = 0; e < placement_.experts; ++e)
    if (cuda_ ? cuda_->holds(e) : layer_->holds(e)) h.push_back(e);
  return h;
}

// Counts first (every rank tells every rank its size), then the bytes, to rank 0 only.
std::vector<std::vector<uint8_t>> EpLayer::gather_to_root(const void* data, int64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  const int P = transport_->size(), me = transport_->rank();
  const std::vector<int64_t> mine(static_cast<size_t>(P), bytes), eight(static_cast<size_t>(P), 8);
  std::vector<int64_t> sizes(static_cast<size_t>(P), 0), send(static_cast<size_t>(P), 0),
      recv(static_cast<size_t>(P), 0);
  transport_->alltoallv(mine.data(), eight.data(), sizes.data(), eight.data());
  send[0] = bytes;
  int64_t total = 0;
  if (me == 0)
    for (int p = 0; p < P; ++p) total += (recv[size_t(p)] = sizes[size_t(p)]);
  std::vector<uint8_t> all(size_t(total) + 1);
  transport_->alltoallv(data, send.data(), all.data(), recv.data());
  std::vector<std::vector<uint8_t>> out;
  if (me == 0) {
    int64_t off = 0;
    for (int p = 0; p < P; ++p) {
      out.emplace_back(all.begin() + off, all.begin() + off + sizes[size_t(p)]);
      off += sizes[size_t(p)];
    }
  }
  return out;
}

}  // namespace moecap
