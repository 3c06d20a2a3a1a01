// A one-line progress bar on stderr for a long conversion (experts packed into an expert file):
// done/total, a bar, the rate and the ETA from the rate so far. Redrawn at most every 200 ms, on a
// terminal with \r; elsewhere one line per 10% so logs stay short.
#pragma once
#include <cstdint>
#include <string>

namespace moecap {

class ProgressBar {
 public:
  explicit ProgressBar(std::string label);
  // `bytes`: bytes produced so far (for the rate).
  void update(int done, int total, uint64_t bytes);

 private:
  std::string label_;
  int64_t start_ns_, last_ns_ = 0;
  int last_decile_ = -1;
  bool tty_;
};

}  // namespace moecap
