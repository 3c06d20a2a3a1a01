// `moecap plan-cache` end to end at DeepSeek-V3's routing shape: a trace JSONL of BENCH_LAYERS
// layers (61) × 256 experts, k = 8, BENCH_TOKENS tokens (1M) is written once to a temporary file
// (token-major, one line per token and layer, Zipf(1.0) over a per-layer permutation of the
// experts), then read and replayed the way the command does it (TraceSpill.read, planCache) with
// capacities 8,16,32 and all five policies. Prints the time of each stage, the peak RSS (VmHWM of
// this process) and the load average. Then the same from the binary trace (.mctrace) written from
// it: the conversion, and plan-cache reading the binary file (no JSONL parse, no spill).
// node bench/plan_cache.js   (needs the built addon and dist/: npx node-gyp rebuild && npx tsc)
// BENCH_KEEP=FILE keeps (or reuses) the trace file; BENCH_BINARY=0 skips the binary run.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { TraceSpill } = require('../dist/interop/trace_spill.js');
const { planCache, replayConcurrency } = require('../dist/interop/cache_plan.js');
const { resolveModel } = require('../dist/interop/model_shape.js');
const { writeBinaryTrace } = require('../dist/interop/trace_binary.js');

// Peak resident set of this process (VmHWM), MB.
const peakRssMb = () => Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
// Seconds to read `file` in 1 MiB blocks and do nothing with it: the read's ceiling, same run.
function plainReadSeconds(file) {
  const t0 = Date.now();
  const fd = fs.openSync(file, 'r');
  const b = Buffer.allocUnsafe(1 << 20);
  for (let pos = 0, n; (n = fs.readSync(fd, b, 0, b.length, pos)) > 0;) pos += n;
  fs.closeSync(fd);
  return Math.max(1e-3, (Date.now() - t0) / 1e3);
}
const load = () =>
  os
    .loadavg()
    .map((v) => v.toFixed(2))
    .join(' ');

const L = Number(process.env.BENCH_LAYERS || 61),
  E = 256,
  k = 8,
  N = Number(process.env.BENCH_TOKENS || 1e6);
const CAPACITIES = [8, 16, 32];
const POLICIES = ['lru', 'lfu', 'lfru', 'static', 'belady'];

function xorshift(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

// Per layer: the Zipf(1.0) CDF over a permutation of the experts (hot sets differ by layer).
function layerSamplers() {
  const u = xorshift(12345);
  return Array.from({ length: L }, () => {
    const perm = Array.from({ length: E }, (_, e) => e);
    for (let i = E - 1; i > 0; i--) {
      const j = Math.floor(u() * (i + 1));
      [perm[i], perm[j]] = [perm[j], perm[i]];
    }
    const cdf = new Float64Array(E);
    let acc = 0;
    for (let e = 0; e < E; e++) cdf[e] = acc += 1 / (e + 1);
    for (let e = 0; e < E; e++) cdf[e] /= acc;
    return { perm, cdf };
  });
}

function writeTrace(file) {
  const samplers = layerSamplers();
  const u = xorshift(777);
  const fd = fs.openSync(file, 'w');
  const out = Buffer.allocUnsafe(8 << 20);
  let n = 0;
  const put = (s) => {
    n += out.write(s, n, 'latin1');
  };
  const ids = new Int32Array(k);
  for (let t = 0; t < N; t++) {
    for (let l = 0; l < L; l++) {
      const { perm, cdf } = samplers[l];
      for (let j = 0; j < k;) {
        const r = u();
        let lo = 0,
          hi = E - 1;
        while (lo < hi) {
          const m = (lo + hi) >> 1;
          if (cdf[m] < r) lo = m + 1;
          else hi = m;
        }
        const e = perm[lo];
        let dup = false;
        for (let i = 0; i < j; i++) if (ids[i] === e) dup = true;
        if (!dup) ids[j++] = e;
      }
      put(`{"layer":${l},"token":${t},"experts":[${ids.join(',')}]}\n`);
      if (n > out.length - 4096) {
        fs.writeSync(fd, out, 0, n);
        n = 0;
      }
    }
  }
  fs.writeSync(fd, out, 0, n);
  fs.closeSync(fd);
}

async function main() {
  const keep = process.env.BENCH_KEEP;
  const file = keep || path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-bench-')), 'trace.jsonl');
  let t0 = Date.now();
  if (!(keep && fs.existsSync(keep))) {
    writeTrace(file);
    console.log(`write trace: ${((Date.now() - t0) / 1e3).toFixed(1)} s (not part of plan-cache)`);
  }
  try {
    const model = resolveModel(undefined, 'deepseek-v3');
    const replayAll = async (trace, label, read) => {
      const threads = os.availableParallelism();
      const c = replayConcurrency(threads, trace.layers, CAPACITIES.length * POLICIES.length);
      const t0 = Date.now();
      const cpu0 = process.cpuUsage();
      const plan = await planCache({
        trace,
        model,
        dtype: 'bf16',
        capacities: CAPACITIES,
        policies: POLICIES,
        tokensPerPass: 1,
        staticProfilePasses: 100,
        slowTierBandwidth: null,
        memoryBandwidth: null,
        peakFlops: null,
      });
      const replay = (Date.now() - t0) / 1e3;
      const cpu = process.cpuUsage(cpu0);
      console.log(
        `${label}: replay ${trace.layers} layers × ${CAPACITIES.length * POLICIES.length} configs: ${replay.toFixed(1)} s wall, ` +
          `${((cpu.user + cpu.system) / 1e6).toFixed(1)} s CPU (${threads} threads: ${c.layersAtOnce} layers at once × ${c.threadsPerLayer}); ` +
          `plan-cache total ${(read + replay).toFixed(1)} s; peak RSS so far ${peakRssMb().toFixed(0)} MB; load ${load()}`,
      );
      return plan;
    };
    const ceiling = plainReadSeconds(file);
    t0 = Date.now();
    const cpu0 = process.cpuUsage();
    const trace = await TraceSpill.read(file, { experts: model.experts, topK: model.topK });
    let plan;
    try {
      const bytes = fs.statSync(file).size;
      const read = (Date.now() - t0) / 1e3;
      const cpu = process.cpuUsage(cpu0);
      const lines = trace.tokens.reduce((a, b) => a + b, 0);
      console.log(
        `read + spill ${(bytes / 1e9).toFixed(2)} GB, ${lines} lines (${trace.layers} layers × ${trace.tokens[0]} tokens): ` +
          `${read.toFixed(1)} s (${(bytes / 1e6 / read).toFixed(0)} MB/s; ${(bytes / 1e6 / ((cpu.user + cpu.system) / 1e6)).toFixed(0)} MB per CPU s); ` +
          `ceiling: the same file read in 1 MiB blocks, nothing parsed, ${(bytes / 1e6 / ceiling).toFixed(0)} MB/s (ratio ${(ceiling / read).toFixed(2)}); load ${load()}`,
      );
      plan = await replayAll(trace, 'jsonl', read);
      if (process.env.BENCH_BINARY !== '0') {
        const bin = `${file}.mctrace`;
        t0 = Date.now();
        const size = writeBinaryTrace(bin, trace, model.experts);
        console.log(`write binary trace ${(size / 1e9).toFixed(2)} GB: ${((Date.now() - t0) / 1e3).toFixed(1)} s (once, not part of plan-cache)`);
        try {
          t0 = Date.now();
          const btrace = await TraceSpill.read(bin, { experts: model.experts, topK: model.topK });
          const bplan = await replayAll(btrace, 'mctrace', (Date.now() - t0) / 1e3);
          const same = JSON.stringify(bplan.rows) === JSON.stringify(plan.rows);
          console.log(`binary trace rows identical to the JSONL's: ${same}`);
          if (!same) process.exitCode = 1;
        } finally {
          if (!keep) fs.rmSync(bin, { force: true });
        }
      }
    } finally {
      trace.close();
    }
    for (const r of plan.rows) console.log(`  capacity ${String(r.capacity).padStart(2)} ${r.policy.padEnd(6)} hit rate ${(100 * r.hitRate).toFixed(2)}%`);
    console.log(`peak RSS ${peakRssMb().toFixed(0)} MB (VmHWM)`);
  } finally {
    if (!keep) fs.rmSync(path.dirname(file), { recursive: true, force: true });
  }
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
