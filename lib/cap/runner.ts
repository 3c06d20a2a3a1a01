// The CAP runner: run(plan, { onProgress }) measures every config of a sweep and resolves to the
// results object (results.ts, schema/results.schema.json). For each config: build the MoE layers
// (reused across configs that only change the workload), measure (measure.ts: warm-up, timed
// samples through all layers, counters around the timed region, fidelity against the fp64
// reference on a sample of tokens), score (scoring.ts: S-MBU, S-MFU, offload, cost) and compute
// the CAP axes. With `outDir`, results.json (and the MoE-CAP files) are rewritten
// atomically after every config, so a killed sweep keeps what it finished and `resume` continues.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createMoeLayer, systemInfo, type MoeLayer, type DType } from '../moe_layer';
import { VERSION } from '../version';
import { checkpointInputs, type ModelPlan } from '../checkpoint/run_model';
import { validatePlan, expandPlan, configId, planFingerprint, type RunPlan } from './plan';
import { findPreset, presetLayerOptions, type ModelPreset } from './presets';
import { datasheetForGpuName, findDatasheet, peaksFromDatasheet, peaksFromProfile, type PeakSource } from './hardware';
import { Counters } from '../counters';
import { nvmlDeviceNames } from './energy';
import { backendInfo } from '../backend';
import { calibrate, readBandwidthNow, saveProfile } from './calibrate';
import { memoryNeed } from './bill_of_materials';
import { expectedDistinctUniform, flopsPerToken, median, summarize, tokensPerSecond } from './metrics';
import { DEFAULT_PRICES, mergePrices, type PriceTable } from './cost';
import { measureFidelity, measureSamples, type LayerInput } from './measure';
import { bandwidthNow, configCost, offloadFigures, utilisation, type CostDevice } from './scoring';
import { paretoFrontier } from './pareto';
import { radarScores } from './radar';
import { loadTaskAccuracy, matchTaskAccuracy } from './task_accuracy';
import { resolvePeaks } from './peaks';
import { naturalTokens, readRoutingTrace, sampleRouting, traceSlice, zipfWeights, InputDesigner, type RoutingTrace } from './routing';
import { seededRouter } from './seeded_router';
import { writeJsonAtomic } from '../io/atomic_write';
import { MoecapError, PlanError } from '../errors';
import { writeMoecapFiles } from './moecap_files';
import { checkPassFits } from './pass_memory';
import {
  SCHEMA_VERSION,
  validateResults,
  type CapPhase,
  type CapSummary,
  type ConfigOptions,
  type ConfigResult,
  type Counter,
  type Results,
  type Unavailable,
} from './results';

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
  /** One-line notices for the user (a quick calibration taken, warnings about the peaks). */
  onNotice?: (message: string) => void;
  /** Replace an earlier run's results in outDir (otherwise refused, naming what would be lost). */
  force?: boolean;
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
  device: Results['device'];
  projected: Results['projected'];
  /** What each config's bill of materials prices (a CPU config: its own threads). */
  costDevice: CostDevice | null;
  costUnavailable?: string;
}

/**
 * The device the layers run on, the peaks they are divided by, and whether those are a projection.
 * CUDA: the GPU as NVML names it (`gpuName`), its datasheet peaks (no GPU calibration yet); --hardware
 * names the GPU when NVML cannot, and another GPU's --hardware is a projection.
 */
export function deviceAndPeaks(
  plan: RunPlan,
  gpuName: string | null = null,
): Pick<Prepared, 'device' | 'projected' | 'peaks' | 'costDevice' | 'costUnavailable'> {
  const cpuName = os.cpus()[0]?.model?.trim() ?? 'unknown CPU';
  const ds = plan.hardware ? findDatasheet(plan.hardware) : null;
  if (plan.backend === 'cuda') {
    const ran = gpuName ? datasheetForGpuName(gpuName) : ds;
    const peaksOf = ds ?? ran;
    const projected =
      ds && gpuName && ran?.name !== ds.name
        ? {
            device: ds.name,
            method: `datasheet peaks of the ${ds.label} applied to the bytes, FLOPs and times measured on the ${gpuName}; the run itself, its cost and its files are that GPU's`,
          }
        : null;
    return {
      device: { kind: 'gpu', name: gpuName ?? ds?.label ?? 'CUDA device (unnamed: pass --hardware NAME)', count: 1 },
      projected,
      peaks: peaksOf
        ? { ...peaksFromDatasheet(peaksOf), ...(gpuName && !projected ? { source: `${peaksOf.source}; the GPU that ran: ${gpuName}` } : {}) }
        : { available: false, reason: `no GPU peaks: ${gpuName ? `no datasheet for '${gpuName}'` : 'NVML did not name the GPU'}; pass --hardware NAME` },
      costDevice: ran ? { kind: 'gpu', gpu: ran.name, gpuMemoryBytes: ran.memoryBytes } : null,
      costUnavailable: `no price for the GPU that ran (${gpuName ?? 'unnamed'}): pass --hardware NAME or a --prices entry`,
    };
  }
  return {
    device: { kind: 'cpu', name: cpuName, count: 1 },
    projected: ds
      ? {
          device: ds.name,
          method: `datasheet peaks of the ${ds.label} applied to the bytes, FLOPs and times measured on the CPU (${cpuName}); the run itself, its cost and its files are the CPU's`,
        }
      : null,
    peaks: resolvePeaks(plan.hardware, plan.hardwareProfile),
    costDevice: { kind: 'cpu', cores: 1 },
  };
}

/** The `--prices` file: JSON overrides merged over the defaults (errors name the file). */
export function loadPrices(file: string): PriceTable {
  let o: unknown;
  try {
    o = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new PlanError(`cannot read price file '${file}': ${(e as Error).message}`);
  }
  return mergePrices(DEFAULT_PRICES, o);
}

async function prepare(planIn: Partial<RunPlan>): Promise<Prepared> {
  const plan = validatePlan(planIn);
  const prices = plan.prices ? loadPrices(plan.prices) : DEFAULT_PRICES;
  const devicePeaks = deviceAndPeaks(plan);
  const taskAccuracy = plan.taskAccuracy ? loadTaskAccuracy(plan.taskAccuracy) : null;
  for (const name of plan.presets) {
    const p = findPreset(name);
    if ((plan.trace || plan.skew.some((s) => s > 0)) && p.experts > p.hidden)
      throw new PlanError(`preset ${name}: designed routing (skew/trace) needs experts <= hidden`);
  }
  const configs = expandPlan(plan).map((options, i) => ({ id: configId(options, i), options }));
  checkPassesFit(configs.map((c) => c.options));
  return { plan, configs, prices, taskAccuracy, traces: await readTraces(plan), ...devicePeaks };
}

/** The plan's trace, read and checked against each preset's experts and k (the core's reader). */
async function readTraces(plan: RunPlan): Promise<Map<string, RoutingTrace>> {
  const traces = new Map<string, RoutingTrace>();
  if (plan.trace)
    for (const name of plan.presets) {
      const p = findPreset(name);
      traces.set(name, await readRoutingTrace(plan.trace, p.experts, p.topK));
    }
  return traces;
}

/** Every config's pass (its inputs for all layers, and the workspace) must fit in memory: refused
 * before anything is built, naming the options (`--batch 1e9` once failed deep in V8). */
function checkPassesFit(configs: ConfigOptions[]): void {
  const available = systemInfo().availableMemory;
  for (const o of configs) {
    const p = findPreset(o.preset);
    const T = o.phase === 'prefill' ? o.batch * o.seqLen : o.batch;
    const what = o.phase === 'prefill' ? `--batch ${o.batch} × --seq ${o.seqLen} (${o.preset})` : `--batch ${o.batch} (${o.preset}, decode)`;
    checkPassFits(T, p, o.layers * inputVariants(T, p.hidden), what, available);
  }
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
    const offload =
      o.residentFraction < 1
        ? {
            capacity: { fraction: o.residentFraction },
            policy: plan.offloadPolicy,
            prefetch: true,
            coldCache: plan.coldCache,
            ...(process.stderr.isTTY ? { progress: 'converting experts' } : {}),
          }
        : undefined;
    // A checkpoint run: the layers come from the file (converted once into cached expert files when offloaded).
    if (plan.model)
      for (const layer of plan.model.layers)
        layers.push(
          await createMoeLayer({
            checkpoint: plan.model.path,
            layer,
            dtype: o.dtype as DType,
            threads: o.threads ?? undefined,
            capacityFactor: o.capacityFactor > 0 ? o.capacityFactor : undefined,
            backend: plan.backend,
            offload,
            ...(plan.model.cacheDir ? { cacheDir: plan.model.cacheDir } : {}),
          }),
        );
    for (let l = 0; l < (plan.model ? 0 : o.layers); l++)
      layers.push(
        await createMoeLayer({
          ...presetLayerOptions(p, { dtype: o.dtype as DType, seed: o.seed + l, threads: o.threads, capacityFactor: o.capacityFactor }),
          // Explicit, never 'auto': the peaks, cost and labels follow the device the plan names.
          backend: plan.backend,
          // Offload: the experts live in a scratch weights file; a bounded cache holds the resident share.
          offload:
            o.residentFraction < 1
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
function makeInputs(
  p: ModelPreset,
  o: ConfigOptions,
  T: number,
  trace: RoutingTrace | undefined,
  designers: Map<number, InputDesigner>,
  model: ModelPlan | null,
): LayerInput[][] {
  const out: LayerInput[][] = [];
  const variants = inputVariants(T, p.hidden);
  for (let l = 0; l < o.layers; l++) {
    const row: LayerInput[] = [];
    for (let v = 0; v < variants; v++) {
      const s = seedOf(o.preset, l, o.phase, T, v, o.routing.kind, o.routing.skew ?? 0, o.seed);
      if (model) {
        row.push({ x: checkpointInputs(model, model.layers[l], T, s, v).x, ids: null });
        continue;
      }
      if (o.routing.kind === 'natural') {
        row.push({ x: naturalTokens(T, p.hidden, s), ids: null });
        continue;
      }
      if (!designers.has(l)) designers.set(l, new InputDesigner(seededRouter(o.seed + l, p.experts, p.hidden), p.experts, p.hidden));
      const ids = o.routing.kind === 'skewed' ? sampleRouting(T, p.topK, zipfWeights(p.experts, o.routing.skew!), s) : traceSlice(trace!, l, v * T, T);
      row.push({ x: designers.get(l)!.design(ids, p.topK, s ^ 0x5bd1e995, DESIGN_MARGIN), ids });
    }
    out.push(row);
  }
  return out;
}

async function measureConfig(
  prep: Prepared,
  index: number,
  layers: MoeLayer[],
  designers: Map<number, InputDesigner>,
  report: (stage: Progress['stage'], done: number, target: number) => void,
  signal?: AbortSignal,
): Promise<ConfigResult | null> {
  const { plan } = prep;
  const { id, options: o } = prep.configs[index];
  const p = findPreset(o.preset);
  const T = o.phase === 'prefill' ? o.batch * o.seqLen : o.batch;
  const k = p.topK,
    E = p.experts,
    H = p.hidden;
  const inputs = makeInputs(p, o, T, prep.traces.get(o.preset), designers, plan.model);
  const info = layers[0].info();
  // The bandwidth of this moment, as the bench does: S-MBU divides by it (the machine's memory
  // bandwidth moves with its neighbours), the profile's figure is kept for comparison.
  const checkBandwidth = plan.bandwidthCheck && prep.device.kind === 'cpu' && !prep.projected && !('available' in prep.peaks) && prep.peaks.kind === 'measured';
  const bwBefore = checkBandwidth ? await readBandwidthNow({ threads: info.threads }) : null;

  const m = await measureSamples(
    layers,
    {
      inputs,
      warmup: plan.warmup,
      repeats: plan.repeats,
      stepsPerRepeat: o.phase === 'decode' ? o.steps : 1,
      budgetSeconds: plan.budgetSeconds,
      tokens: T,
      topK: k,
      experts: E,
      expertBytes: info.expertBytes,
      // Static policy: the warm-up passes were the profile run; pin their most used experts.
      pinStaticAfterWarmup: o.residentFraction < 1 && plan.offloadPolicy === 'static',
    },
    report,
    signal,
  );
  if (!m) return null;
  const bwAfter = checkBandwidth ? await readBandwidthNow({ threads: info.threads }) : null;
  const target = plan.repeats * (o.phase === 'decode' ? o.steps : 1);

  // Fidelity: layer 0, first input variant, evenly spaced sample of tokens.
  report('fidelity', m.count, target);
  const fidelity = await measureFidelity(layers[0], inputs[0][0].x, T, plan.fidelityTokens, H, k);

  const pass = summarize(m.seconds);
  const tps = tokensPerSecond(T, pass.median);
  const meanBytes = m.bytes.reduce((a, b) => a + b, 0) / m.bytes.length;
  const sharedIntermediate = p.shared?.intermediate ?? 0;
  const fpt = layers.length * flopsPerToken({ hidden: H, experts: E, topK: k, intermediate: p.intermediate, sharedIntermediate });
  const util = utilisation(prep.peaks, {
    dtype: o.dtype,
    meanBytes,
    medianSeconds: pass.median,
    tokensPerSecond: tps,
    flopsPerToken: fpt,
    bandwidthNow: bwBefore !== null && bwAfter !== null ? bandwidthNow(bwBefore, bwAfter) : null,
    // The bytes the timed samples touched: the experts any sample selected, the routers, shared experts.
    projected: prep.projected !== null,
    workingSetBytes: m.histogram.reduce((a, h) => a + h.filter((n) => n > 0).length * info.expertBytes + E * H * 4 + m.sharedBytes, 0),
  });
  const offload = offloadFigures(prep.peaks, {
    residentFraction: o.residentFraction,
    samples: m.seconds.length,
    medianSeconds: pass.median,
    totals: m.offload,
    cacheExperts: info.offload?.capacity ?? 0,
    policy: plan.offloadPolicy,
    coldCache: plan.coldCache,
  });
  const need = memoryNeed({
    layers: layers.length,
    experts: E,
    residentExperts: info.offload?.capacity ?? E,
    expertBytes: info.expertBytes,
    routerBytes: E * H * 4,
    sharedBytes: m.sharedBytes,
    tokens: T,
    hidden: H,
    intermediate: p.intermediate,
    topK: k,
  });
  const cost = prep.costDevice
    ? configCost(prep.prices, {
        device: prep.costDevice.kind === 'cpu' ? { kind: 'cpu', cores: info.threads } : prep.costDevice,
        need,
        counters: m.counters,
        wallSeconds: m.wallSeconds,
        tokensPerSecond: tps,
      })
    : { available: false as const, reason: prep.costUnavailable ?? 'no device to price' };

  const distinct = m.distinct.map(median);
  return {
    id,
    index,
    options: o,
    layer: {
      hidden: H,
      intermediate: p.intermediate,
      experts: E,
      topK: k,
      sharedIntermediate,
      dtype: info.dtype,
      isa: info.isa,
      threads: info.threads,
      expertBytes: info.expertBytes,
      routerBytes: E * H * 4,
      sharedBytes: m.sharedBytes,
    },
    tokensPerPass: T,
    warmupPasses: plan.warmup,
    samples: m.seconds.length,
    timing: {
      passSeconds: pass,
      ttftSeconds: o.phase === 'prefill' ? pass : null,
      tpotSeconds: o.phase === 'decode' ? pass : null,
      source: 'native steady-clock time of each layer pass (stats.timeNs), summed over the layers of a sample',
    },
    tokensPerSecond: tps,
    passes: { seconds: m.seconds, distinctExperts: m.seconds.map((_, i) => m.distinct.reduce((a, l) => a + l[i], 0) / m.distinct.length) },
    achieved: { bytesPerSecond: meanBytes / pass.median, flopsPerSecond: tps * fpt },
    routing: {
      distinctExperts: distinct,
      meanDistinctExperts: distinct.reduce((a, b) => a + b, 0) / distinct.length,
      expectedUniform: expectedDistinctUniform(E, k, T),
      expertShare: m.histogram.map((h) => {
        const t = h.reduce((a, b) => a + b, 0);
        return h.map((c) => (t > 0 ? c / t : 0));
      }),
      designAgreement: m.agreeN > 0 ? m.agreeSum / m.agreeN : null,
      dropRate: m.assigned > 0 ? m.dropped / m.assigned : 0,
    },
    smbu: util.smbu,
    smfu: util.smfu,
    offload,
    counters: m.counters,
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

/** Creates the output folder; returns the folder it created first (to remove again if the run
 * ends with nothing in it), or null when the folder was there. */
function checkOutDir(dir: string): string | null {
  try {
    const created = fs.mkdirSync(dir, { recursive: true }) ?? null;
    fs.accessSync(dir, fs.constants.W_OK);
    return created;
  } catch (e) {
    throw new PlanError(`output folder '${dir}' cannot be written: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** Removes `top` (a folder this run created) when the run left nothing in it. */
function removeIfEmpty(top: string | null): void {
  if (!top) return;
  const empty = (d: string): boolean => fs.readdirSync(d, { withFileTypes: true }).every((e) => e.isDirectory() && empty(path.join(d, e.name)));
  try {
    if (empty(top)) fs.rmSync(top, { recursive: true });
  } catch {
    /* best effort: the run's own error matters more */
  }
}

/** An earlier run's files in `dir`: results.json, report.html and the MoE-CAP files (<org>/<model>/metrics_*, …). */
export function earlierRunFiles(dir: string): string[] {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) return [];
  const out = ['results.json', 'report.html'].map((f) => path.join(dir, f)).filter((f) => fs.existsSync(f));
  // MoE-CAP's files sit in <out>/<org>/<model>/ (moecap_files.ts); two folder levels are searched.
  const walk = (d: string, depth: number) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory() && depth < 2) walk(p, depth + 1);
      else if (e.isFile() && depth > 0 && MOECAP_FILE.test(e.name)) out.push(p);
    }
  };
  walk(dir, 0);
  return out;
}
const MOECAP_FILE = /^((cap_metrics|metrics|metadata)_.*\.json|(output_data|detailed_results)_.*\.jsonl)$/;

/** A new run into a folder holding an earlier one: refused (naming what would be lost) unless
 * `force`, which removes the earlier files so old and new MoE-CAP files never mix. */
function claimOutDir(dir: string, force: boolean): void {
  const old = earlierRunFiles(dir);
  if (!old.length) return;
  if (!force) {
    let configs = '';
    try {
      const n = (JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8')) as { configs?: unknown[] }).configs?.length;
      if (typeof n === 'number') configs = ` (${n} measured config(s))`;
    } catch {
      /* unreadable: named by file only */
    }
    throw new PlanError(
      `output folder '${dir}' holds an earlier run: ${old.length} file(s) would be replaced or mixed with this run's, ` +
        `${old
          .map((f) => path.relative(dir, f))
          .slice(0, 4)
          .join(', ')}${old.length > 4 ? ', …' : ''}${configs}; ` +
        `use --resume ${dir} to continue it, --force to replace it, or another --out`,
    );
  }
  for (const f of old) fs.rmSync(f, { force: true });
}

/** DIR/results.json of a run to continue (`--resume`), or null when there is none. */
export function readResumable(dir: string, fingerprint: string): Results | null {
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

/** The first GPU's name as NVML reports it (through the counters), or null. */
function gpuNameNow(): string | null {
  try {
    const c = new Counters();
    c.start();
    return nvmlDeviceNames(c.stop() as Counter[])[0] ?? null;
  } catch {
    return null;
  }
}

/** --backend cuda must run on CUDA: refused with the backend's reason when it cannot. */
function requireBackend(plan: RunPlan): void {
  if (plan.backend !== 'cuda') return;
  const b = backendInfo('cuda');
  if (b.backend !== 'cuda') throw new MoecapError('ERR_BACKEND_UNAVAILABLE', `--backend cuda: the CUDA backend cannot run here: ${b.reason}`);
}

/** No peaks from any source: a quick calibration (a few seconds), saved as this machine's profile. */
async function quickCalibration(prep: Prepared, notice: (m: string) => void): Promise<void> {
  const { plan } = prep;
  if (!plan.calibrateIfMissing || plan.backend !== 'cpu' || plan.hardware || plan.hardwareProfile || process.env.MOECAP_HARDWARE_PROFILE) return;
  if (!('available' in prep.peaks)) return;
  notice('moecap run: no hardware profile for this machine: a quick calibration first (about 3 s; `moecap calibrate` measures longer)');
  const profile = await calibrate({ budgetSeconds: 3, minRounds: 2, skipFileRead: true, quick: true, computeMs: 10 });
  try {
    notice(`moecap run: saved the quick profile to ${saveProfile(profile)}`);
  } catch (e) {
    notice(`moecap run: could not save the quick profile (${(e as Error).message}); it is used for this run only`);
  }
  prep.peaks = peaksFromProfile(profile);
}

export async function run(planIn: Partial<RunPlan>, opts: RunOptions = {}): Promise<Results> {
  const prep = await prepare(planIn);
  requireBackend(prep.plan);
  if (prep.plan.backend === 'cuda') Object.assign(prep, deviceAndPeaks(prep.plan, gpuNameNow()));
  const notice = opts.onNotice ?? (() => {});
  const m = prep.plan.model;
  if (m) {
    notice(`model: ${findPreset(prep.plan.presets[0]).notes}`);
    for (const l of m.layers) notice(`inputs of layer ${l}: ${checkpointInputs(m, l, 1, 0, 0).what}`);
  }
  if (!(opts.outDir && opts.resume)) await quickCalibration(prep, notice);
  const fingerprint = planFingerprint(prep.plan);
  const outDir = opts.outDir ?? null;
  if (outDir && !opts.resume) claimOutDir(outDir, opts.force ?? false);
  const createdDir = outDir ? checkOutDir(outDir) : null;
  let previous: Results | null;
  try {
    previous = outDir && opts.resume ? readResumable(outDir, fingerprint) : null;
  } catch (e) {
    removeIfEmpty(createdDir);
    throw e;
  }
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
    device: prep.device,
    projected: prep.projected,
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
  let measuredSeconds = 0,
    measuredCount = 0;
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
          configIndex: i,
          configCount: n,
          configId: id,
          stage,
          samplesDone: d,
          samplesTarget: t,
          elapsedSeconds: (Date.now() - startedAt) / 1e3,
          etaSeconds: eta(stage === 'done' || stage === 'skipped'),
          result,
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
    if (results.configs.length)
      try {
        save();
      } catch {
        /* the original error matters more */
      }
    else removeIfEmpty(createdDir);
    throw e;
  } finally {
    layers?.forEach((l) => l.close());
  }
  return results;
}
