#!/usr/bin/env bash
# GPU check of the CUDA backend, for a machine with an NVIDIA GPU (H100/H200 in < 6 min):
#   1. build cuda/ for this GPU only (sm from nvidia-smi) into build-gpu-check/ — or, when nvcc is
#      missing, use a prebuilt build-cuda/gpu_selftest (carried from `npm run build:cuda`);
#   2. run gpu_selftest: every kernel vs the CPU core, expert parallelism in one process (two ranks'
#      layers, bitwise vs the single-process layer), then timings vs measured ceilings;
#   3. the NCCL exchange self-test (nccl_selftest, one rank per GPU) when libnccl.so.2 is found,
#      "NCCL not installed" otherwise;
#   4. when Node and the addon are present, check that backendInfo('auto') picks CUDA, run a
#      release's stored fp8/mxfp4 codes through the addon's CUDA layer against the CPU
#      (scripts/gpu-checkpoint-check.js), and the main job on the GPU (moecap run --backend cuda);
#   5. when mpirun is found too, expert parallelism on GPU ranks: 2 ranks under mpirun (rank r on
#      GPU r mod the GPUs; one GPU shared by both here), f32, bf16 (tensor cores) and int8 with
#      replicas, each compared bitwise with the single-process CUDA layer (test/ep/mpi_rank.js);
#      then the same three with the rows over NCCL (--ep-transport nccl) where there are 2 GPUs or
#      more (NCCL refuses two ranks of one communicator on one device);
#   6. print a short table last.
# Usage: scripts/gpu-check.sh [--prebuilt] [--sanitize] [--quick] [--no-bench]
#   --prebuilt  use build-cuda/gpu_selftest as is (no build; carry build-cuda/ from `npm run build:cuda`)
#   --sanitize  first run the checks (no bench) under compute-sanitizer memcheck
# A GPU machine without Node (the lent H200 had none): carry a Node binary (`xz -c "$(command -v node)"`,
# 24 MB), build/Release/moecap.node, dist/ and the run-time packages (ajv and its four dependencies,
# cli-progress and its, node-gyp-build; NODE_PATH=that folder), unpack node onto PATH, then run this.
# Exit: the self-test's code (0 ok, 1 a check failed, 77 no GPU, 2 a CUDA call failed).
set -uo pipefail
cd "$(dirname "$0")/.."
ARGS=()
PREBUILT=0
SANITIZE=0
for a in "$@"; do
  case "$a" in
    --prebuilt) PREBUILT=1 ;;
    --sanitize) SANITIZE=1 ;;
    *) ARGS+=("$a") ;;
  esac
done
LOG=$(mktemp /tmp/moecap-gpu-check.XXXXXX.log)
t0=$(date +%s)
nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total,clocks.max.sm --format=csv,noheader 2>/dev/null \
  || echo "nvidia-smi: not available"

NVCC=${CUDACXX:-}
[ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ] && NVCC=/usr/local/cuda/bin/nvcc
[ -z "$NVCC" ] && command -v nvcc >/dev/null 2>&1 && NVCC=$(command -v nvcc)
EXE=""
build_s=0
if [ -n "$NVCC" ] && [ "$PREBUILT" = 0 ]; then
  CC_=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
  ARCH=${MOECAP_CUDA_ARCH:-${CC_:-90}}-real
  JOBS=$(nproc 2>/dev/null || echo 4)
  echo "== building for sm_${ARCH%-real} with $NVCC (-j$JOBS)"
  if cmake -S cuda -B build-gpu-check -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_COMPILER="$NVCC" \
       -DCMAKE_CUDA_ARCHITECTURES="$ARCH" >"$LOG" 2>&1 && cmake --build build-gpu-check -j "$JOBS" >>"$LOG" 2>&1; then
    EXE=build-gpu-check/gpu_selftest
  else
    tail -30 "$LOG"
    echo "build failed (log: $LOG)"
  fi
  build_s=$(( $(date +%s) - t0 ))
fi
if [ -z "$EXE" ] && [ -x build-cuda/gpu_selftest ]; then
  EXE=build-cuda/gpu_selftest
  echo "== using prebuilt $EXE (nvcc ${NVCC:-not found})"
fi
if [ -z "$EXE" ]; then
  echo "no gpu_selftest: no nvcc here and no build-cuda/gpu_selftest (run npm run build:cuda on a machine with nvcc)"
  exit 2
fi
# The CUDA library every later step loads (the loader check, the checkpoint check, the CLI run and
# the GPU ranks): the one built above for this GPU, unless one is named already.
if [ -z "${MOECAP_CUDA_LIBRARY:-}" ] && [ "$EXE" = build-gpu-check/gpu_selftest ]; then
  export MOECAP_CUDA_LIBRARY="$PWD/build-gpu-check/libmoecap_cuda.so"
fi

if [ "$SANITIZE" = 1 ]; then
  CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  if [ -x "$CS" ]; then
    echo "== compute-sanitizer memcheck (checks only)"
    # To a file first: a pipe into head would cut memcheck short at head's 40th line.
    timeout 300 "$CS" --tool memcheck --print-limit 20 "$EXE" --no-bench >"$LOG.memcheck" 2>&1
    grep -E 'ERROR SUMMARY|Invalid|FAIL|^=========  ' "$LOG.memcheck" | head -40
  else
    echo "compute-sanitizer not found"
  fi
fi
echo "== $EXE ${ARGS[*]:-}"
timeout 420 "$EXE" ${ARGS[@]+"${ARGS[@]}"} 2>&1 | tee -a "$LOG"
rc=${PIPESTATUS[0]}
selftest_rc=$rc

# NCCL: the expert-parallel exchange between GPU ranks (one process per GPU, at most 8), when
# libnccl.so.2 is found (the system's, or a pip nvidia-nccl wheel's); "NCCL not installed" otherwise.
nccl="not run"
NCCL_EXE=${EXE%/gpu_selftest}/nccl_selftest
if [ -x "$NCCL_EXE" ]; then
  if [ -z "${MOECAP_NCCL_LIBRARY:-}" ] && ! grep -q 'libnccl.so.2 ' <<<"$(ldconfig -p 2>/dev/null)"; then
    w=$(ls /usr/local/lib/python3*/dist-packages/nvidia/nccl/lib/libnccl.so.2 /usr/lib/python3/dist-packages/nvidia/nccl/lib/libnccl.so.2 \
      "$HOME"/.local/lib/python3*/site-packages/nvidia/nccl/lib/libnccl.so.2 2>/dev/null | head -1)
    [ -n "$w" ] && export MOECAP_NCCL_LIBRARY="$w"
  fi
  GPUS=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
  [ "$GPUS" -ge 1 ] || GPUS=1
  [ "$GPUS" -le 8 ] || GPUS=8
  echo "== $NCCL_EXE $GPUS"
  timeout 120 "$NCCL_EXE" "$GPUS" 2>&1 | tee -a "$LOG"
  case "${PIPESTATUS[0]}" in
    0) nccl="ok ($GPUS ranks)" ;;
    77) nccl=$(grep -q 'NCCL not installed' "$LOG" && echo "NCCL not installed" || echo "skipped (no GPU)") ;;
    *) nccl="FAILED"; [ "$rc" = 0 ] && rc=1 ;;
  esac
else
  nccl="no $NCCL_EXE (built by npm run build:cuda with this tree)"
fi

loader="node or addon not present"
if command -v node >/dev/null 2>&1 && [ -f build/Release/moecap.node ]; then
  loader=$(node -e "const a=require('./build/Release/moecap.node');const i=a.backendInfo('auto');console.log(i.backend+': '+i.reason)" 2>&1 | tail -1)
fi
# A release's stored codes (fp8 128×128 scale_inv, mxfp4 blocks/scales) through the addon's CUDA
# layer, against the CPU's f32 layer on the same checkpoint; then the main job on the GPU.
ckpt="not run (needs node, dist/ and the addon)"
cli="not run (needs node, dist/ and the addon)"
if [ "$rc" != 77 ] && command -v node >/dev/null 2>&1 && [ -f build/Release/moecap.node ] && [ -f dist/index.js ]; then
  echo "== node scripts/gpu-checkpoint-check.js"
  timeout 180 node scripts/gpu-checkpoint-check.js 2>&1 | tee -a "$LOG"
  case "${PIPESTATUS[0]}" in
    0) ckpt="ok" ;;
    77) ckpt="skipped (CUDA unusable: see the log)" ;;
    *) ckpt="FAILED"; [ "$rc" = 0 ] && rc=1 ;;
  esac
  d=$(mktemp -d /tmp/moecap-gpu-run.XXXXXX)
  echo "== node bin/moecap.js run --backend cuda --out $d/run"
  timeout 180 node bin/moecap.js run --backend cuda --out "$d/run" 2>&1 | tee -a "$LOG"
  case "${PIPESTATUS[0]}" in
    0) cli="ok ($d/run)" ;;
    *) cli="FAILED"; [ "$rc" = 0 ] && rc=1 ;;
  esac
fi
# Expert parallelism on GPU ranks: rows staged through host memory over MPI, then over NCCL
# between the GPUs (modes "+nccl", 2 GPUs or more). Its failure marks the run failed but the table
# still shows every step.
ep_gpu=" not run (needs node, mpirun, the addon and a GPU)"
ep_nccl=""
if [ "$rc" != 77 ] && command -v node >/dev/null 2>&1 && command -v mpirun >/dev/null 2>&1 && [ -f build/Release/moecap.node ]; then
  [ -f dist/ep.js ] || timeout 180 npx tsc -p tsconfig.json >>"$LOG" 2>&1
  [ -f build-mpi/libmoecap_mpi.so ] || timeout 180 npm run build:mpi >>"$LOG" 2>&1
  if [ ! -f dist/ep.js ] || [ ! -f build-mpi/libmoecap_mpi.so ]; then
    ep_gpu=" not run: missing"
    [ -f dist/ep.js ] || ep_gpu="$ep_gpu dist/ep.js (npx tsc)"
    [ -f build-mpi/libmoecap_mpi.so ] || ep_gpu="$ep_gpu build-mpi/libmoecap_mpi.so (npm run build:mpi; carry build-mpi/ where the GPU machine has no npm or mpicxx)"
  else
    ep_gpu=""
    EP_GPUS=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
    modes="cuda cuda-bf16 cuda-int8"
    if [ "$EP_GPUS" -ge 2 ]; then
      modes="$modes cuda+nccl cuda-bf16+nccl cuda-int8+nccl"
    else
      ep_nccl="not run: $EP_GPUS GPU (NCCL refuses two ranks on one device; needs 2 GPUs)"
    fi
    for mode in $modes; do
      d=$(mktemp -d /tmp/moecap-gpu-ep.XXXXXX)
      echo "== mpirun -np 2 node test/ep/mpi_rank.js $d $mode"
      OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
        timeout 60 mpirun -np 2 --oversubscribe node test/ep/mpi_rank.js "$d" "$mode" 2>&1 | tail -5 | tee -a "$LOG"
      v=$(node -e "
        const r = require('$d/result.json');
        const a = Buffer.from(r.epOutput, 'base64'), b = Buffer.from(r.singleOutput, 'base64');
        let n = a.length === b.length ? 0 : -1;
        for (let i = 0; n >= 0 && i < a.length; i += 4) if (a.readUInt32LE(i) !== b.readUInt32LE(i)) n++;
        console.log((n === 0 ? 'bitwise' : n < 0 ? 'FAILED (sizes differ)' : 'FAILED (' + n + ' of ' + a.length / 4 + ' values differ)') + ' on GPU ' + r.devices.join('+'));
      " 2>/dev/null || echo "FAILED (no result: see the log)")
      echo "ep $mode: $v" | tee -a "$LOG"
      case "$v" in FAILED*) [ "$rc" = 0 ] && rc=1 ;; esac
      ep_gpu="$ep_gpu $mode: $v;"
      rm -rf "$d"
      case "$v" in *"no result"*) break ;; esac  # the launch itself fails: the other modes would too
    done
  fi
fi
total_s=$(( $(date +%s) - t0 ))

echo
echo "== summary (build ${build_s} s, total ${total_s} s, log $LOG)"
grep -E '^(PASS|FAIL) ' "$LOG" | awk '{n[$1]++} END {printf "checks: %d passed, %d failed\n", n["PASS"], n["FAIL"]}'
grep -E '^FAIL ' "$LOG" | head -20
grep -E '^(device|ceilings)' "$LOG"
echo "loader backendInfo('auto'): $loader"
echo "nccl exchange: $nccl"
echo "checkpoint stored codes on the GPU (vs CPU f32): $ckpt"
grep -E '^(PASS|FAIL) ckpt' "$LOG"
echo "moecap run --backend cuda: $cli"
echo "ep, 2 GPU ranks (modes +nccl: rows over NCCL):$ep_gpu${ep_nccl:+ (nccl transport: $ep_nccl)}"
sed -n '/^shape /,/^(decode:/p' "$LOG"
case "$selftest_rc" in
  0 | 1 | 77) grep -E '^(OK|FAIL):|^no CUDA device' "$LOG" | tail -1 ;;
  2) echo "gpu_selftest: exit 2 (a CUDA call failed: see the log)" ;;
  124) echo "gpu_selftest: killed at its 420 s limit (exit 124): the checks above are those that finished" ;;
  *) echo "gpu_selftest: CRASHED (exit $selftest_rc): the checks above are those before the crash; see the log" ;;
esac
exit "$rc"
