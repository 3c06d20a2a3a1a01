#include "offload/progress_bar.h"

#if defined(_WIN32)
#include <io.h>
#define MOECAP_STDERR_IS_TTY() (_isatty(2) != 0)
#else
#include <unistd.h>
#define MOECAP_STDERR_IS_TTY() (::isatty(2) == 1)
#endif

#include <cstdio>

#include "runtime/clock.h"

namespace moecap {

ProgressBar::ProgressBar(std::string label)
    : label_(std::move(label)), start_ns_(now_ns()), tty_(MOECAP_STDERR_IS_TTY()) {}

void ProgressBar::update(int done, int total, uint64_t bytes) {
  const int64_t now = now_ns();
  const bool last = done >= total;
  const int decile = total > 0 ? done * 10 / total : 10;
  if (tty_ ? (!last && now - last_ns_ < 200000000) : (decile == last_decile_ && !last)) return;
  last_ns_ = now;
  last_decile_ = decile;
  const double s = double(now - start_ns_) * 1e-9;
  const double rate = s > 0 ? double(bytes) / s : 0;  // measured over this conversion so far
  const double eta = done > 0 ? s * double(total - done) / double(done) : 0;
  constexpr int kWidth = 24;
  const int fill = total > 0 ? done * kWidth / total : kWidth;
  char bar[kWidth + 1];
  for (int i = 0; i < kWidth; ++i) bar[i] = i < fill ? '#' : '.';
  bar[kWidth] = 0;
  std::fprintf(stderr, "%s%s [%s] %d/%d experts, %.0f MB/s packed, %s %.0f s%s", tty_ ? "\r" : "", label_.c_str(), bar,
               done, total, rate / 1e6, last ? "took" : "ETA", last ? s : eta, tty_ && !last ? "" : "\n");
  std::fflush(stderr);
}

}  // namespace moecap
