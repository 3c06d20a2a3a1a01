// The CAP runner: run(plan, { onProgress }) measures every config of a sweep and resolves to the
// results object (results.ts, schema/results.schema.json). For each config: build the MoE layers
// (reused across configs that only change the workload), warm up, time samples (a prefill pass,
// or one decode step, through all layers; native pass timers), read counters around the timed
// region, check fidelity against the fp64 reference on a sample of tokens, and compute S-MBU,
// S-MFU, cost and the CAP axes. With `outDir`, results.json (and the MoE-CAP files) are rewritten
// atomically after every config, so a killed sweep keeps what it finished and `resume` continues.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createMoeLayer, systemInfo, type MoeLayer, type DType } from '../moe_layer';
import { Counters } from '../counters';
import { VERSION } from '../version';
import { validatePlan, expandPlan, configId, planFingerprint, type RunPlan } from './plan';
import { findPreset, type ModelPreset } from './presets';
import { computePeakFor, type PeakSource } from './hardware';
import { distinctExperts, expectedDistinctUniform, expertHistogram, flopsPerToken, layerBytes, smbu, smfu, summarize, tokensPerSecond } from './metrics';
import { layerFidelity, routingAgreement } from './accuracy';
import { costPerMillionTokens, cpuComponents, DEFAULT_PRICES, mergePrices, powerFrom, type PriceTable } from './cost';
import { paretoFrontier } from './pareto';
import { radarScores } from './radar';
import { loadTaskAccuracy, matchTaskAccuracy } from './task_accuracy';
import { resolvePeaks } from './peaks';
import { naturalTokens, parseTrace, sampleRouting, traceSlice, zipfWeights, InputDesigner, type RoutingTrace } from './routing';
import { seededRouter } from './seeded_router';
import { writeJsonAtomic } from '../io/atomic_write';
import { MoecapError, PlanError } from '../errors';
import { raplEnergy } from './energy';
import { writeMoecapFiles } from './moecap_files';
import { SCHEMA_VERSION, validateResults, type CapPhase, type CapSummary, type ConfigOptions, type ConfigResult, type Counter, type Results, type Unavailable } from './results';

export interface Progress {
  configIndex: number;
  configCount: number;
  configId: string;
  stage: 'build' | 'warmup' | 'timed' | 'fidelity' | 'done' | 'skipped';
  samplesDone: number;
  samplesTarget: number;
  elapsedSeconds: number;
  /** Remaining seconds for the sweep, from the pace so far (null until one config finished). */
  etaSeconds: number | null;
  result?: ConfigResult;
}

export interface RunOptions {
  onProgress?: (p: Progress) => void;
  /** Folder for results.json and the MoE-CAP files; nothing is written without it. */
  outDir?: string | null;
  /** Continue results.json in outDir (same plan), skipping finished configs. */
  resume?: boolean;
  /** Stops after the current sample; the run resolves with status 'interrupted'. */
  signal?: AbortSignal;
}

export { PlanError };

/** Distinct inputs cycled through the samples of a config, fewer for big passes (memory, design time). */
const MAX_INPUT_VARIANTS = 4;
const INPUT_FLOATS_PER_LAYER = 1 << 26; // 256 MB of fp32 inputs per layer at most
export function inputVariants(T: number, H: number): number {
  return Math.max(1, Math.min(MAX_INPUT_VARIANTS, Math.floor(INPUT_FLOATS_PER_LAYER / (T * H))));
}
const DESIGN_MARGIN = 4;

/** Inputs that do not depend on the machine are prepared (and checked) before anything is written. */
interface Prepared {
  plan: RunPlan;
  configs: Array<{ id: string; options: ConfigOptions }>;
  prices: PriceTable;
  peaks: PeakSource | Unavailable;
  taskAccuracy: Results['taskAccuracy'];
  traces: Map<string, RoutingTrace>;
}

function prepare(planIn: Partial<RunPlan>): Prepared {
  const plan = validatePlan(planIn);
  let prices = DEFAULT_PRICES;
  if (plan.prices) {
    let o: unknown;
    try {
      o = JSON.parse(fs.readFileSync(plan.prices, 'utf8'));
    } catch (e) {
      throw new PlanError(`cannot read price file '${plan.prices}': ${(e as Error).message}`);
    }
    prices = mergePrices(DEFAULT_PRICES, o);
  }
  const peaks = resolvePeaks(plan.hardware, plan.hardwareProfile);
  const taskAccuracy = plan.taskAccuracy ? loadTaskAccuracy(plan.taskAccuracy) : null;
  const traces = new Map<string, RoutingTrace>();
  if (plan.trace)
    for (const name of plan.presets) {
      const p = findPreset(name);
      traces.set(name, parseTrace(plan.trace, p.experts, p.topK));
    }
  for (const name of plan.presets) {
    const p = findPreset(name);
    if ((plan.trace || plan.skew.some((s) => s > 0)) && p.experts > p.hidden)
      throw new PlanError(`preset ${name}: designed routing (skew/trace) needs experts <= hidden`);
  }
  const configs = expandPlan(plan).map((options, i) => ({ id: configId(options, i), options }));
  return { plan, configs, prices, peaks, taskAccuracy, traces };
}

function machineInfo(): Record<string, unknown> {
  const cpus = os.cpus();
  const info = systemInfo();
  return {
    cpuModel: cpus[0]?.model?.trim() ?? 'unknown',
    logicalCpus: cpus.length,
    hardwareThreads: info.hardwareThreads,
    bestIsa: info.bestIsa,
    supportedIsas: info.supportedIsas,
    totalMemoryBytes: os.totalmem(),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
  };
}

/** Deterministic 32-bit seed from strings (inputs identical across resumed runs). */
function seedOf(...parts: Array<string | number>): number {
  let h = 2166136261;
  for (const ch of parts.join('|')) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
  return h;
}

function layerKey(o: ConfigOptions): string {
  return JSON.stringify([o.preset, o.layers, o.dtype, o.threads, o.capacityFactor, o.residentFraction, o.seed]);
}

async function buildLayers(p: ModelPreset, o: ConfigOptions, plan: RunPlan): Promise<MoeLayer[]> {
  const layers: MoeLayer[] = [];
  try {
    for (let l = 0; l < o.layers; l++)
      layers.push(
        await createMoeLayer({
          hidden: p.hidden, intermediate: p.intermediate, experts: p.experts, topK: p.topK,
          scoring: p.router.scoring, renormalize: p.router.renormalize, routedScalingFactor: p.router.routedScalingFactor,
          groups: p.router.groups, sharedExperts: p.shared ? { intermediate: p.shared.intermediate, gated: p.shared.gated } : undefined,
          capacityFactor: o.capacityFactor > 0 ? o.capacityFactor : undefined,
          threads: o.threads ?? undefined, dtype: o.dtype as DType, weights: { seed: o.seed + l },
          // The cost, peak and energy models here are the CPU's, so the runner asks for the CPU
          // backend explicitly until it models GPUs (createMoeLayer's own default is 'auto').
          backend: 'cpu',
          // Offload: the experts live in a scratch weights file; a bounded cache holds the resident share.
          offload: o.residentFraction < 1
            ? { capacity: { fraction: o.residentFraction }, policy: plan.offloadPolicy, prefetch: true, coldCache: plan.coldCache }
            : undefined,
        }),
      );
  } catch (e) {
    for (const l of layers) l.close();
    throw e;
  }
  return layers;
}

/** Input variants per layer: [layer][variant] → { x [T,H], designed ids or null }. */
function makeInputs(p: ModelPreset, o: ConfigOptions, T: number, trace: RoutingTrace | undefined, designers: Map<number, InputDesigner>) {
  const out: Array<Array<{ x: Float32Array; ids: Int32Array | null }>> = [];
  const variants = inputVariants(T, p.hidden);
  for (let l = 0; l < o.layers; l++) {
    const row: Array<{ x: Float32Array; ids: Int32Array | null }> = [];
    for (let v = 0; v < variants; v++) {
      const s = seedOf(o.preset, l, o.phase, T, v, o.routing.kind, o.routing.skew ?? 0, o.seed);
      if (o.routing.kind === 'natural') {
        row.push({ x: naturalTokens(T, p.hidden, s), ids: null });
        continue;
      }
      if (!designers.has(l)) designers.set(l, new InputDesigner(seededRouter(o.seed + l, p.experts, p.hidden), p.experts, p.hidden));
      const ids = o.routing.kind === 'skewed'
        ? sampleRouting(T, p.topK, zipfWeights(p.experts, o.routing.skew!), s)
        : traceSlice(trace!, l, v * T, T);
      row.push({ x: designers.get(l)!.design(ids, p.topK, s ^ 0x5bd1e995, DESIGN_MARGIN), ids });
    }
    out.push(row);
  }
  return out;
}

async function measureConfig(
  prep: Prepared, index: number, layers: MoeLayer[], designers: Map<number, InputDesigner>,
  report: (stage: Progress['stage'], done: number, target: number) => void, signal?: AbortSignal,
): Promise<ConfigResult | null> {
  const { plan } = prep;
  const { id, options: o } = prep.configs[index];
  const p = findPreset(o.preset);
  const T = o.phase === 'prefill' ? o.batch * o.seqLen : o.batch;
  const k = p.topK, E = p.experts, H = p.hidden;
  const inputs = makeInputs(p, o, T, prep.traces.get(o.preset), designers);
  const info = layers[0].info();

  const runSample = async (s: number) => {
    let seconds = 0;
    const perLayer = [];
    for (let l = 0; l < layers.length; l++) {
      const inp = inputs[l][s % inputs[l].length];
      const r = await layers[l].forward(inp.x);
      seconds += r.stats.timeNs / 1e9;
      perLayer.push({ r, designed: inp.ids });
    }
    return { seconds, perLayer };
  };

  report('warmup', 0, plan.warmup);
  for (let w = 0; w < plan.warmup; w++) await runSample(w);
  // Static policy: the warm-up passes were the profile run; pin their most used experts.
  if (o.residentFraction < 1 && plan.offloadPolicy === 'static') for (const l of layers) l.pinStatic();
  let offBytes = 0, offHits = 0, offMisses = 0, offStallNs = 0, offIoNs = 0;

  const stepsPerRepeat = o.phase === 'decode' ? o.steps : 1;
  const target = plan.repeats * stepsPerRepeat;
  let counters: Counters | null = null;
  let countersUnavailable: Unavailable | null = null;
  try {
    counters = new Counters();
    counters.start();
  } catch (e) {
    countersUnavailable = { available: false, reason: `counters could not be opened: ${(e as Error).message}` };
  }
  const t0 = process.hrtime.bigint();
  const seconds: number[] = [];
  const bytes: number[] = [];
  const A: number[][] = layers.map(() => []);
  const hist: number[][] = layers.map(() => new Array(E).fill(0));
  let dropped = 0, assigned = 0, agreeSum = 0, agreeN = 0, sharedBytesSeen = 0;
  let s = 0;
  report('timed', 0, target);
  for (let rep = 0; rep < plan.repeats; rep++) {
    for (let step = 0; step < stepsPerRepeat; step++, s++) {
      if (signal?.aborted) {
        if (counters) counters.stop();
        return null;
      }
      const { seconds: sec, perLayer } = await runSample(s);
      seconds.push(sec);
      let b = 0;
      perLayer.forEach(({ r, designed }, l) => {
        const a = distinctExperts(r.expertIds);
        A[l].push(a);
        const h = expertHistogram(r.expertIds, E);
        for (let e = 0; e < E; e++) hist[l][e] += h[e];
        b += layerBytes({ distinctExperts: a, expertBytes: info.expertBytes, routerBytes: r.stats.routerBytes, sharedBytes: r.stats.sharedBytes }).total;
        dropped += r.stats.dropped;
        const off = r.stats.offload;
        if (off) {
          offBytes += off.bytesRead;
          offHits += off.hits;
          offMisses += off.misses;
          offStallNs += off.stallNs;
          offIoNs += off.ioNs;
        }
        sharedBytesSeen = r.stats.sharedBytes;
        assigned += T * k;
        if (designed) {
          agreeSum += routingAgreement(r.expertIds, designed, k) * T;
          agreeN += T;
        }
      });
      bytes.push(b);
      report('timed', s + 1, target);
    }
    const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
    if (plan.budgetSeconds !== null && elapsed >= plan.budgetSeconds) break;
  }
  const wallSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  let readings: Counter[] | Unavailable;
  if (counters) {
    try {
      readings = counters.stop() as Counter[];
    } catch (e) {
      readings = { available: false, reason: `counters could not be read: ${(e as Error).message}` };
    }
  } else readings = countersUnavailable!;

  // Fidelity: layer 0, first input variant, evenly spaced sample of tokens.
  report('fidelity', s, target);
  let fidelity: ConfigResult['fidelity'];
  try {
    const x = inputs[0][0].x;
    const fwd = await layers[0].forward(x);
    const n = Math.min(T, plan.fidelityTokens);
    const sample = Int32Array.from({ length: n }, (_, i) => Math.floor((i * T) / n));
    const ref = await layers[0].reference(x, sample);
    fidelity = { ...layerFidelity({ output: fwd.output, ids: fwd.expertIds, reference: ref, hidden: H, topK: k, dropped: fwd.stats.dropped, assignments: T * k }), layer: 0 };
  } catch (e) {
    fidelity = { available: false, reason: `reference check failed: ${(e as Error).message}` };
  }

  const pass = summarize(seconds);
  const tps = tokensPerSecond(T, pass.median);
  const meanBytes = bytes.reduce((a, b) => a + b, 0) / bytes.length;
  const sharedIntermediate = p.shared?.intermediate ?? 0;
  const fpt = layers.length * flopsPerToken({ hidden: H, experts: E, topK: k, intermediate: p.intermediate, sharedIntermediate });
  const peaks = prep.peaks;
  let smbuR: ConfigResult['smbu'];
  let smfuR: ConfigResult['smfu'];
  if ('available' in peaks) {
    smbuR = { available: false, reason: peaks.reason };
    smfuR = { available: false, reason: peaks.reason };
  } else {
    const label = `${peaks.kind}: ${peaks.name} (${peaks.source})`;
    smbuR = peaks.memoryBandwidth
      ? { value: smbu(meanBytes, pass.median, peaks.memoryBandwidth), bytesPerSample: meanBytes, peakBandwidth: peaks.memoryBandwidth, peaks: label }
      : { available: false, reason: `${peaks.name} gives no memory bandwidth` };
    const cp = computePeakFor(o.dtype, peaks);
    smfuR = cp.value
      ? { value: smfu(tps, fpt, cp.value), flopsPerToken: fpt, peakFlops: cp.value, peakDtype: cp.which, peaks: label }
      : { available: false, reason: `${peaks.name} gives no ${cp.which} peak` };
  }

  // Offload figures over the timed samples (means per sample; utilisation against the measured
  // cold read bandwidth of the offload folder, from `moecap calibrate`).
  function offloadResult(): ConfigResult['offload'] {
    if (o.residentFraction >= 1) return { available: false, reason: 'all experts resident (no --offload)' };
    const n = seconds.length;
    const bytesMoved = offBytes / n;
    const tierBandwidth = bytesMoved / pass.median;
    const peak = 'available' in peaks ? null : peaks.offloadBandwidth;
    const lookups = offHits + offMisses;
    return {
      value: peak ? tierBandwidth / peak : null,
      ...(peak ? {} : { valueReason: 'no measured offload-folder read bandwidth (run `moecap calibrate`)' }),
      bytesMoved, tierBandwidth,
      ioBandwidth: offIoNs > 0 ? offBytes / (offIoNs * 1e-9) : null,
      hitRate: lookups > 0 ? offHits / lookups : null,
      stallMs: offStallNs / n / 1e6,
      cacheExperts: info.offload?.capacity ?? 0,
      residentFraction: o.residentFraction,
      policy: plan.offloadPolicy, coldCache: plan.coldCache,
      peakBandwidth: peak,
    };
  }

  const cores = info.threads;
  const components = cpuComponents(prep.prices, cores, os.totalmem() / 1e9);
  const energy = Array.isArray(readings) ? raplEnergy(readings) : null;
  const power = powerFrom(components, energy?.joules ?? null, wallSeconds, energy?.source);
  const cost = costPerMillionTokens({
    components, amortisationYears: prep.prices.amortisationYears, utilisation: prep.prices.utilisation,
    usdPerKWh: prep.prices.usdPerKWh, power, secondsPer1MTokens: 1e6 / tps,
  });

  const medianOf = (v: number[]) => summarize(v).median;
  const distinct = A.map(medianOf);
  return {
    id, index, options: o,
    layer: {
      hidden: H, intermediate: p.intermediate, experts: E, topK: k, sharedIntermediate, dtype: info.dtype, isa: info.isa,
      threads: info.threads, expertBytes: info.expertBytes, routerBytes: E * H * 4, sharedBytes: sharedBytesSeen,
    },
    tokensPerPass: T,
    warmupPasses: plan.warmup,
    samples: seconds.length,
    timing: {
      passSeconds: pass,
      ttftSeconds: o.phase === 'prefill' ? pass : null,
      tpotSeconds: o.phase === 'decode' ? pass : null,
      source: 'native steady-clock time of each layer pass (stats.timeNs), summed over the layers of a sample',
    },
    tokensPerSecond: tps,
    routing: {
      distinctExperts: distinct,
      meanDistinctExperts: distinct.reduce((a, b) => a + b, 0) / distinct.length,
      expectedUniform: expectedDistinctUniform(E, k, T),
      expertShare: hist.map((h) => { const t = h.reduce((a, b) => a + b, 0); return h.map((c) => (t > 0 ? c / t : 0)); }),
      designAgreement: agreeN > 0 ? agreeSum / agreeN : null,
      dropRate: assigned > 0 ? dropped / assigned : 0,
    },
    smbu: smbuR,
    smfu: smfuR,
    offload: offloadResult(),
    counters: readings,
    cost,
    fidelity,
  };
}

const RADAR_TEXT: Record<string, string> = {
  'ratio-to-best': 'per phase, over the configs with a cost: performance p/max(p), accuracy a/max(a), cost min(c)/c; 1 = best',
  'min-max': 'per phase, over the configs with a cost: (v − min)/(max − min), cost inverted; constant axis → 1',
};

/** CAP axes, radar and Pareto frontier per phase. */
export function capSummary(configs: ConfigResult[], taskAccuracy: Results['taskAccuracy'], method: RunPlan['radarMethod']): CapSummary {
  const phases: CapSummary['phases'] = {};
  for (const phase of ['prefill', 'decode'] as const) {
    const cs = configs.filter((c) => c.options.phase === phase);
    if (cs.length === 0) continue;
    const points: CapPhase['points'] = [];
    const excluded: CapPhase['excluded'] = [];
    for (const c of cs) {
      const ta = matchTaskAccuracy(taskAccuracy, c.options.preset, c.options.dtype);
      const acc = ta ? ta.accuracy : 'available' in c.fidelity ? null : Math.max(0, 1 - c.fidelity.relativeL2);
      if ('available' in c.cost) excluded.push({ id: c.id, reason: c.cost.reason });
      else if (acc === null) excluded.push({ id: c.id, reason: 'no accuracy: no task accuracy given and the fidelity check failed' });
      else points.push({ id: c.id, cost: c.cost.usdPer1MTokens, accuracy: acc, performance: c.tokensPerSecond });
    }
    phases[phase] = { points, excluded, radar: radarScores(points, method), pareto: paretoFrontier(points) };
  }
  return {
    accuracyAxis: taskAccuracy
      ? 'task accuracy from --task-accuracy (fraction; matched by preset/dtype), else 1 − relative L2 vs fp64'
      : 'layer fidelity proxy: 1 − relative L2 error of the layer output vs the fp64 reference (no task accuracy given)',
    performanceAxis: 'tokens/s (prefill: batch·seq tokens per median pass; decode: batch tokens per median step)',
    costAxis: 'USD per 1M tokens (cost model inputs in each config)',
    radarMethod: method,
    radarNormalisation: RADAR_TEXT[method],
    phases,
  };
}

function checkOutDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.accessSync(dir, fs.constants.W_OK);
  } catch (e) {
    throw new PlanError(`output folder '${dir}' cannot be written: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

function readResumable(dir: string, fingerprint: string): Results | null {
  const f = path.join(dir, 'results.json');
  if (!fs.existsSync(f)) return null;
  let r: Results;
  try {
    r = JSON.parse(fs.readFileSync(f, 'utf8'));
  } catch {
    throw new PlanError(`cannot resume: '${f}' is not valid JSON`);
  }
  const errs = validateResults(r);
  if (errs.length) throw new PlanError(`cannot resume: '${f}' does not match the results schema (${errs[0]})`);
  if (r.planFingerprint !== fingerprint) throw new PlanError(`cannot resume: '${f}' belongs to a different plan`);
  const here = machineInfo();
  for (const k of ['cpuModel', 'logicalCpus', 'totalMemoryBytes'])
    if (r.machine[k] !== here[k]) throw new PlanError(`cannot resume: '${f}' was measured on another machine (${k}: ${r.machine[k]} here ${here[k]})`);
  return r;
}

/** Reads the plan stored in DIR/results.json (for `moecap run --resume DIR`). */
export function planFromResults(dir: string): RunPlan {
  const f = path.join(dir, 'results.json');
  let r: Results;
  try {
    r = JSON.parse(fs.readFileSync(f, 'utf8'));
  } catch (e) {
    throw new PlanError(`cannot resume: cannot read '${f}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (!r || typeof r.plan !== 'object') throw new PlanError(`cannot resume: '${f}' has no plan`);
  return validatePlan(r.plan as Partial<RunPlan>);
}

export async function run(planIn: Partial<RunPlan>, opts: RunOptions = {}): Promise<Results> {
  const prep = prepare(planIn);
  const fingerprint = planFingerprint(prep.plan);
  const outDir = opts.outDir ?? null;
  if (outDir) checkOutDir(outDir);
  const previous = outDir && opts.resume ? readResumable(outDir, fingerprint) : null;
  const now = () => new Date().toISOString();
  const results: Results = {
    schemaVersion: SCHEMA_VERSION,
    tool: { name: 'moecap', version: VERSION },
    status: 'running',
    createdAt: previous?.createdAt ?? now(),
    updatedAt: now(),
    planFingerprint: fingerprint,
    plan: prep.plan as unknown as Record<string, unknown>,
    machine: machineInfo(),
    peaks: prep.peaks,
    prices: prep.prices,
    taskAccuracy: prep.taskAccuracy,
    configs: [],
    cap: null,
  };
  const done = new Map((previous?.configs ?? []).map((c) => [c.id, c]));
  const save = () => {
    results.updatedAt = now();
    results.cap = results.configs.length ? capSummary(results.configs, results.taskAccuracy, prep.plan.radarMethod) : null;
    const errs = validateResults(results);
    if (errs.length) throw new MoecapError('ERR_INTERNAL', `internal error: results do not match the schema: ${errs.slice(0, 3).join('; ')}`);
    if (!outDir) return;
    writeJsonAtomic(path.join(outDir, 'results.json'), results);
    writeMoecapFiles(outDir, results);
  };

  const startedAt = Date.now();
  let measuredSeconds = 0, measuredCount = 0;
  let layers: MoeLayer[] | null = null;
  let layersKey = '';
  let designers = new Map<number, InputDesigner>();
  const n = prep.configs.length;
  try {
    for (let i = 0; i < n; i++) {
      const { id, options } = prep.configs[i];
      // Remaining configs (this one included until it is done) at the mean pace of measured ones.
      const eta = (finished: boolean) => (measuredCount ? (measuredSeconds / measuredCount) * (n - i - (finished ? 1 : 0)) : null);
      const report = (stage: Progress['stage'], d: number, t: number, result?: ConfigResult) =>
        opts.onProgress?.({
          configIndex: i, configCount: n, configId: id, stage, samplesDone: d, samplesTarget: t,
          elapsedSeconds: (Date.now() - startedAt) / 1e3, etaSeconds: eta(stage === 'done' || stage === 'skipped'), result,
        });
      const prev = done.get(id);
      if (prev) {
        results.configs.push(prev);
        report('skipped', prev.samples, prev.samples, prev);
        continue;
      }
      if (opts.signal?.aborted) break;
      const t0 = Date.now();
      const key = layerKey(options);
      if (key !== layersKey) {
        layers?.forEach((l) => l.close());
        layers = null;
        report('build', 0, 0);
        layers = await buildLayers(findPreset(options.preset), options, prep.plan);
        layersKey = key;
        designers = new Map();
      }
      const r = await measureConfig(prep, i, layers!, designers, (st, d, t) => report(st, d, t), opts.signal);
      if (!r) break; // aborted mid-config: its partial samples are dropped
      results.configs.push(r);
      measuredSeconds += (Date.now() - t0) / 1e3;
      measuredCount++;
      save();
      report('done', r.samples, r.samples, r);
    }
    results.status = results.configs.length === n ? 'complete' : 'interrupted';
    save();
  } catch (e) {
    results.status = 'interrupted';
    results.error = (e as Error).message;
    // Keep the finished configs on disk; a schema failure here is a bug, so do not mask the error.
    if (results.configs.length) try { save(); } catch { /* the original error matters more */ }
    throw e;
  } finally {
    layers?.forEach((l) => l.close());
  }
  return results;
}
