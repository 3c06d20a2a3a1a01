#!/usr/bin/env bash
# The decode kernels' compute rates, one thread, panels in L2 (bench/kernel_rate.cc), after
# `npx node-gyp build`: ROUNDS rounds over the dtypes in turn (so a busy moment of a shared machine
# hits them alike), each dtype's rates listed, best last. ISA: the addon's choice for this CPU
# (avx512 needs AVX-512 BF16/VNNI/VBMI), or named. `stream`: ~400 MB of panels per dtype instead,
# far beyond the last-level cache, in two processes at once, one per CPU (taskset), and their rates
# summed: the kernels' streaming rate from memory, to set beside the read bandwidth. The objects
# come from build/Release, or from MOECAP_BUILD_DIR (another build, to compare two).
# KERNEL_RATE_CODES=normal: fp8 codes of Gaussian weights instead of uniform ones (bench/kernel_rate.cc).
#   bash bench/kernel_rate.sh [ROUNDS] [avx512|avx2] [stream]
set -euo pipefail
cd "$(dirname "$0")/.."
# Unnamed: the set the addon's kernel selection picks for this CPU.
isa=${2:-$(node -p "require('./build/Release/moecap.node').systemInfo().bestIsa")}
build=${MOECAP_BUILD_DIR:-build/Release}
obj=$build/obj.target/moecap_isa_$isa/native/core/kernels/$isa
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
case $isa in
  avx512) objs=("$obj"/linear_avx512_{fp8,bf16,int8,int4,mxfp4}.o) ;;
  # The AVX2 tiles ask cpu_features (the addon's own object) whether to fetch far ahead.
  avx2) objs=("$obj"/linear_avx2_{fp8,bf16,quant}.o "$build"/obj.target/moecap/native/core/kernels/cpu_features.o) ;;
  *) echo "kernel_rate.sh: no x86 kernel set '$isa' (avx512 or avx2)" >&2; exit 2 ;;
esac
echo "isa $isa"
g++ -O2 -std=c++17 -DKERNEL_RATE_ISA="$isa" -I native/core bench/kernel_rate.cc "${objs[@]}" -o "$out/kernel_rate"
rounds=${1:-6}
if [[ ${3:-} == stream ]]; then
  read_bw() {
    node -e "require('./build/Release/moecap.node').calibrate({ threads: 2, readBytes: 1 << 30, repeats: 5, compute: false })
      .then((r) => console.log('read bandwidth (1 GiB, 2 threads) $1: median %s, max %s GB/s', (r.readBandwidth.median / 1e9).toFixed(1), (r.readBandwidth.max / 1e9).toFixed(1)))"
  }
  read_bw before
  # ~400 MB each: fp8 6000 panels, bf16 3000, int8 6000, int4 12000, mxfp4 12000.
  for ((i = 0; i < rounds; i++)); do
    for spec in fp8:6000 bf16:3000 int8:6000 int4:12000 mxfp4:12000; do
      taskset -c 0 "$out/kernel_rate" "${spec%%:*}" "${spec##*:}" 4 > "$out/a" &
      taskset -c 1 "$out/kernel_rate" "${spec%%:*}" "${spec##*:}" 4 > "$out/b"
      wait
      cat "$out/a" "$out/b" | awk -v d="${spec%%:*}" '{s += $4} END {printf "%s %.1f\n", d, s}'
    done
  done | awk '{r[$1] = r[$1] " " $2} END {for (d in r) printf "%-6s 2 processes, GB/s summed:%s\n", d, r[d]}'
  read_bw after
  exit 0
fi
# ~1.1 MB of panels each (K = 2048): fp8 16 panels, bf16 8, int8 16, int4 32, mxfp4 32.
for ((i = 0; i < rounds; i++)); do
  for spec in fp8:16 bf16:8 int8:16 int4:32 mxfp4:32; do "$out/kernel_rate" "${spec%%:*}" "${spec##*:}" 2000; done
done | awk '{r[$1] = r[$1] " " $4; mb[$1] = $2} END {for (d in r) {n = split(r[d], v, " "); m = 0; for (i = 1; i <= n; i++) if (v[i] + 0 > m) m = v[i] + 0; printf "%-6s %s MB  GB/s:%s  best %.1f\n", d, mb[d], r[d], m}}'
