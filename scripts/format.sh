#!/usr/bin/env bash
# Formats the tree: clang-format-14 on the C++/CUDA sources, Prettier on TS/JS/JSON/YAML.
#   scripts/format.sh           rewrite files in place (developers; also the post-merge re-run)
#   scripts/format.sh --check   list unformatted files and exit non-zero (CI)
# The file sets live here only; .clang-format and .prettierrc.json hold the styles.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=write
case "${1:-}" in
  --check) mode=check ;;
  "") ;;
  *) echo "usage: scripts/format.sh [--check]" >&2; exit 2 ;;
esac

# clang-format 14 is the version pinned for the tree; other versions format differently.
CLANG_FORMAT=${CLANG_FORMAT:-$(command -v clang-format-14 || true)}
if [ -z "$CLANG_FORMAT" ]; then
  echo "format.sh: clang-format-14 not found (apt-get install -y clang-format-14, or set CLANG_FORMAT)" >&2
  exit 2
fi

# Tracked and new (not ignored) files, so a fresh merge is covered before it is committed.
mapfile -t cxx < <(git ls-files --cached --others --exclude-standard -- \
  'native/*.h' 'native/*.cc' 'scripts/*.c' 'mpi/*.h' 'mpi/*.cc' 'cuda/*.h' 'cuda/*.cc' 'cuda/*.cu' 'cuda/*.c' 'test/native/*.cc' 'test/fuzz/*.cc' 'test/windows/*.cc' |
  while read -r f; do [ -f "$f" ] && echo "$f"; done)

status=0
if [ "$mode" = check ]; then
  "$CLANG_FORMAT" --dry-run --Werror "${cxx[@]}" || status=1
  npx --no-install prettier --check --log-level warn . || status=1
else
  "$CLANG_FORMAT" -i "${cxx[@]}"
  npx --no-install prettier --write --log-level warn .
fi
exit $status
