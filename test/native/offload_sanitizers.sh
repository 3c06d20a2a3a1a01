#!/usr/bin/env bash
# Builds the core (without counters; x86 kernels only) + offload_stress.cc under ASan and TSan and runs both.
# Each sanitizer's objects compile one per core at a time (one g++ over every file took ~3.5 min per
# sanitizer on CI's 2 cores); a failed compile stops the script with the compiler's message.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${TMPDIR:-/tmp}/moecap-offload-san
mkdir -p "$out"
src=$(python3 -c "
import re; s = open('binding.gyp').read()
print(' '.join(x for x in re.findall(r'\"(native/core/[^\"]+\.cc)\"', s) if 'counters' not in x and '/kernels/neon/' not in x))")
# Each ISA's kernels get that ISA's flags and nothing else does, as in binding.gyp: with the AVX-512
# flags on every file the compiler put AVX-512 instructions into common code, and the binary died
# with SIGILL on an AVX2-only CPU before the core's dispatch could choose.
isa_flags() {
  python3 -c "
import re, sys; s = open('binding.gyp').read()
print(' '.join(re.findall(r'\"(-[^\"]+)\"', re.search(r'\"' + sys.argv[1] + r'\": \[([^\]]*)\]', s).group(1))))" "$1"
}
avx512=$(isa_flags avx512_flags)
avx2=$(isa_flags avx2_flags)
jobs=$(nproc 2>/dev/null || echo 2)
for san in address thread; do
  obj=$out/obj-$san
  rm -rf "$obj" && mkdir -p "$obj"
  flags="-std=c++17 -O1 -g -fsanitize=$san -fno-omit-frame-pointer -Inative/core"
  # One object per source, named after its path (two folders may hold files of the same name).
  printf '%s\n' $src test/native/offload_stress.cc |
    xargs -P "$jobs" -I{} sh -c '
      case "$2" in */kernels/avx512/*) isa="$4" ;; */kernels/avx2/*) isa="$5" ;; *) isa="" ;; esac
      g++ $1 $isa -c "$2" -o "$3/$(echo "$2" | tr / _).o"' _ "$flags" {} "$obj" "$avx512" "$avx2"
  g++ -fsanitize=$san "$obj"/*.o -o "$out/stress-$san" -pthread
  "$out/stress-$san"
done
