#!/usr/bin/env bash
# Fuzzes the expert-file header checks with libFuzzer (clang; Debian: apt-get install clang-14
# libclang-rt-14-dev) under ASan + UBSan: test/fuzz/expert_file_header_fuzz.cc, seeded from
# test/fuzz/corpus/expert_file_header/ (regenerate with node test/fuzz/make_corpus.js). New inputs
# go to a scratch corpus, never into the repository; a crash leaves its input in $out and fails.
# Usage: scripts/fuzz.sh [seconds]   (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
cxx=$(command -v clang++ || command -v clang++-14 || true)
[ -n "$cxx" ] || { echo "fuzz: clang++ not found (apt-get install clang-14 libclang-rt-14-dev)" >&2; exit 1; }
out=${TMPDIR:-/tmp}/moecap-fuzz
mkdir -p "$out/corpus"
src="native/core/offload/expert_file.cc native/core/offload/xxhash64.cc native/core/experts/expert_weights.cc
     native/core/weights/packed_matrix.cc native/core/weights/block_quant.cc native/core/weights/dtype.cc
     native/core/weights/weight_source.cc native/core/runtime/thread_pool.cc native/core/runtime/environment.cc
     native/core/kernels/cpu_features.cc native/core/runtime/file_io.cc"
t0=$(date +%s)
# shellcheck disable=SC2086
"$cxx" -std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -Inative/core $src test/fuzz/expert_file_header_fuzz.cc -o "$out/expert_file_header_fuzz" -pthread
echo "== fuzz: built in $(( $(date +%s) - t0 )) s"
cd "$out"
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
  ./expert_file_header_fuzz -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$out/" corpus "$OLDPWD/test/fuzz/corpus/expert_file_header"
