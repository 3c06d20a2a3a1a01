// A CAP run plan: list-valued options whose cartesian product is the sweep. Expansion order puts
// the options that need new layers (preset, layers, dtype, threads, capacity factor) outermost so
// the runner builds each set of layers once.
import { checkpointNativeDtype, registerCheckpointModel, type ModelPlan } from '../checkpoint/run_model';
import { MoecapTypeError, PlanError, quoted, shown } from '../errors';
import { createHash } from 'crypto';
import { findPreset } from './presets';
import type { ConfigOptions, RoutingSpec } from './results';
import type { RadarMethod } from './radar';

export interface RunPlan {
  presets: string[];
  layers: number[];
  phases: Array<'prefill' | 'decode'>;
  batch: number[];
  seqLen: number[];
  steps: number[];
  dtypes: string[];
  /** null = all CPUs the process may use. */
  threads: Array<number | null>;
  capacityFactor: number[];
  /** Fraction of the experts resident in memory; the rest live in a weights file (offload). 1 = all resident. */
  residentFraction: number[];
  offloadPolicy: 'lru' | 'lfu' | 'lfru' | 'static';
  /** Offload: drop the weights file's page cache so expert loads reach the storage device. */
  coldCache: boolean;
  /** Zipf exponents; 0 = natural routing. Ignored when `trace` is set. */
  skew: number[];
  /** JSONL routing trace to replay (one line per token per layer). */
  trace: string | null;
  /** Timed repeats per config (decode: each repeat is `steps` steps). */
  repeats: number;
  /** Seconds per config; when set, repeats continue until it is spent (at least one, at most `repeats`). */
  budgetSeconds: number | null;
  warmup: number;
  /** Tokens per config checked against the fp64 reference. */
  fidelityTokens: number;
  seed: number;
  /** Datasheet name, or null for a measured profile. */
  hardware: string | null;
  hardwareProfile: string | null;
  prices: string | null;
  taskAccuracy: string | null;
  radarMethod: RadarMethod;
  /** Where the layers run: the CPU, or the CUDA backend (refused with the reason when unusable). */
  backend: 'cpu' | 'cuda';
  /** With no peaks from any source, take a quick calibration first (and save it as this machine's profile). */
  calibrateIfMissing: boolean;
  /** Measure the read bandwidth right before and after every config; S-MBU is against it. */
  bandwidthCheck: boolean;
  /** A checkpoint run (`--model PATH`): its layers replace the presets; null = presets with seeded weights. */
  model: ModelPlan | null;
}

export const DEFAULT_PLAN: RunPlan = {
  presets: ['olmoe-1b-7b'],
  layers: [1],
  phases: ['prefill', 'decode'],
  batch: [1],
  seqLen: [64],
  steps: [8],
  dtypes: ['f32'],
  threads: [null],
  capacityFactor: [0],
  residentFraction: [1],
  offloadPolicy: 'lru',
  coldCache: false,
  skew: [0],
  trace: null,
  repeats: 5,
  budgetSeconds: null,
  warmup: 1,
  fidelityTokens: 4,
  seed: 1,
  hardware: null,
  hardwareProfile: null,
  prices: null,
  taskAccuracy: null,
  radarMethod: 'ratio-to-best',
  backend: 'cpu',
  calibrateIfMissing: true,
  bandwidthCheck: true,
  model: null,
};

const DTYPES = ['f32', 'bf16', 'int8', 'int4', 'mxfp4', 'fp8'];
const LIST_KEYS = ['presets', 'layers', 'phases', 'batch', 'seqLen', 'steps', 'dtypes', 'threads', 'capacityFactor', 'residentFraction', 'skew'] as const;

/** Edit distance, case-insensitive. */
function editDistance(a: string, b: string): number {
  a = a.toLowerCase();
  b = b.toLowerCase();
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length];
}

/** The known name nearest to `name` (for "did you mean" in refusals). */
export function closestName(name: string, known: readonly string[]): string {
  return known.reduce((best, k) => (editDistance(name, k) < editDistance(name, best) ? k : best), known[0]);
}

function ints(name: string, v: unknown[], min: number): void {
  if (!Array.isArray(v) || v.length === 0) throw new PlanError(`${name} needs at least one value`);
  for (const x of v) if (!Number.isInteger(x) || (x as number) < min) throw new PlanError(`${name} values must be integers >= ${min}, got ${shown(x)}`);
}

/** Checks a plan; throws a RangeError/TypeError naming the option. Returns a normalised copy. */
export function validatePlan(p: Partial<RunPlan>): RunPlan {
  if (p === null || typeof p !== 'object') throw new MoecapTypeError('ERR_INVALID_OPTION', 'plan must be an object');
  const known = Object.keys(DEFAULT_PLAN);
  for (const k of Object.keys(p))
    if (!known.includes(k))
      throw new MoecapTypeError('ERR_INVALID_OPTION', `unknown plan option '${k}' (did you mean '${closestName(k, known)}'? known: ${known.join(', ')})`);
  for (const k of ['coldCache'] as const)
    if (p[k] !== undefined && typeof p[k] !== 'boolean')
      throw new MoecapTypeError('ERR_INVALID_OPTION', `${k} must be a boolean (true or false), got ${shown(p[k])}`);
  let copy: Partial<RunPlan>;
  try {
    copy = JSON.parse(JSON.stringify(p));
  } catch {
    throw new PlanError('plan is not plain JSON data (cyclic or too deeply nested)');
  }
  const plan: RunPlan = { ...DEFAULT_PLAN, ...copy };
  // Shapes first (a plan may come from a file: `--resume`): lists are arrays, names strings or null.
  for (const k of LIST_KEYS) if (!Array.isArray(plan[k])) throw new PlanError(`${k} must be a list, got ${shown(plan[k])}`);
  for (const k of ['hardware', 'hardwareProfile', 'prices', 'taskAccuracy'] as const)
    if (plan[k] !== null && typeof plan[k] !== 'string')
      throw new MoecapTypeError('ERR_INVALID_OPTION', `${k} must be a string or null, got ${shown(plan[k])}`);
  if (plan.model !== null) {
    const m = plan.model;
    if (
      typeof m !== 'object' ||
      !Array.isArray(m.layers) ||
      (m.cacheDir !== null && typeof m.cacheDir !== 'string') ||
      (m.activations !== null && typeof m.activations !== 'string')
    )
      throw new PlanError(`model must be { path, layers, cacheDir, activations }, got ${shown(m)}`);
    for (const l of m.layers)
      if (!Number.isInteger(l) || l < 0) throw new PlanError(`with a model, layers are decoder layer indices (integers >= 0), got ${shown(l)}`);
    if (plan.trace || plan.skew.some((x) => x !== 0)) throw new PlanError('a checkpoint run routes with its own router: drop --skew/--trace');
    const r = registerCheckpointModel(m);
    plan.model = { ...m, layers: r.layers };
    plan.presets = [r.preset];
    plan.layers = [r.layers.length];
    // 'native': the precision the checkpoint stores its experts in, resolved here so config ids,
    // bytes per weight and the results name the engine dtype that ran.
    if (Array.isArray(plan.dtypes) && plan.dtypes.includes('native')) {
      const own = checkpointNativeDtype(plan.model);
      plan.dtypes = [...new Set(plan.dtypes.map((d) => (d === 'native' ? own : d)))];
    }
  }
  if (Array.isArray(plan.dtypes) && plan.dtypes.includes('native'))
    throw new PlanError('dtype native needs --model (the precision a checkpoint stores its experts in)');
  if (plan.presets.length === 0) throw new PlanError('presets needs at least one value');
  plan.presets = plan.presets.map((n) => {
    if (typeof n !== 'string') throw new PlanError(`presets must be names, got ${shown(n)}`);
    return findPreset(n).name;
  });
  ints('layers', plan.layers, 1);
  ints('batch', plan.batch, 1);
  ints('seqLen', plan.seqLen, 1);
  ints('steps', plan.steps, 1);
  if (!Array.isArray(plan.phases) || plan.phases.length === 0) throw new PlanError('phases needs at least one value');
  for (const ph of plan.phases) if (ph !== 'prefill' && ph !== 'decode') throw new PlanError(`phase must be prefill or decode, got ${quoted(ph)}`);
  for (const d of plan.dtypes ?? []) if (!DTYPES.includes(d)) throw new PlanError(`dtype must be one of ${DTYPES.join(', ')}, got ${quoted(d)}`);
  if (!plan.dtypes?.length) throw new PlanError('dtypes needs at least one value');
  if (!plan.threads?.length) throw new PlanError('threads needs at least one value');
  for (const t of plan.threads) if (t !== null && (!Number.isInteger(t) || t < 1)) throw new PlanError(`threads values must be integers >= 1, got ${shown(t)}`);
  if (!plan.capacityFactor?.length) throw new PlanError('capacityFactor needs at least one value');
  for (const c of plan.capacityFactor)
    if (!(typeof c === 'number' && Number.isFinite(c) && c >= 0)) throw new PlanError(`capacity factor must be a number >= 0, got ${shown(c)}`);
  if (!plan.residentFraction?.length) throw new PlanError('residentFraction needs at least one value');
  for (const f of plan.residentFraction)
    if (!(typeof f === 'number' && f > 0 && f <= 1)) throw new PlanError(`offload (resident fraction) must be in (0, 1], got ${shown(f)}`);
  if (!['lru', 'lfu', 'lfru', 'static'].includes(plan.offloadPolicy))
    throw new PlanError(`offload policy must be lru, lfu, lfru or static, got ${quoted(plan.offloadPolicy)}`);
  if (typeof plan.coldCache !== 'boolean') throw new MoecapTypeError('ERR_INVALID_OPTION', 'coldCache must be a boolean');
  if (!plan.skew?.length) throw new PlanError('skew needs at least one value');
  for (const s of plan.skew) if (!(typeof s === 'number' && Number.isFinite(s) && s >= 0)) throw new PlanError(`skew must be a number >= 0, got ${shown(s)}`);
  if (plan.trace !== null && typeof plan.trace !== 'string') throw new MoecapTypeError('ERR_INVALID_OPTION', 'trace must be a file path');
  if (!Number.isInteger(plan.repeats) || plan.repeats < 1) throw new PlanError(`repeats must be an integer >= 1, got ${shown(plan.repeats)}`);
  if (plan.budgetSeconds !== null && !(typeof plan.budgetSeconds === 'number' && plan.budgetSeconds > 0))
    throw new PlanError(`budget must be a number of seconds > 0, got ${shown(plan.budgetSeconds)}`);
  if (!Number.isInteger(plan.warmup) || plan.warmup < 0) throw new PlanError(`warmup must be an integer >= 0, got ${shown(plan.warmup)}`);
  if (!Number.isInteger(plan.fidelityTokens) || plan.fidelityTokens < 1)
    throw new PlanError(`fidelity tokens must be an integer >= 1, got ${shown(plan.fidelityTokens)}`);
  if (!Number.isSafeInteger(plan.seed) || plan.seed < 0) throw new PlanError(`seed must be a non-negative integer, got ${shown(plan.seed)}`);
  if (plan.radarMethod !== 'ratio-to-best' && plan.radarMethod !== 'min-max')
    throw new PlanError(`radar method must be ratio-to-best or min-max, got ${quoted(plan.radarMethod)}`);
  if (plan.backend !== 'cpu' && plan.backend !== 'cuda') throw new PlanError(`backend must be cpu or cuda, got ${quoted(plan.backend)}`);
  if (typeof plan.calibrateIfMissing !== 'boolean') throw new MoecapTypeError('ERR_INVALID_OPTION', 'calibrateIfMissing must be a boolean');
  if (typeof plan.bandwidthCheck !== 'boolean') throw new MoecapTypeError('ERR_INVALID_OPTION', 'bandwidthCheck must be a boolean');
  return plan;
}

function cartesian<T>(lists: T[][]): T[][] {
  return lists.reduce<T[][]>((acc, l) => acc.flatMap((a) => l.map((x) => [...a, x])), [[]]);
}

/** The sweep in run order. Prefill configs ignore `steps`, decode configs ignore `seqLen`. */
export function expandPlan(plan: RunPlan): ConfigOptions[] {
  const routings: RoutingSpec[] = plan.trace
    ? [{ kind: 'trace', trace: plan.trace }]
    : [...new Set(plan.skew)].map((s) => (s === 0 ? { kind: 'natural' } : { kind: 'skewed', skew: s }));
  const out: ConfigOptions[] = [];
  const seen = new Set<string>();
  for (const [preset, layers, dtype, threads, cf, res] of cartesian<unknown>([
    plan.presets,
    plan.layers,
    plan.dtypes,
    plan.threads,
    plan.capacityFactor,
    plan.residentFraction,
  ])) {
    for (const [routing, phase, batch, seqLen, steps] of cartesian<unknown>([routings, plan.phases, plan.batch, plan.seqLen, plan.steps])) {
      const o: ConfigOptions = {
        preset: preset as string,
        layers: layers as number,
        phase: phase as 'prefill' | 'decode',
        batch: batch as number,
        seqLen: phase === 'prefill' ? (seqLen as number) : 1,
        steps: phase === 'decode' ? (steps as number) : 1,
        dtype: dtype as string,
        threads: threads as number | null,
        capacityFactor: cf as number,
        residentFraction: res as number,
        routing: routing as RoutingSpec,
        seed: plan.seed,
      };
      const key = JSON.stringify(o);
      if (!seen.has(key)) {
        seen.add(key);
        out.push(o);
      }
    }
  }
  return out;
}

/** A short readable id, unique within a plan (the index keeps it unique). */
export function configId(o: ConfigOptions, index: number): string {
  const r = o.routing.kind === 'skewed' ? `zipf${o.routing.skew}` : o.routing.kind;
  const len = o.phase === 'prefill' ? `s${o.seqLen}` : `n${o.steps}`;
  const th = o.threads === null ? '' : `-t${o.threads}`;
  const cf = o.capacityFactor > 0 ? `-cf${o.capacityFactor}` : '';
  const off = o.residentFraction !== undefined && o.residentFraction < 1 ? `-res${o.residentFraction}` : '';
  return `${index}-${o.preset}-L${o.layers}-${o.phase}-b${o.batch}${len}-${o.dtype}${th}${cf}${off}-${r}`;
}

/** Identifies the plan (what is measured), so `--resume` only continues the same sweep. */
export function planFingerprint(plan: RunPlan): string {
  // Without a model the fingerprint is the one plans had before `model` existed (their results resume).
  const { model, ...rest } = plan;
  return createHash('sha256')
    .update(JSON.stringify(model === null ? rest : plan))
    .digest('hex')
    .slice(0, 16);
}
