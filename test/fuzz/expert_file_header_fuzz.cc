// libFuzzer target: the expert file's header checks (expert_file_head_bytes and
// validate_expert_file_head, pure functions over the file's first bytes) on hostile bytes. Any
// input must end in a moecap::Error or a valid layout; a crash, a sanitizer report or any other
// exception (bad_alloc from a size read off the file, …) is a finding.
//
// Input: one mode byte, then the file's first bytes.
//   bit 0: re-seal the header checksum first, so the checks behind it are reached;
//   bit 1: take the layer's shape from the header's own fields (bounded like validated options),
//          so the packing and table checks are reached for any dtype and shape;
//   bits 2-7: the file is (that × 64 KiB) bytes longer than the bytes given (expert extents).
// Otherwise the layer is the seed corpus's: f32, hidden 16, intermediate 8, 6 experts, seed 3.
#include <cstdint>
#include <cstring>
#include <vector>

#include "error.h"
#include "offload/expert_file.h"
#include "offload/xxhash64.h"
#include "weights/weight_source.h"

namespace {

constexpr size_t kHeader = 88, kEntry = 24;

int32_t i32_at(const std::vector<uint8_t>& b, size_t off) {
  int32_t v;
  std::memcpy(&v, b.data() + off, 4);
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  std::vector<uint8_t> file(data + 1, data + size);
  moecap::ExpertFileShape shape;
  shape.dtype = moecap::DType::F32;
  shape.hidden = 16;
  shape.intermediate = 8;
  shape.experts = 6;
  shape.fingerprint = moecap::SeededWeights(3).fingerprint();
  if ((mode & 2) && file.size() >= kHeader) {
    uint32_t dtype;
    std::memcpy(&dtype, file.data() + 12, 4);
    const int32_t H = i32_at(file, 16), F = i32_at(file, 20), E = i32_at(file, 24);
    if (dtype > 3 || H < 1 || H > 65536 || F < 1 || F > 65536 || E < 1 || E > 4096) return 0;
    shape.dtype = moecap::DType(dtype);
    shape.hidden = H;
    shape.intermediate = F;
    shape.experts = E;
    std::memcpy(&shape.fingerprint, file.data() + 72, 8);
  }
  const size_t head = kHeader + kEntry * size_t(shape.experts) + 8;
  if ((mode & 1) && file.size() >= head) {
    const uint64_t sum = moecap::xxhash64(file.data(), head - 8);
    std::memcpy(file.data() + head - 8, &sum, 8);
  }
  const uint64_t file_bytes = file.size() + uint64_t(mode >> 2) * 65536;
  try {
    const size_t need = moecap::expert_file_head_bytes(file.data(), file.size(), shape, file_bytes, "fuzz");
    if (need != head) __builtin_trap();  // the head size follows from the layer's expert count alone
    const moecap::ExpertFileLayout L =
        moecap::validate_expert_file_head(file.data(), file.size(), shape, file_bytes, "fuzz");
    // A layout that validates describes experts inside the file, past the header.
    for (const auto& x : L.entries)
      if (x.offset < head || x.offset > file_bytes || x.size > file_bytes - x.offset || x.size != L.expert_bytes)
        __builtin_trap();
  } catch (const moecap::Error&) {
  }
  return 0;
}
