#!/usr/bin/env bash
# The AVX-512 decode kernels' compute rates, one thread, panels in L2 (bench/kernel_rate.cc), after
# `npx node-gyp build`: ROUNDS rounds over the dtypes in turn (so a busy moment of a shared machine
# hits them alike), each dtype's rates listed, best last. Needs an AVX-512 BF16/VNNI/VBMI CPU.
#   bash bench/kernel_rate.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
obj=build/Release/obj.target/moecap_isa_avx512/native/core/kernels/avx512
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
g++ -O2 -std=c++17 -I native/core bench/kernel_rate.cc "$obj"/linear_avx512_{fp8,bf16,int8,int4,mxfp4}.o -o "$out/kernel_rate"
rounds=${1:-6}
# ~1.1 MB of panels each (K = 2048): fp8 16 panels, bf16 8, int8 16, int4 32, mxfp4 32.
for ((i = 0; i < rounds; i++)); do
  for spec in fp8:16 bf16:8 int8:16 int4:32 mxfp4:32; do "$out/kernel_rate" "${spec%%:*}" "${spec##*:}" 2000; done
done | awk '{r[$1] = r[$1] " " $4; mb[$1] = $2} END {for (d in r) {n = split(r[d], v, " "); m = 0; for (i = 1; i <= n; i++) if (v[i] + 0 > m) m = v[i] + 0; printf "%-6s %s MB  GB/s:%s  best %.1f\n", d, mb[d], r[d], m}}'
