#!/usr/bin/env bash
# Fuzzes native parsers with libFuzzer (clang; Debian: apt-get install clang-14 libclang-rt-14-dev)
# under ASan + UBSan, each target for the seconds given:
#   expert_file_header: test/fuzz/expert_file_header_fuzz.cc, seeded from
#     test/fuzz/corpus/expert_file_header/ (regenerate with node test/fuzz/make_corpus.js);
#   jsonl_trace: test/fuzz/jsonl_trace_fuzz.cc (the core's JSONL trace reader), seeded from
#     test/fuzz/corpus/trace_spill/ (the files, behind the target's mode byte).
# New inputs go to a scratch corpus, never into the repository; a crash leaves its input in $out and fails.
# Usage: scripts/fuzz.sh [seconds]   (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
cxx=$(command -v clang++ || command -v clang++-14 || true)
[ -n "$cxx" ] || { echo "fuzz: clang++ not found (apt-get install clang-14 libclang-rt-14-dev)" >&2; exit 1; }
out=${TMPDIR:-/tmp}/moecap-fuzz
flags=(-std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Inative/core -pthread)
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1

# $1 target, $2 seed folder, then the sources.
fuzz() {
  local name=$1 seeds=$2
  shift 2
  mkdir -p "$out/$name/corpus"
  local t0
  t0=$(date +%s)
  "$cxx" "${flags[@]}" "$@" "test/fuzz/${name}_fuzz.cc" -o "$out/${name}_fuzz"
  echo "== fuzz $name: built in $(( $(date +%s) - t0 )) s"
  (cd "$out/$name" && "$out/${name}_fuzz" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$out/$name/" corpus "$seeds")
}

fuzz expert_file_header "$PWD/test/fuzz/corpus/expert_file_header" \
  native/core/offload/expert_file.cc native/core/offload/xxhash64.cc native/core/experts/expert_weights.cc \
  native/core/weights/packed_matrix.cc native/core/weights/block_quant.cc native/core/weights/dtype.cc \
  native/core/weights/weight_source.cc native/core/runtime/thread_pool.cc native/core/runtime/environment.cc \
  native/core/kernels/cpu_features.cc native/core/runtime/file_io.cc

# Mode byte 0xfd: the model's 16 experts given, k from the first line, lines up to 512 bytes.
seeds="$out/jsonl_trace/seeds"
mkdir -p "$seeds"
for f in test/fuzz/corpus/trace_spill/*; do
  { printf '\xfd'; cat "$f"; } > "$seeds/$(basename "$f")"
done
fuzz jsonl_trace "$seeds" native/core/trace/canonical_trace_line.cc native/core/trace/trace_spill_writer.cc \
  native/core/trace/jsonl_trace_reader.cc native/core/runtime/file_io.cc
