// One layer's block of expert ids in a trace file (a binary trace's layer, or a spill file the
// core wrote), read with positioned reads of that block only and widened to int32. A binary
// trace's block is checked as it is read: its xxhash64 against the layer table, each id in
// [0, experts), a token's k ids distinct; each failure an ERR_CORRUPT_FILE naming the file, the
// layer and the field. Done in the core: the JS loop it replaces held the JS thread 36–83 ms per
// million-token layer of k = 8 (this: 16–23 ms, the copy into the JS array included).
#pragma once
#include <cstdint>
#include <string>

namespace moecap {

struct TraceIdBlock {
  std::string file;
  uint64_t offset = 0;  // the block's first byte
  int64_t tokens = 0;
  int top_k = 1;
  int id_bytes = 1;  // 1, 2 or 4, little-endian
  int layer = 0;     // named in errors
  // The checks of a binary trace; experts == 0: none (a spill file, written from checked lines).
  int experts = 0;
  uint64_t checksum = 0;  // xxhash64 of the block's bytes
};

// The block's ids: tokens * top_k, or Error(Range) for an impossible block.
uint64_t trace_id_count(const TraceIdBlock& b);

// Reads the block's ids into `out` (room for trace_id_count(b)): ERR_IO when the file cannot be
// read, ERR_CORRUPT_FILE as above (`out` then holds no meaning).
void read_trace_ids(const TraceIdBlock& b, int32_t* out);

}  // namespace moecap
