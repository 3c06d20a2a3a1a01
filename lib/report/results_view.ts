// The fields of results.json that the report reads, and the one place that maps a results file
// onto them. The CAP runner (lib/cap, schema/results.schema.json) owns the file format; when that
// format changes, only `toResultsView` changes. Nothing here computes a measurement: every number
// in a view is a number from the file (null where the file says it is unavailable).

/** The results.json schema version this report reads. */
export const SUPPORTED_SCHEMA_VERSION = 1;

/** Bad input for the report: one clear line, and no HTML is written. */
export class ReportInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReportInputError';
  }
}

export interface CounterView {
  name: string;
  available: boolean;
  unit: string | null;
  /** where the value came from (perf_event, rusage, RAPL, NVML, …), when available */
  source: string | null;
  /** why not, when unavailable */
  reason: string | null;
}

export interface MachineView {
  cpu: string;
  gpu: string | null;
  cores: number;
  memoryBytes: number | null;
  isa: string;
  backend: string;
}

export interface PeaksView {
  /** 'calibrated': measured on this machine by `moecap calibrate`; 'datasheet': a named table entry. */
  source: 'calibrated' | 'datasheet';
  /** the profile or datasheet entry the peaks came from */
  detail: string;
  /** bytes/s */
  memoryBandwidth: number;
  /** bytes/s of the offload (slow) tier, when measured */
  slowTierBandwidth: number | null;
  /** FLOP/s per dtype; a dtype missing here has no peak, and its S-MFU is unavailable */
  flops: Record<string, number>;
}

export interface ModelView {
  preset: string;
  layers: number;
  hidden: number;
  intermediate: number;
  /** routed experts E */
  experts: number;
  /** experts per token k */
  topK: number;
}

export interface AccuracyView {
  relativeL2: number;
  maxAbsError: number;
  cosine: number;
  routingAgreement: number;
  dropRate: number;
  task: { name: string; value: number; source: string } | null;
}

export interface OffloadView {
  /** fraction of experts kept on the slow tier */
  fraction: number;
  /** experts the fast-tier cache holds */
  cacheExperts: number | null;
  hitRate: number | null;
  /** time a pass waited on the slow tier, ms */
  stallMs: number | null;
}

export interface ConfigView {
  id: string;
  phase: 'prefill' | 'decode';
  dtype: string;
  batch: number;
  /** tokens in one pass (decode: batch; prefill: batch × sequence length) */
  tokensPerPass: number;
  offloadFraction: number;
  tokensPerSecond: number;
  tpotMs: number | null;
  ttftMs: number | null;
  smbu: number | null;
  smfu: number | null;
  /** bytes/s and FLOP/s achieved in the timed passes */
  achievedBandwidth: number;
  achievedFlops: number;
  slowTierBandwidth: number | null;
  distinctExpertsPerLayer: number;
  costPerMillionTokens: number | null;
  costBasis: string | null;
  accuracy: AccuracyView;
  offload: OffloadView | null;
  /** the runner's radar coordinates in [0, 1], when it computed them */
  radar: { cost: number; accuracy: number; performance: number } | null;
}

export interface ParetoView {
  frontier: string[];
  /** dominated config id → the id of a config that dominates it */
  dominatedBy: Record<string, string>;
}

export interface ResultsView {
  schemaVersion: number;
  moecapVersion: string;
  createdAt: string;
  model: ModelView;
  machine: MachineView;
  peaks: PeaksView;
  counters: CounterView[];
  configs: ConfigView[];
  /** the runner's frontier, when the file has one */
  pareto: ParetoView | null;
  /** how the runner normalised the radar axes, when it says */
  radarNote: string | null;
}

// ---- reading -------------------------------------------------------------------------------

type Obj = Record<string, unknown>;

function fail(where: string, what: string): never {
  throw new ReportInputError(`${where}: ${what}`);
}

function obj(v: unknown, where: string): Obj {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) fail(where, 'expected an object');
  return v as Obj;
}

function num(o: Obj, key: string, where: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(`${where}.${key}`, `expected a finite number, got ${JSON.stringify(v)}`);
  return v;
}

function numOrNull(o: Obj, key: string, where: string): number | null {
  return o[key] === undefined || o[key] === null ? null : num(o, key, where);
}

function str(o: Obj, key: string, where: string): string {
  const v = o[key];
  if (typeof v !== 'string') fail(`${where}.${key}`, `expected a string, got ${JSON.stringify(v)}`);
  return v;
}

function strOrNull(o: Obj, key: string, where: string): string | null {
  return o[key] === undefined || o[key] === null ? null : str(o, key, where);
}

function counter(v: unknown, where: string): CounterView {
  const c = obj(v, where);
  const available = c.available === true;
  return {
    name: str(c, 'name', where),
    available,
    unit: strOrNull(c, 'unit', where),
    source: available ? strOrNull(c, 'source', where) : null,
    reason: available ? null : strOrNull(c, 'reason', where) ?? 'no reason given',
  };
}

function config(v: unknown, where: string): ConfigView {
  const c = obj(v, where);
  const phase = str(c, 'phase', where);
  if (phase !== 'prefill' && phase !== 'decode') fail(`${where}.phase`, `expected 'prefill' or 'decode', got '${phase}'`);
  const a = obj(c.accuracy, `${where}.accuracy`);
  const aw = `${where}.accuracy`;
  const task = a.task === undefined || a.task === null ? null : obj(a.task, `${aw}.task`);
  const off = c.offload === undefined || c.offload === null ? null : obj(c.offload, `${where}.offload`);
  const radar = c.radar === undefined || c.radar === null ? null : obj(c.radar, `${where}.radar`);
  return {
    id: str(c, 'id', where),
    phase,
    dtype: str(c, 'dtype', where),
    batch: num(c, 'batch', where),
    tokensPerPass: num(c, 'tokensPerPass', where),
    offloadFraction: numOrNull(c, 'offloadFraction', where) ?? 0,
    tokensPerSecond: num(c, 'tokensPerSecond', where),
    tpotMs: numOrNull(c, 'tpotMs', where),
    ttftMs: numOrNull(c, 'ttftMs', where),
    smbu: numOrNull(c, 'smbu', where),
    smfu: numOrNull(c, 'smfu', where),
    achievedBandwidth: num(c, 'achievedBandwidth', where),
    achievedFlops: num(c, 'achievedFlops', where),
    slowTierBandwidth: numOrNull(c, 'slowTierBandwidth', where),
    distinctExpertsPerLayer: num(c, 'distinctExpertsPerLayer', where),
    costPerMillionTokens: numOrNull(c, 'costPerMillionTokens', where),
    costBasis: strOrNull(c, 'costBasis', where),
    accuracy: {
      relativeL2: num(a, 'relativeL2', aw),
      maxAbsError: num(a, 'maxAbsError', aw),
      cosine: num(a, 'cosine', aw),
      routingAgreement: num(a, 'routingAgreement', aw),
      dropRate: num(a, 'dropRate', aw),
      task: task && { name: str(task, 'name', `${aw}.task`), value: num(task, 'value', `${aw}.task`), source: str(task, 'source', `${aw}.task`) },
    },
    offload: off && {
      fraction: num(off, 'fraction', `${where}.offload`),
      cacheExperts: numOrNull(off, 'cacheExperts', `${where}.offload`),
      hitRate: numOrNull(off, 'hitRate', `${where}.offload`),
      stallMs: numOrNull(off, 'stallMs', `${where}.offload`),
    },
    radar: radar && {
      cost: num(radar, 'cost', `${where}.radar`),
      accuracy: num(radar, 'accuracy', `${where}.radar`),
      performance: num(radar, 'performance', `${where}.radar`),
    },
  };
}

/** Maps a parsed results.json onto the view, or throws ReportInputError naming the field. */
export function toResultsView(raw: unknown, name = 'results.json'): ResultsView {
  const r = obj(raw, name);
  if (r.schemaVersion !== SUPPORTED_SCHEMA_VERSION)
    fail(name, `schema version ${JSON.stringify(r.schemaVersion)} is not supported by this report (it reads version ${SUPPORTED_SCHEMA_VERSION})`);
  const m = obj(r.model, `${name}.model`);
  const mw = `${name}.model`;
  const mach = obj(r.machine, `${name}.machine`);
  const hw = `${name}.machine`;
  const p = obj(r.peaks, `${name}.peaks`);
  const pw = `${name}.peaks`;
  const source = str(p, 'source', pw);
  if (source !== 'calibrated' && source !== 'datasheet') fail(`${pw}.source`, `expected 'calibrated' or 'datasheet', got '${source}'`);
  const flopsObj = obj(p.flops, `${pw}.flops`);
  const flops: Record<string, number> = {};
  for (const k of Object.keys(flopsObj)) flops[k] = num(flopsObj, k, `${pw}.flops`);
  if (!Array.isArray(r.configs)) fail(`${name}.configs`, 'expected an array of configs');
  if (r.configs.length === 0) fail(name, 'the sweep is empty (no configs): nothing to report');
  const configs = r.configs.map((c, i) => config(c, `${name}.configs[${i}]`));
  const ids = new Set<string>();
  for (const c of configs) {
    if (ids.has(c.id)) fail(`${name}.configs`, `config id '${c.id}' appears twice`);
    ids.add(c.id);
  }
  if (!Array.isArray(r.counters)) fail(`${name}.counters`, 'expected an array');
  let pareto: ParetoView | null = null;
  if (r.pareto !== undefined && r.pareto !== null) {
    const po = obj(r.pareto, `${name}.pareto`);
    if (!Array.isArray(po.frontier)) fail(`${name}.pareto.frontier`, 'expected an array of config ids');
    const dom = obj(po.dominatedBy ?? {}, `${name}.pareto.dominatedBy`);
    for (const id of [...po.frontier, ...Object.keys(dom), ...Object.values(dom)])
      if (typeof id !== 'string' || !ids.has(id)) fail(`${name}.pareto`, `names config '${String(id)}', which is not in configs`);
    pareto = { frontier: po.frontier as string[], dominatedBy: dom as Record<string, string> };
  }
  return {
    schemaVersion: SUPPORTED_SCHEMA_VERSION,
    moecapVersion: str(r, 'moecapVersion', name),
    createdAt: str(r, 'createdAt', name),
    model: {
      preset: str(m, 'preset', mw),
      layers: num(m, 'layers', mw),
      hidden: num(m, 'hidden', mw),
      intermediate: num(m, 'intermediate', mw),
      experts: num(m, 'experts', mw),
      topK: num(m, 'topK', mw),
    },
    machine: {
      cpu: str(mach, 'cpu', hw),
      gpu: strOrNull(mach, 'gpu', hw),
      cores: num(mach, 'cores', hw),
      memoryBytes: numOrNull(mach, 'memoryBytes', hw),
      isa: str(mach, 'isa', hw),
      backend: str(mach, 'backend', hw),
    },
    peaks: {
      source,
      detail: str(p, 'detail', pw),
      memoryBandwidth: num(p, 'memoryBandwidth', pw),
      slowTierBandwidth: numOrNull(p, 'slowTierBandwidth', pw),
      flops,
    },
    counters: r.counters.map((c, i) => counter(c, `${name}.counters[${i}]`)),
    configs,
    pareto,
    radarNote: strOrNull(r, 'radarNote', name),
  };
}
