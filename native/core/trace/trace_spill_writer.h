// The checks of a routing trace's lines and the per-layer spill files they fill: layer{l}.bin in a
// folder, each the layer's ids in token order as uint8/uint16 (when the shape's experts allow it:
// less to write) or int32, native byte order (lib/interop/trace_spill.ts reads them back). Every
// check of a trace line lives here, whichever parser read the line, with the messages
// `trace 'FILE' line N field 'F': ...` (ERR_CORRUPT_FILE).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace moecap {

struct TraceShapeHint {
  int64_t experts = 0;  // ids must be below it; 0: unknown (ids must fit an int32)
  int top_k = 0;        // ids per line; 0: taken from the first line
};

// One line's values as the checks see them: numbers as doubles (NaN: not a number at all).
// `json`: null for a canonical line (its values are integers and printed as such); else the JSON
// text of layer, token, experts and each id, for the messages (the general JSON path supplies it).
struct TraceLineValues {
  int64_t line = 0;
  double layer = 0, token = 0;
  const double* ids = nullptr;  // null: "experts" is not an array
  size_t n = 0;
  const std::vector<std::string>* json = nullptr;
};

struct TraceSpillSummary {
  int top_k = 0;
  std::vector<int64_t> tokens;  // per layer
  int64_t max_expert = 0;       // max id + 1
  int id_bytes = 4;
};

class TraceSpillWriter {
 public:
  // `file`: the trace (named in messages); `dir`: an existing folder for the layer files.
  TraceSpillWriter(std::string file, std::string dir, TraceShapeHint shape);
  ~TraceSpillWriter();
  TraceSpillWriter(const TraceSpillWriter&) = delete;
  TraceSpillWriter& operator=(const TraceSpillWriter&) = delete;

  // Checks the line and appends its ids to its layer (throws ERR_CORRUPT_FILE naming line and field).
  void record(const TraceLineValues& v);
  // Writes what is buffered, closes the files and checks the layers are 0..L-1, each with tokens.
  TraceSpillSummary finish();
  // Closes the files (also done by the destructor); the folder is the caller's to remove.
  void close();

  const std::string& file() const { return file_; }

 private:
  struct Layer {
    int fd = -1;
    std::vector<uint8_t> buf;
    size_t fill = 0;
    uint64_t written = 0;
    double last_token = -1;
    int64_t tokens = 0;
  };
  [[noreturn]] void fail(int64_t line, const char* field, const std::string& msg) const;
  void check_head(const TraceLineValues& v) const;
  void check_ids(const TraceLineValues& v);
  bool has_duplicate(const double* ids, size_t n);
  Layer& layer(int l);
  void store(Layer& L, const double* ids);
  void flush(Layer& L);

  std::string file_, dir_;
  int64_t experts_;
  int k_;
  int id_bytes_;
  std::vector<Layer> layers_;
  int64_t max_expert_ = 0;
  std::vector<double> sorted_;  // the distinct check of a long line
};

}  // namespace moecap
