#!/usr/bin/env bash
# The packed tarball installs on linux-arm64 with no compiler: pack, install into an empty folder
# (the host's npm fetches the dependencies, all plain JS, with --ignore-scripts), then run the
# package's install script (node-gyp-build) and a forward pass with the arm64 node under
# qemu-aarch64, PREBUILDS_ONLY=1 and no compiler reachable (CC=CXX=false, PATH without one).
# Needs prebuilds/linux-arm64 (scripts/build-arm64.sh) and dist/ (tsc).
set -euo pipefail
cd "$(dirname "$0")/.."
NODE_DIR="$(bash scripts/arm64-node.sh)"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
TARBALL="$TMP/$(npm pack --ignore-scripts --silent --pack-destination "$TMP" | tail -1)"
tar -tzf "$TARBALL" > "$TMP/contents"
grep -q '^package/prebuilds/linux-arm64/moecap.node$' "$TMP/contents" || { echo "no prebuilds/linux-arm64 in $TARBALL"; exit 1; }
mkdir "$TMP/app" && echo '{"name":"app","version":"1.0.0","private":true}' > "$TMP/app/package.json"
( cd "$TMP/app" && npm install --ignore-scripts --no-audit --no-fund --silent "$TARBALL" )
# A PATH holding nothing but an arm64 `node` (qemu-aarch64 in front of the arm64 binary, so the
# install script's child processes run arm64 too) and the installed packages' bins, as npm sets it.
mkdir "$TMP/bin"
printf '#!/bin/sh\nexec %s -L /usr/aarch64-linux-gnu -cpu max %s "$@"\n' "$(command -v qemu-aarch64)" "$NODE_DIR/bin/node" > "$TMP/bin/node"
chmod +x "$TMP/bin/node"
run_arm64() {
  env -i PATH="$TMP/bin:$TMP/app/node_modules/.bin" HOME="$TMP" CC=false CXX=false PREBUILDS_ONLY=1 "$TMP/bin/node" "$@"
}
( cd "$TMP/app/node_modules/moecap" && run_arm64 ../node-gyp-build/bin.js )
test ! -e "$TMP/app/node_modules/moecap/build" || { echo "install script compiled from source"; exit 1; }
( cd "$TMP/app" && run_arm64 -e "
  const m = require('moecap');
  m.createMoeLayer({ hidden: 32, intermediate: 16, experts: 4, topK: 2, weights: { seed: 3 } })
    .then((l) => l.forward(new Float32Array(64).fill(0.5)).then((r) => {
      console.log(JSON.stringify({ arch: process.arch, n: r.output.length, isa: r.stats.isa }));
      if (r.stats.isa !== 'neon' || r.output.length !== 64) process.exitCode = 1;
      l.close();
    }));" )
echo "tarball $(basename "$TARBALL"): $(stat -c %s "$TARBALL") bytes; installed and ran on linux-arm64 (qemu) from the prebuild"
