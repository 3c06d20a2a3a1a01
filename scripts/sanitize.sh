#!/usr/bin/env bash
# The addon under AddressSanitizer + UndefinedBehaviorSanitizer, driven by the native-heavy jest
# suites; any finding fails (UBSan halts on the first error, ASan always does). Then the offload
# stress test under ASan and TSan (test/native/offload_sanitizers.sh) and the cache replay's C++
# test (test/native/stack_replay_test.cc: stack walks against table replays) under ASan + UBSan.
#
# Build: node-gyp has no build-folder option, so the sanitized addon is built from a second
# project folder, .tmp/sanitize/ (git-ignored), holding binding.gyp and a link to native/: its
# build/ never touches the regular build/Release, and make rebuilds only what changed. The
# flags come in through CXXFLAGS/LDFLAGS, which gyp's Makefiles add to every target. The folder
# sits inside the package so binding.gyp's require('node-addon-api') resolves. The tests load the
# sanitized binary through MOECAP_ADDON_PATH (lib/native/loader.ts).
#
# Run: node with libasan preloaded (it must come first in the process); detect_leaks=0 because
# V8 and node keep allocations to exit, which LeakSanitizer reports as leaks.
# Usage: scripts/sanitize.sh [jest test paths…]   (default: the suites below)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$root/.tmp/sanitize
mkdir -p "$work"
ln -sfn "$root/native" "$work/native"
cp binding.gyp "$work/binding.gyp"

# -O1 (after the targets' -O3 on the command line, so it wins): the build takes half the time.
san="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize=vptr"
echo "== sanitize: building the addon with $san in $work"
t0=$(date +%s)
# npx: node-gyp then takes npm's configuration (e.g. nodedir) like the regular build does.
(cd "$work" && export CXXFLAGS="$san" LDFLAGS="-fsanitize=address,undefined" &&
  npx node-gyp configure >build.log 2>&1 && npx node-gyp build -j "$(nproc)" >>build.log 2>&1) ||
  { tail -50 "$work/build.log"; echo "sanitize: the build failed (log: $work/build.log)" >&2; exit 1; }
addon=$work/build/Release/moecap.node
echo "== sanitize: built in $(( $(date +%s) - t0 )) s"
npx tsc -p tsconfig.json  # the tests and their child processes load dist/
# ldd's whole output first: under pipefail, `ldd | grep -q` fails whenever grep exits before ldd has
# written its last line (ldd dies of SIGPIPE; 135 of 1000 runs on a loaded 2-core machine).
linked=$(ldd "$addon")
grep -q libasan <<<"$linked" || { echo "sanitize: $addon is not linked with ASan" >&2; exit 1; }

suites=("$@")
if [ ${#suites[@]} -eq 0 ]; then
  suites=(test/layer/layer.test.ts test/kernels/kernels_dtypes.test.ts test/offload/offload.test.ts test/offload/offload_files.test.ts
          test/offload/offload_paths.test.ts test/layer/validation.test.ts test/kernels/router.test.ts test/layer/quant_range.test.ts
          test/layer/size_limits.test.ts test/calibrate/calibrate_native.test.ts test/kernels/kernels_mx_fp8.test.ts
          test/interop/trace_binary.test.ts)
fi
t0=$(date +%s)
# test/native/ubsan.supp lists known findings in code another change owns, each with its reason.
# vptr is off (node's own objects are not built with -fsanitize=vptr, so type checks across the
# N-API boundary would only report node itself).
MOECAP_ADDON_PATH=$addon \
LD_PRELOAD="$(g++ -print-file-name=libasan.so)" \
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:allocator_may_return_null=1 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:suppressions=$root/test/native/ubsan.supp \
  node node_modules/.bin/jest --runInBand "${suites[@]}"
echo "== sanitize: jest suites in $(( $(date +%s) - t0 )) s"

if [ $# -eq 0 ]; then
  t0=$(date +%s)
  bash test/native/offload_sanitizers.sh
  echo "== sanitize: offload stress (ASan, TSan) in $(( $(date +%s) - t0 )) s"
  t0=$(date +%s)
  g++ -std=c++17 $san -fno-sanitize-recover=all -Inative/core -o "$work/stack_replay_test" test/native/stack_replay_test.cc \
    native/core/offload/stack_replay.cc native/core/offload/belady_replay.cc native/core/offload/stream_replay.cc native/core/offload/cache_replay.cc \
    native/core/offload/slot_table.cc -pthread
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "$work/stack_replay_test"
  echo "== sanitize: cache replay test (ASan + UBSan) in $(( $(date +%s) - t0 )) s"
fi
