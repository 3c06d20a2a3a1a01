#!/usr/bin/env bash
# Runs test/arm64/correctness.js on the cross-built arm64 addon (scripts/build-arm64.sh) under
# qemu-aarch64 with the arm64 node, three times: a CPU with dotprod, i8mm and bf16 (-cpu max: the
# smmla and bfdot kernels), one with dotprod only (cortex-a76: the sdot kernels, bf16 widened) and
# one with none of them (cortex-a53: the widening fallbacks). Emulated, so the run times say
# nothing about arm64 speed.
set -euo pipefail
cd "$(dirname "$0")/.."
NODE_DIR="$(bash scripts/arm64-node.sh)"
ADDON="${1:-build-arm64/Release/moecap.node}"
status=0
for cpu in "max:dotprod i8mm bf16" "cortex-a76:dotprod" "cortex-a53:"; do
  model="${cpu%%:*}" features="${cpu#*:}"
  echo "== qemu-aarch64 -cpu $model (features: ${features:-none of dotprod, i8mm, bf16})"
  MOECAP_TEST_CPU_FEATURES="$features" qemu-aarch64 -L /usr/aarch64-linux-gnu -cpu "$model" \
    "$NODE_DIR/bin/node" test/arm64/correctness.js "$ADDON" || status=1
done
exit $status
