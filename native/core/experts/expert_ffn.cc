#include "experts/expert_ffn.h"

#include <algorithm>
#include <atomic>
#include <memory>

#include "runtime/thread_pool.h"
#include "weights/activation_rows.h"

namespace moecap {
namespace {

struct Task {
  int group, p0, p1;
};

// Splits every group's panels into chunks of about equal work (rows × panels), about 16 per
// thread, so dynamic scheduling evens out experts with more rows and the tail. Chunks are
// multiples of 4 panels (the AVX-512 f32/bf16 decode tiles take 4 panels × 1 row at a time, the
// int8/int4 ones 2; the AVX2 ones 2 or 3).
void make_tasks(const std::vector<ExpertRows>& groups, bool down, int threads, std::vector<Task>& tasks) {
  tasks.clear();
  double total = 0;
  for (auto& g : groups) total += double(down ? g.w->w2.panels : g.w->w13.panels) * g.n;
  const double target = std::max(1.0, total / (double(threads) * 16));
  for (int i = 0; i < (int)groups.size(); ++i) {
    const int panels = down ? groups[i].w->w2.panels : groups[i].w->w13.panels;
    if (groups[i].n == 0) continue;
    long chunk = std::max(1L, long(target / groups[i].n));
    if (chunk > 4) chunk = chunk / 4 * 4;
    for (int p = 0; p < panels; p += int(chunk)) tasks.push_back({i, p, std::min(panels, p + int(chunk))});
  }
}

}  // namespace

void run_expert_ffn(ThreadPool& pool, const KernelTable& kernels, DType dtype, const std::vector<ExpertRows>& groups) {
  const LinearFn linear = kernels.linear[int(dtype)];
  std::vector<Task> tasks;

  // h re-encoded for the down projection's dot-product instructions (bf16, int8/int4 rows) by
  // whichever thread finishes the last gate/up task of a group: no separate parallel phase (a
  // decode pass is ~1 ms, each phase boundary costs a barrier and its tail).
  const bool encode = activation_row_bytes(dtype, 1) != 0;
  std::unique_ptr<std::atomic<int>[]> pending(new std::atomic<int>[groups.size() + 1]);
  auto encode_group = [&](const ExpertRows& g) {
    for (int r = 0; r < g.n; ++r) {
      if (dtype == DType::BF16) make_activation_row(dtype, g.h[r], g.w->f_padded(), g.h_act[r]);
      else kernels.quant_row(g.h[r], g.w->f_padded(), g.h_act[r]);
    }
  };

  // One phase: every (expert, panel chunk) task of the gate/up or of the down projection.
  auto run_phase = [&](bool down) {
    make_tasks(groups, down, pool.size(), tasks);
    if (!down && encode) {
      for (size_t i = 0; i < groups.size(); ++i) pending[i].store(0, std::memory_order_relaxed);
      for (const Task& t : tasks) pending[size_t(t.group)].fetch_add(1, std::memory_order_relaxed);
    }
    pool.parallel_for((int)tasks.size(), [&](int t, int) {
      const Task& task = tasks[t];
      const ExpertRows& g = groups[task.group];
      LinearJob job = linear_job(down ? g.w->w2 : g.w->w13);
      job.p0 = task.p0;
      job.p1 = task.p1;
      job.n = g.n;
      if (down) {
        job.rows = !encode ? reinterpret_cast<const void* const*>(g.h) : g.h_act;
        job.out = g.out;
        // No scale: the routing score went into the input (ExpertRows::in_scale).
        job.epilogue = g.b2 ? Epilogue::ScaledBias : g.scale ? Epilogue::Scaled : Epilogue::Store;
        job.row_scale = g.scale;
        job.bias = g.b2;
      } else {
        job.rows = g.in;
        job.out = g.h;
        job.epilogue = g.variant() ? Epilogue::GatedVariant : Epilogue::SwiGLU;
        job.row_scale = g.in_scale;
        job.bias = g.b13;
        job.clamp_limit = g.clamp_limit;
        job.alpha = g.alpha;
      }
      linear(job);
      // acq_rel: the last task of the group sees every other task's h columns.
      if (!down && encode && pending[size_t(task.group)].fetch_sub(1, std::memory_order_acq_rel) == 1) encode_group(g);
    });
  };

  run_phase(false);
  run_phase(true);
}

}  // namespace moecap
