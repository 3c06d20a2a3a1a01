#!/usr/bin/env bash
# Builds the core (without counters; x86 kernels only) + offload_stress.cc under ASan and TSan and runs both.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${TMPDIR:-/tmp}/moecap-offload-san
mkdir -p "$out"
src=$(python3 -c "
import re; s = open('binding.gyp').read()
print(' '.join(x for x in re.findall(r'\"(native/core/[^\"]+\.cc)\"', s) if 'counters' not in x and '/kernels/neon/' not in x))")
isa="-mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512bf16 -mavx512vnni -mavx512vbmi -mavx2 -mfma -mf16c"
for san in address thread; do
  g++ -std=c++17 -O1 -g -fsanitize=$san -fno-omit-frame-pointer -Inative/core $isa $src test/native/offload_stress.cc \
    -o "$out/stress-$san" -pthread
  "$out/stress-$san"
done
