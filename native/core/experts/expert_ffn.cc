#include "experts/expert_ffn.h"

#include <algorithm>

#include "runtime/thread_pool.h"
#include "weights/activation_rows.h"

namespace moecap {
namespace {

struct Task {
  int group, p0, p1;
};

// Splits every group's panels into chunks so that there are several tasks per thread (dynamic
// scheduling evens out the tail). Chunks of 4 panels suit the decode tiles (4 panels × 1 row).
void make_tasks(const std::vector<ExpertRows>& groups, bool down, int threads, std::vector<Task>& tasks) {
  tasks.clear();
  long total = 0;
  for (auto& g : groups) total += down ? g.w->w2.panels : g.w->w13.panels;
  long chunk = std::max(1L, total / (long(threads) * 8));
  if (chunk > 4) chunk = chunk / 4 * 4;
  for (int i = 0; i < (int)groups.size(); ++i) {
    const int panels = down ? groups[i].w->w2.panels : groups[i].w->w13.panels;
    if (groups[i].n == 0) continue;
    for (int p = 0; p < panels; p += int(chunk)) tasks.push_back({i, p, std::min(panels, p + int(chunk))});
  }
}

}  // namespace

void run_expert_ffn(ThreadPool& pool, const KernelTable& kernels, DType dtype, const std::vector<ExpertRows>& groups) {
  const LinearFn linear = kernels.linear[int(dtype)];
  std::vector<Task> tasks;

  // One phase: every (expert, panel chunk) task of the gate/up or of the down projection.
  auto run_phase = [&](bool down) {
    make_tasks(groups, down, pool.size(), tasks);
    pool.parallel_for((int)tasks.size(), [&](int t, int) {
      const Task& task = tasks[t];
      const ExpertRows& g = groups[task.group];
      LinearJob job = linear_job(down ? g.w->w2 : g.w->w13);
      job.p0 = task.p0;
      job.p1 = task.p1;
      job.n = g.n;
      if (down) {
        job.rows = dtype == DType::F32 ? reinterpret_cast<const void* const*>(g.h) : g.h_act;
        job.out = g.out;
        job.epilogue = Epilogue::Scaled;
        job.row_scale = g.scale;
      } else {
        job.rows = g.in;
        job.out = g.h;
        job.epilogue = Epilogue::SwiGLU;
      }
      linear(job);
    });
  };

  run_phase(false);

  if (dtype != DType::F32) {
    // Re-encode h for the down projection's dot-product instructions, one row per task.
    std::vector<std::pair<int, int>> rows;
    for (int i = 0; i < (int)groups.size(); ++i)
      for (int r = 0; r < groups[i].n; ++r) rows.emplace_back(i, r);
    pool.parallel_for((int)rows.size(), [&](int t, int) {
      const ExpertRows& g = groups[rows[t].first];
      int r = rows[t].second;
      make_activation_row(dtype, g.h[r], g.w->f_padded(), g.h_act[r]);
    });
  }

  run_phase(true);
}

}  // namespace moecap
