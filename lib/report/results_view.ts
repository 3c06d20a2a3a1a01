// The fields of results.json that the report reads, and the one place that maps a results file
// (schema/results.schema.json, written by the CAP runner in lib/cap) onto them. When that format
// changes, only this file changes. Nothing here measures anything: every number in a view is a
// number of the file, or arithmetic on two of them that says which (achieved bytes/s and FLOP/s).
import { SCHEMA_VERSION, validateResults } from '../cap/results';
import { quoted, ReportInputError, shown } from '../errors';
import { money, sig } from './format';

/** The major schema version this report reads (minor/patch additions are fine). */
export const SUPPORTED_MAJOR = SCHEMA_VERSION.split('.')[0];

/** Bad input for the report: one clear line, and no HTML is written. */
export { ReportInputError };

export interface CounterView {
  name: string;
  available: boolean;
  /** where the value came from (perf_event, rusage, RAPL, NVML, …), when available */
  source: string | null;
  /** why not, when unavailable */
  reason: string | null;
}

export interface MachineView {
  cpu: string;
  gpu: string | null;
  cores: number | null;
  memoryBytes: number | null;
  /** the kernel ISA(s) the configs ran with */
  isa: string;
  /** the best ISA this CPU offers */
  bestIsa: string | null;
  backend: string;
  platform: string | null;
}

export interface PeaksView {
  /** 'calibrated': measured on this machine by `moecap calibrate`; 'datasheet': a named table entry. */
  source: 'calibrated' | 'datasheet' | 'unavailable';
  /** the profile or datasheet entry the peaks came from, or why there are none */
  detail: string;
  /** bytes/s */
  memoryBandwidth: number | null;
  /** bytes/s of the offload (slow) tier, when measured */
  slowTierBandwidth: number | null;
  /** FLOP/s per dtype the file gives a peak for (OP/s for int8, which int4 also uses) */
  flops: Record<string, number>;
  /** "projected for <device> from CPU measurements: …" when the peaks are another device's datasheet */
  projected: string | null;
  /** what the runner warned about the peaks (spread, age, ISA ordering, quick calibration) */
  warnings: string[];
  /** windows behind each measured peak, and the statistic kept */
  detail2: Record<string, { statistic: string; samples: number }>;
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
}

export interface OffloadView {
  /** slow-tier bandwidth utilisation */
  tierUtilisation: number | null;
  bytesMoved: number | null;
  /** experts the fast-tier cache holds, hit rate and stall per pass: when the runner records them */
  cacheExperts: number | null;
  hitRate: number | null;
  stallMs: number | null;
}

export interface ConfigView {
  id: string;
  preset: string;
  /** routed experts E and experts per token k of this config's layers */
  experts: number;
  topK: number;
  phase: 'prefill' | 'decode';
  dtype: string;
  batch: number;
  /** tokens in one pass (decode: batch; prefill: batch × sequence length) */
  tokensPerPass: number;
  /** fraction of experts resident in memory (what `moecap run --offload` takes; 1 = no offload); null in files without it */
  residentFraction: number | null;
  /** timed samples behind the percentiles */
  samples: number;
  /** prefill: TTFT p90 and p99 (ms) */
  ttftP90Ms: number | null;
  ttftP99Ms: number | null;
  /** S-MBU / S-MFU above 1: the likely cause the runner recorded */
  smbuAbove1: string | null;
  smfuAbove1: string | null;
  tokensPerSecond: number;
  tpotMs: number | null;
  ttftMs: number | null;
  smbu: number | null;
  smbuReason: string | null;
  smfu: number | null;
  smfuReason: string | null;
  /** bytes read per second (S-MBU's byte count ÷ median time), when the file has the byte count */
  achievedBandwidth: number | null;
  /** FLOPs per token × tokens/s, when the file has the FLOP count */
  achievedFlops: number | null;
  /** the compute peak S-MFU used for this config, FLOP/s */
  peakFlops: number | null;
  peakDtype: string | null;
  distinctExpertsPerLayer: number;
  expectedUniform: number;
  costPerMillionTokens: number | null;
  costBasis: string | null;
  accuracy: AccuracyView | null;
  accuracyReason: string | null;
  task: { name: string; value: number; source: string } | null;
  offload: OffloadView | null;
}

export interface CapPhaseView {
  phase: 'prefill' | 'decode';
  /** raw CAP figures: cost per 1M tokens, accuracy figure, tokens/s */
  points: { id: string; cost: number; accuracy: number; performance: number }[];
  /** radar coordinates in [0, 1], 1 = best */
  radar: { id: string; cost: number; accuracy: number; performance: number }[];
  frontier: string[];
  /** dominated config id → a frontier config that dominates it */
  dominatedBy: Record<string, string>;
  excluded: { id: string; reason: string }[];
}

export interface CapView {
  accuracyAxis: string;
  performanceAxis: string;
  costAxis: string;
  normalisation: string;
  phases: CapPhaseView[];
}

export interface ResultsView {
  schemaVersion: string;
  status: string;
  error: string | null;
  moecapVersion: string;
  createdAt: string;
  updatedAt: string;
  /** the first config's model; `models` lists every preset of the sweep */
  model: ModelView;
  models: ModelView[];
  machine: MachineView;
  peaks: PeaksView;
  counters: CounterView[];
  /** why no counters are listed, when none are */
  countersNote: string | null;
  configs: ConfigView[];
  /** the runner's CAP axes, radar and frontier (null in a file without them: a run in progress) */
  cap: CapView | null;
}

// ---- reading -------------------------------------------------------------------------------

type Obj = Record<string, unknown>;

function fail(where: string, what: string): never {
  throw new ReportInputError(`${where}: ${what}`);
}

const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const unavailable = (v: unknown): v is { available: false; reason: string } => isObj(v) && v.available === false;
const numOr = (v: unknown, d: number | null = null): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : d);
const strOr = (v: unknown, d: string | null = null): string | null => (typeof v === 'string' ? v : d);

function costBasis(cost: Obj): string | null {
  const i = cost.inputs;
  if (!isObj(i)) return null;
  const p = isObj(i.power) ? i.power : {};
  const w = sig(numOr(p.watts));
  const power = p.kind === 'measured' ? `measured power ${w} W (${strOr(p.source, '')})` : `TDP model ${w} W (${strOr(p.source, '')})`;
  const lines = Array.isArray(i.components)
    ? i.components
        .filter(isObj)
        .map((c) => `${strOr(c.name)} ${typeof c.quantity === 'number' ? `${sig(c.quantity)} ${strOr(c.unit, '')} ` : ''}${money(numOr(c.priceUsd))}`)
        .join(' + ')
    : null;
  return `hardware ${money(numOr(cost.hardwarePriceUsd))}${lines ? ` (${lines})` : ''} over ${numOr(i.amortisationYears)} years at ${numOr(i.utilisation)} utilisation, ${power}, $${numOr(i.usdPerKWh)}/kWh`;
}

function config(c: Obj, taskAccuracy: Obj[] | null): ConfigView {
  const o = c.options as Obj;
  const t = c.timing as Obj;
  const r = c.routing as Obj;
  const sm = c.smbu as Obj,
    sf = c.smfu as Obj,
    cost = c.cost as Obj,
    fid = c.fidelity as Obj,
    off = c.offload as Obj;
  const tps = c.tokensPerSecond as number;
  const pass = (t.passSeconds as Obj).median as number;
  const median = (s: unknown) => (isObj(s) ? (s.median as number) * 1e3 : null);
  const task = taskAccuracy?.find((a) => (a.preset === undefined || a.preset === o.preset) && (a.dtype === undefined || a.dtype === o.dtype));
  const layer = c.layer as Obj;
  return {
    id: c.id as string,
    preset: o.preset as string,
    experts: layer.experts as number,
    topK: layer.topK as number,
    phase: o.phase as 'prefill' | 'decode',
    dtype: o.dtype as string,
    batch: o.batch as number,
    tokensPerPass: c.tokensPerPass as number,
    residentFraction: numOr(o.residentFraction),
    samples: c.samples as number,
    ttftP90Ms: isObj(t.ttftSeconds) ? (t.ttftSeconds.p90 as number) * 1e3 : null,
    ttftP99Ms: isObj(t.ttftSeconds) ? (t.ttftSeconds.p99 as number) * 1e3 : null,
    smbuAbove1: unavailable(sm) ? null : strOr(sm.above1),
    smfuAbove1: unavailable(sf) ? null : strOr(sf.above1),
    tokensPerSecond: tps,
    tpotMs: median(t.tpotSeconds),
    ttftMs: median(t.ttftSeconds),
    smbu: unavailable(sm) ? null : (sm.value as number),
    smbuReason: unavailable(sm) ? sm.reason : null,
    smfu: unavailable(sf) ? null : (sf.value as number),
    smfuReason: unavailable(sf) ? sf.reason : null,
    achievedBandwidth: isObj(c.achieved) ? (c.achieved.bytesPerSecond as number) : unavailable(sm) ? null : (sm.bytesPerSample as number) / pass,
    achievedFlops: isObj(c.achieved) ? (c.achieved.flopsPerSecond as number) : unavailable(sf) ? null : (sf.flopsPerToken as number) * tps,
    peakFlops: unavailable(sf) ? null : (sf.peakFlops as number),
    peakDtype: unavailable(sf) ? null : (sf.peakDtype as string),
    distinctExpertsPerLayer: r.meanDistinctExperts as number,
    expectedUniform: r.expectedUniform as number,
    costPerMillionTokens: unavailable(cost) ? null : (cost.usdPer1MTokens as number),
    costBasis: unavailable(cost) ? null : costBasis(cost),
    accuracy: unavailable(fid)
      ? null
      : {
          relativeL2: fid.relativeL2 as number,
          maxAbsError: fid.maxAbsError as number,
          cosine: fid.cosine as number,
          routingAgreement: fid.routingAgreement as number,
          dropRate: fid.dropRate as number,
        },
    accuracyReason: unavailable(fid) ? fid.reason : null,
    task: task ? { name: task.task as string, value: task.accuracy as number, source: task.source as string } : null,
    offload: unavailable(off)
      ? null
      : {
          tierUtilisation: numOr(off.value),
          bytesMoved: numOr(off.bytesMoved),
          cacheExperts: numOr(off.cacheExperts),
          hitRate: numOr(off.hitRate),
          stallMs: numOr(off.stallMs),
        },
  };
}

/** Every config id the CAP summary names (points, radar, frontier, dominatedBy, excluded) must be a
 * config of the file, of that phase: the page looks each one up. */
function checkCapIds(name: string, cap: unknown, phaseOf: Map<string, string>): void {
  if (!isObj(cap) || !isObj(cap.phases)) return;
  for (const [phase, p] of Object.entries(cap.phases)) {
    if (!isObj(p)) continue;
    const pareto = isObj(p.pareto) ? p.pareto : {};
    const dominated = isObj(pareto.dominatedBy) ? pareto.dominatedBy : {};
    const refs: Array<[string, unknown]> = [
      ...(['points', 'radar', 'excluded'] as const).flatMap((k) =>
        (Array.isArray(p[k]) ? (p[k] as unknown[]) : []).map((e): [string, unknown] => [k, isObj(e) ? e.id : e]),
      ),
      ...(Array.isArray(pareto.frontier) ? pareto.frontier : []).map((id): [string, unknown] => ['pareto.frontier', id]),
      ...Object.entries(dominated).flatMap(([k, v]): Array<[string, unknown]> => [
        ['pareto.dominatedBy', k],
        ['pareto.dominatedBy', v],
      ]),
    ];
    for (const [where, id] of refs) {
      const at = `${name}: cap.phases.${phase}.${where}`;
      if (typeof id !== 'string' || !phaseOf.has(id))
        throw new ReportInputError(`${at} names config ${quoted(id)}, which is not a config of this file (corrupt or edited)`);
      if (phaseOf.get(id) !== phase) throw new ReportInputError(`${at} names config ${quoted(id)}, which is a ${phaseOf.get(id)} config (corrupt or edited)`);
    }
  }
}

function capView(cap: unknown): CapView | null {
  if (!isObj(cap)) return null;
  const phases: CapPhaseView[] = [];
  for (const phase of ['decode', 'prefill'] as const) {
    const p = (cap.phases as Obj)[phase];
    if (!isObj(p)) continue;
    const pareto = p.pareto as Obj;
    phases.push({
      phase,
      points: p.points as CapPhaseView['points'],
      radar: p.radar as CapPhaseView['radar'],
      frontier: pareto.frontier as string[],
      dominatedBy: pareto.dominatedBy as Record<string, string>,
      excluded: p.excluded as CapPhaseView['excluded'],
    });
  }
  return {
    accuracyAxis: cap.accuracyAxis as string,
    performanceAxis: cap.performanceAxis as string,
    costAxis: cap.costAxis as string,
    normalisation: `${strOr(cap.radarMethod, '?')}: ${strOr(cap.radarNormalisation, '?')}`,
    phases,
  };
}

/** Maps a parsed results.json onto the view, or throws ReportInputError naming the problem. */
export function toResultsView(raw: unknown, name = 'results.json'): ResultsView {
  if (!isObj(raw)) fail(name, 'expected a JSON object (a moecap results file)');
  const version = raw.schemaVersion;
  if (typeof version !== 'string' || version.split('.')[0] !== SUPPORTED_MAJOR)
    fail(name, `schema version ${shown(version)} is not supported by this report (it reads ${SUPPORTED_MAJOR}.x.x)`);
  if (Array.isArray(raw.configs) && raw.configs.length === 0) fail(name, 'the sweep is empty (no configs): nothing to report');
  const errors = validateResults(raw);
  if (errors.length)
    fail(name, `does not match schema/results.schema.json (${errors.slice(0, 3).join('; ')}${errors.length > 3 ? `; and ${errors.length - 3} more` : ''})`);

  const configsRaw = raw.configs as Obj[];
  const m = raw.machine as Obj;
  const ta = Array.isArray(raw.taskAccuracy) ? (raw.taskAccuracy as Obj[]) : null;
  const configs = configsRaw.map((c) => config(c, ta));
  const ids = new Set<string>();
  for (const c of configs) {
    if (ids.has(c.id)) fail(`${name}.configs`, `config id ${quoted(c.id)} appears twice`);
    ids.add(c.id);
  }
  checkCapIds(name, raw.cap, new Map(configs.map((c) => [c.id, c.phase])));

  const p = raw.peaks as Obj;
  const flops: Record<string, number> = {};
  let peaks: PeaksView;
  const ranOn = isObj(raw.device) && raw.device.kind === 'gpu' ? strOr(raw.device.name, 'GPU') : 'CPU';
  const proj = isObj(raw.projected)
    ? `projected for ${strOr(raw.projected.device, '?')} from ${ranOn} measurements: ${strOr(raw.projected.method, '?')}`
    : null;
  if (unavailable(p))
    peaks = { source: 'unavailable', detail: p.reason, memoryBandwidth: null, slowTierBandwidth: null, flops, projected: null, warnings: [], detail2: {} };
  else {
    const d2: PeaksView['detail2'] = {};
    if (isObj(p.detail))
      for (const [k, d] of Object.entries(p.detail)) if (isObj(d)) d2[k] = { statistic: strOr(d.statistic, '')!, samples: numOr(d.samples, 0)! };
    for (const [d, f] of Object.entries(p.peakFlops as Obj)) if (typeof f === 'number' && f > 0) flops[d] = f;
    peaks = {
      source: p.kind === 'measured' ? 'calibrated' : 'datasheet',
      detail: `${strOr(p.name, '?')}: ${strOr(p.source, '?')}`,
      memoryBandwidth: numOr(p.memoryBandwidth),
      slowTierBandwidth: numOr(p.offloadBandwidth),
      flops,
      projected: proj,
      warnings: Array.isArray(p.warnings) ? (p.warnings as unknown[]).filter((x): x is string => typeof x === 'string') : [],
      detail2: d2,
    };
  }

  const withCounters = configsRaw.find((c) => Array.isArray(c.counters));
  const counters: CounterView[] = withCounters
    ? (withCounters.counters as Obj[]).map((c) => ({
        name: c.name as string,
        available: c.available === true,
        source: c.available === true ? strOr(c.source) : null,
        reason: c.available === true ? null : strOr(c.reason, 'no reason given'),
      }))
    : [];
  const noCounters = configsRaw.map((c) => c.counters).find(unavailable);

  const models: ModelView[] = [];
  for (const c of configsRaw) {
    const co = c.options as Obj,
      l = c.layer as Obj;
    if (models.some((mv) => mv.preset === co.preset && mv.layers === co.layers)) continue;
    models.push({
      preset: co.preset as string,
      layers: co.layers as number,
      hidden: l.hidden as number,
      intermediate: l.intermediate as number,
      experts: l.experts as number,
      topK: l.topK as number,
    });
  }
  const isas = [...new Set(configsRaw.map((c) => (c.layer as Obj).isa as string))];
  return {
    schemaVersion: version,
    status: raw.status as string,
    error: strOr(raw.error),
    moecapVersion: (raw.tool as Obj).version as string,
    createdAt: raw.createdAt as string,
    updatedAt: raw.updatedAt as string,
    model: models[0],
    models,
    machine: {
      cpu: strOr(m.cpuModel, 'unknown CPU')!,
      gpu: strOr(m.gpu),
      cores: numOr(m.hardwareThreads) ?? numOr(m.logicalCpus),
      memoryBytes: numOr(m.totalMemoryBytes),
      isa: isas.join(', '),
      bestIsa: strOr(m.bestIsa),
      backend: strOr(m.backend) ?? (strOr(m.gpu) ? 'GPU' : 'CPU (native addon)'),
      platform: strOr(m.platform),
    },
    peaks,
    counters,
    countersNote: counters.length ? null : noCounters ? noCounters.reason : 'the results list no counters',
    configs,
    cap: capView(raw.cap),
  };
}
