#!/usr/bin/env bash
# Cross-compiles the native core for win32-x64 with mingw-w64 (GCC, posix threads) on a Linux host,
# with test/windows/core_check.cc into build-windows/core_check.exe, and with the binding into the
# addon build-windows/Release/moecap.node (both static: they need no mingw DLLs), for
# scripts/test-windows.sh to run under wine. The sources and per-ISA flags come from binding.gyp
# (the addon's core sources, and the moecap_isa_avx512 / moecap_isa_avx2 targets), so this build
# compiles what the addon compiles. mingw-w64 is GCC, not MSVC: the MSVC build (binding.gyp's
# msvs_settings) is not exercised here. Incremental (make, with header dependencies).
# Exit status 0 with a "skipped" line when the cross compiler is not installed.
set -euo pipefail
cd "$(dirname "$0")/.."
CXX="${MINGW_CXX:-x86_64-w64-mingw32-g++-posix}"
if ! command -v "$CXX" >/dev/null; then
  echo "build-windows: skipped: $CXX not found (Debian: apt-get install g++-mingw-w64-x86-64-posix)"
  exit 0
fi
OUT_DIR="${OUT:-build-windows}"
mkdir -p "$OUT_DIR"
# GCC on 64-bit Windows does not align the stack beyond 16 bytes (GCC bug 54412), so its aligned
# AVX spills and aligned stores to over-aligned locals could fault: the assembler turns aligned
# vector moves into unaligned ones (same speed on aligned data). MSVC aligns its own frames.
NAA_INCLUDE="$(node -p "require('node-addon-api').include_dir")"
NAPI_HEADERS="$(node -p "require('path').dirname(require.resolve('node-api-headers/package.json'))" 2>/dev/null || true)"
python3 - "$OUT_DIR" "$CXX" "$NAA_INCLUDE" "${NAPI_HEADERS:-missing}" <<'EOF'
import ast, re, sys
out, cxx, naa_include, napi_headers = sys.argv[1:5]
text = re.sub(r'^\s*#.*$', '', open('binding.gyp').read(), flags=re.M)
gyp = ast.literal_eval(text)
var = gyp['variables']
def targets():
    for t in gyp['targets']: yield t
    for cond in gyp.get('conditions', []):
        for branch in cond[1:]:
            if isinstance(branch, dict):
                for t in branch.get('targets', []): yield t
by_name = {t['target_name']: t for t in targets()}
# The defines binding.gyp gives MSVC builds, so <windows.h> is seen the same way.
base = [f for f in var['core_flags'] if f != '-fPIC'] + ['-DNOMINMAX', '-DWIN32_LEAN_AND_MEAN', '-Wa,-muse-unaligned-vector-move']
units = [(s, base) for s in by_name['moecap']['sources'] if s.startswith('native/core/')]
units += [(s, base + var['avx512_flags']) for s in by_name['moecap_isa_avx512']['sources']]
units += [(s, base + var['avx2_flags']) for s in by_name['moecap_isa_avx2']['sources']]
# The addon's binding files: the moecap target's defines, N-API 8, node-addon-api's and
# node-api-headers' include folders.
addon = by_name['moecap']
napi = ['-DNAPI_VERSION=8', '-DBUILDING_NODE_EXTENSION'] + ['-D' + d for d in addon['defines']]
napi += ['-I' + naa_include, '-I' + napi_headers + '/include']
binding = [(s, base + napi) for s in addon['sources'] if s.startswith('native/binding/')]
rules = []
def compile(units):
    objs = []
    for src, flags in units:
        obj = f"{out}/obj/{src[:-3]}.o"
        objs.append(obj)
        rules.append(f"{obj}: {src}\n\t@mkdir -p $(@D)\n\t$(CXX) {' '.join(flags)} -Inative/core -Icuda -MMD -MP -c $< -o $@\n")
    return objs
core = compile(units)
check = compile([('test/windows/core_check.cc', base)])
glue = compile(binding)
mk = [f"CXX := {cxx}",
      f"{out}/core_check.exe: {' '.join(core + check)}", "\t$(CXX) -static -O3 -o $@ $^ -lpsapi", "",
      # node.exe exports the N-API: an import library from node-api-headers' .def file.
      f"{out}/node.lib: {napi_headers}/def/node_api.def", "\tx86_64-w64-mingw32-dlltool -d $< -l $@ -D node.exe", "",
      f"{out}/Release/moecap.node: {' '.join(core + glue)} {out}/node.lib",
      "\t@mkdir -p $(@D)\n\t$(CXX) -shared -static -O3 -s -o $@ $^ -lpsapi", ""]
open(f"{out}/Makefile", 'w').write('\n'.join(mk + rules + ["-include $(shell find " + out + "/obj -name '*.d' 2>/dev/null)", ""]))
EOF
# The addon too, where node-api-headers (a dev dependency, through cmake-js) is installed.
targets=("$OUT_DIR/core_check.exe")
if [ -n "$NAPI_HEADERS" ]; then targets+=("$OUT_DIR/Release/moecap.node"); else
  echo "build-windows: the addon is not built: node-api-headers is not installed (npm ci installs it)"; fi
t0=$(date +%s)
make -s -f "$OUT_DIR/Makefile" -j "${JOBS:-2}" "${targets[@]}"
echo "build-windows: ${targets[*]} ($CXX, $(($(date +%s) - t0)) s)"
