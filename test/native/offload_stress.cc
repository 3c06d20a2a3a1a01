// Sanitizer stress driver for offload (no Node): offloaded layers and models under concurrent
// forwards, bitwise vs resident, destroyed with prefetches in flight. Run: test/native/offload_sanitizers.sh
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>
#include "layer/moe_layer.h"
#include "model/moe_model.h"
using namespace moecap;
int main() {
  LayerConfig c;
  c.hidden = 48;
  c.intermediate = 40;
  c.experts = 8;
  c.top_k = 2;
  c.threads = 2;
  c.dtype = DType::BF16;
  auto w = std::make_shared<SeededWeights>(3);
  MoeLayer ref(c, w, "auto");
  int bad = 0;
  for (int pol = 0; pol < 4; ++pol)
    for (int cap = 1; cap <= 8; cap += 3)
      for (int pf = 0; pf < 2; ++pf) {
        OffloadConfig off;
        off.enabled = true;
        off.capacity_experts = cap;
        off.policy = CachePolicy(pol);
        off.prefetch = pf;
        off.cold = true;
        MoeLayer l(c, w, "auto", off);
        std::vector<std::thread> th;
        for (int t = 0; t < 3; ++t)
          th.emplace_back([&, t] {
            for (int i = 0; i < 6; ++i) {
              int T = 1 + (i * 7 + t) % 9;
              std::vector<float> x(size_t(T) * 48);
              for (size_t j = 0; j < x.size(); ++j) x[j] = float(((j * 2654435761u + i * 97 + t) % 1000) / 500.0 - 1.0);
              ForwardResult a, b;
              ref.forward(x.data(), T, a);
              l.forward(x.data(), T, b);
              if (std::memcmp(a.output.data(), b.output.data(), a.output.size() * 4)) {
                std::printf("mismatch\n");
                ++bad;
              }
              if (pol == 3 && i == 2) l.cache()->pin_static();
            }
          });
        for (auto& t : th) t.join();
      }
  std::vector<std::shared_ptr<const WeightSource>> ws = {
      std::make_shared<SeededWeights>(3), std::make_shared<SeededWeights>(4), std::make_shared<SeededWeights>(5)};
  OffloadConfig off;
  off.enabled = true;
  off.capacity_experts = 2;
  off.policy = CachePolicy::LFRU;
  MoeModel resident(c, ws, "auto", OffloadConfig());
  for (int round = 0; round < 3; ++round) {
    MoeModel m(c, ws, "auto", off);
    std::vector<std::thread> th;
    for (int t = 0; t < 3; ++t)
      th.emplace_back([&, t] {
        for (int i = 0; i < 4; ++i) {
          int T = 1 + (i + t) % 5;
          std::vector<float> x(size_t(T) * 48, 0.1f * float(t + 1));
          for (size_t j = 0; j < x.size(); ++j) x[j] += float(j % 7) * 0.05f;
          ModelResult a, b;
          resident.forward(x.data(), T, a);
          m.forward(x.data(), T, b);
          if (std::memcmp(a.output.data(), b.output.data(), a.output.size() * 4)) {
            std::printf("model mismatch\n");
            ++bad;
          }
        }
      });
    for (auto& t : th) t.join();
  }  // destroyed with prefetches possibly in flight
  std::printf("driver done, %d mismatches\n", bad);
  return bad != 0;
}
