// Peak figures that S-MBU and S-MFU divide by. Either a named datasheet entry (dense peaks, no
// structured sparsity) or a profile measured on this machine by `moecap calibrate`. Every
// result names the peaks it used (`PeakSource`).
import { MoecapRangeError, PlanError } from '../errors';
import * as os from 'os';
import * as path from 'path';
import { profileWarnings } from './ceilings';

export interface DatasheetEntry {
  name: string;
  label: string;
  kind: 'gpu';
  tdpW: number;
  /** Memory bandwidth, bytes/s. */
  memoryBandwidth: number;
  memoryBytes: number;
  /** Dense peaks, FLOP/s (OP/s for int8). `null` where the vendor publishes none. */
  peakFlops: { f32: number | null; bf16: number | null; int8: number | null };
  source: string;
}

const T = 1e12;
const TB = 1e12;
const GB = 1e9;
const GIB = 1024 ** 3;

/** Vendor datasheets (dense tensor-core peaks; fp32 = non-tensor CUDA-core peak). */
export const DATASHEETS: readonly DatasheetEntry[] = [
  {
    name: 'h100-sxm',
    label: 'NVIDIA H100 SXM5 80GB',
    kind: 'gpu',
    tdpW: 700,
    memoryBandwidth: 3.35 * TB,
    memoryBytes: 80 * GIB,
    peakFlops: { f32: 67 * T, bf16: 989.4 * T, int8: 1978.9 * T },
    source: 'NVIDIA H100 Tensor Core GPU datasheet (dense figures)',
  },
  {
    name: 'h100-pcie',
    label: 'NVIDIA H100 PCIe 80GB',
    kind: 'gpu',
    tdpW: 350,
    memoryBandwidth: 2.0 * TB,
    memoryBytes: 80 * GIB,
    peakFlops: { f32: 51 * T, bf16: 756.5 * T, int8: 1513 * T },
    source: 'NVIDIA H100 Tensor Core GPU datasheet (dense figures)',
  },
  {
    name: 'h200',
    label: 'NVIDIA H200 SXM 141GB',
    kind: 'gpu',
    tdpW: 700,
    memoryBandwidth: 4.8 * TB,
    memoryBytes: 141 * GB,
    peakFlops: { f32: 67 * T, bf16: 989.4 * T, int8: 1978.9 * T },
    source: 'NVIDIA H200 Tensor Core GPU datasheet (dense figures)',
  },
  {
    name: 'a100-sxm',
    label: 'NVIDIA A100 SXM4 80GB',
    kind: 'gpu',
    tdpW: 400,
    memoryBandwidth: 2.039 * TB,
    memoryBytes: 80 * GIB,
    peakFlops: { f32: 19.5 * T, bf16: 312 * T, int8: 624 * T },
    source: 'NVIDIA A100 Tensor Core GPU datasheet (dense figures)',
  },
  {
    name: 'a100-pcie',
    label: 'NVIDIA A100 PCIe 80GB',
    kind: 'gpu',
    tdpW: 300,
    memoryBandwidth: 1.935 * TB,
    memoryBytes: 80 * GIB,
    peakFlops: { f32: 19.5 * T, bf16: 312 * T, int8: 624 * T },
    source: 'NVIDIA A100 Tensor Core GPU datasheet (dense figures)',
  },
  {
    name: 'rtx-4090',
    label: 'NVIDIA GeForce RTX 4090',
    kind: 'gpu',
    tdpW: 450,
    memoryBandwidth: 1.008 * TB,
    memoryBytes: 24 * GIB,
    peakFlops: { f32: 82.6 * T, bf16: 165.2 * T, int8: 660.6 * T },
    source: 'NVIDIA Ada Lovelace architecture whitepaper (bf16 with fp32 accumulate, dense)',
  },
  {
    name: 'a6000',
    label: 'NVIDIA RTX A6000',
    kind: 'gpu',
    tdpW: 300,
    memoryBandwidth: 768 * GB,
    memoryBytes: 48 * GIB,
    peakFlops: { f32: 38.7 * T, bf16: 154.8 * T, int8: 309.7 * T },
    source: 'NVIDIA RTX A6000 datasheet (dense figures)',
  },
  {
    name: 'l40s',
    label: 'NVIDIA L40S',
    kind: 'gpu',
    tdpW: 350,
    memoryBandwidth: 864 * GB,
    memoryBytes: 48 * GIB,
    peakFlops: { f32: 91.6 * T, bf16: 362.05 * T, int8: 733 * T },
    source: 'NVIDIA L40S datasheet (dense figures)',
  },
];

/**
 * A measured figure. `repeats`: windows behind it. Compute peaks: the best window, `spread` =
 * how far apart the best few windows are; bandwidths: the p90, `spread` = (p90 − p10)/p50
 * (ceilings.ts). Older profiles: the median of the repeats, `spread` = (max − min)/median.
 */
export interface MeasuredFigure {
  value: number;
  unit: string;
  repeats: number;
  spread: number;
  min?: number;
  max?: number;
  /** How `value` was taken from the windows, in words. */
  statistic?: string;
  percentiles?: { p10: number; p50: number; p90: number };
}

/** What `moecap calibrate` saves for this machine (shape; calibration itself lives elsewhere). */
export interface CpuMeasuredProfile {
  kind: 'cpu-measured';
  key: string;
  cpuModel: string;
  cores: number;
  memoryBytes: number;
  isa: string;
  measuredAt: string;
  readBandwidth: MeasuredFigure;
  copyBandwidth?: MeasuredFigure;
  peakFlops: { f32?: MeasuredFigure; bf16?: MeasuredFigure; int8?: MeasuredFigure };
  /** Cold sequential read of a file in the offload folder. */
  offloadReadBandwidth?: MeasuredFigure;
  /** Not measurable from user space here; cost.ts takes a TDP from its price table instead. */
  tdpW?: number;
  /** A short calibration a first `moecap run` took itself. */
  quick?: boolean;
  /** Seconds the calibration was allowed; rounds of windows it ran. */
  budgetSeconds?: number;
  rounds?: number;
}

/** How one peak was taken: the statistic, the windows behind it, their spread. */
export interface PeakDetail {
  statistic: string;
  samples: number;
  spread: number;
}

/** The peaks one result used, and where they came from. */
export interface PeakSource {
  kind: 'datasheet' | 'measured';
  name: string;
  memoryBandwidth: number | null;
  peakFlops: { f32: number | null; bf16: number | null; int8: number | null };
  offloadBandwidth: number | null;
  tdpW: number | null;
  source: string;
  /** Measured profiles: the kernel set calibrated (avx512, avx2, neon…), when, how each figure was
   * taken, and what a reader should be warned of. */
  isa?: string;
  measuredAt?: string;
  detail?: { memoryBandwidth?: PeakDetail; f32?: PeakDetail; bf16?: PeakDetail; int8?: PeakDetail; offloadBandwidth?: PeakDetail };
  warnings?: string[];
}

/** The datasheet entry of a GPU as NVML or the driver names it ("NVIDIA H100 80GB HBM3"), or null. */
export function datasheetForGpuName(deviceName: string): DatasheetEntry | null {
  const n = deviceName.toLowerCase().replace(/[-_]+/g, ' ');
  const pick = (name: string) => DATASHEETS.find((d) => d.name === name) ?? null;
  if (/\bh200\b/.test(n)) return pick('h200');
  if (/\bh100\b/.test(n)) return pick(/pcie|nvl/.test(n) ? 'h100-pcie' : 'h100-sxm');
  if (/\ba100\b/.test(n)) return pick(/pcie/.test(n) ? 'a100-pcie' : 'a100-sxm');
  if (/\brtx 4090\b/.test(n)) return pick('rtx-4090');
  if (/\brtx a6000\b/.test(n)) return pick('a6000');
  if (/\bl40s\b/.test(n)) return pick('l40s');
  return null;
}

export function findDatasheet(name: string): DatasheetEntry {
  const e = DATASHEETS.find((d) => d.name === name.toLowerCase());
  if (!e) throw new PlanError(`unknown hardware '${name}' (known: ${DATASHEETS.map((d) => d.name).join(', ')})`);
  return e;
}

export function peaksFromDatasheet(e: DatasheetEntry): PeakSource {
  return {
    kind: 'datasheet',
    name: e.name,
    memoryBandwidth: e.memoryBandwidth,
    peakFlops: { ...e.peakFlops },
    offloadBandwidth: null,
    tdpW: e.tdpW,
    source: e.source,
  };
}

function detailOf(f: MeasuredFigure | undefined): PeakDetail | undefined {
  return f ? { statistic: f.statistic ?? `median of ${f.repeats} repeats`, samples: f.repeats, spread: f.spread } : undefined;
}

export function peaksFromProfile(p: CpuMeasuredProfile, now: Date = new Date()): PeakSource {
  const detail: NonNullable<PeakSource['detail']> = {};
  const put = (k: keyof typeof detail, f: MeasuredFigure | undefined) => {
    const d = detailOf(f);
    if (d) detail[k] = d;
  };
  put('memoryBandwidth', p.readBandwidth);
  put('f32', p.peakFlops.f32);
  put('bf16', p.peakFlops.bf16);
  put('int8', p.peakFlops.int8);
  put('offloadBandwidth', p.offloadReadBandwidth);
  return {
    kind: 'measured',
    name: p.key,
    memoryBandwidth: p.readBandwidth.value,
    peakFlops: { f32: p.peakFlops.f32?.value ?? null, bf16: p.peakFlops.bf16?.value ?? null, int8: p.peakFlops.int8?.value ?? null },
    offloadBandwidth: p.offloadReadBandwidth?.value ?? null,
    tdpW: p.tdpW ?? null,
    source: `moecap calibrate${p.quick ? ' (quick, by the first run)' : ''} on ${p.cpuModel}, ${p.measuredAt}`,
    isa: p.isa,
    measuredAt: p.measuredAt,
    detail,
    warnings: profileWarnings(p, now).map((w) => w.message),
  };
}

/**
 * The compute peak for a weight dtype: f32 and fp8 → fp32 (fp8 decodes to fp32 FMAs); bf16 → bf16;
 * int8/int4/mxfp4 → the int8 peak when the source gives one (those kernels compute with int8 dot
 * products), else none.
 */
export function computePeakFor(dtype: string, peaks: Pick<PeakSource, 'peakFlops'>): { value: number | null; which: string } {
  switch (dtype) {
    case 'f32':
    case 'fp8':
      return { value: peaks.peakFlops.f32, which: 'f32' };
    case 'bf16':
      return { value: peaks.peakFlops.bf16, which: 'bf16' };
    case 'int8':
    case 'int4':
    case 'mxfp4':
      return { value: peaks.peakFlops.int8, which: 'int8' };
    default:
      throw new MoecapRangeError('ERR_INVALID_ARGUMENT', `unknown dtype '${dtype}'`);
  }
}

/**
 * The compute peak that bounds a predicted time (plan-cache, ep-plan): computePeakFor's, except
 * that bf16 on a measured CPU without a bf16 peak is the f32 peak. `moecap calibrate` times a
 * bf16 loop only where the kernels have a bf16 dot instruction (always on the avx512 set, which
 * requires BF16; on NEON where the CPU has it); elsewhere the engine's bf16 kernels widen the
 * weights to fp32 and use the fp32 FMAs, so those bound their time. An avx512 profile without the
 * figure is incomplete, not a widening machine: no bound. S-MFU keeps computePeakFor: a
 * utilisation is against the precision's own unit, or unavailable.
 */
export function timeBoundPeakFor(dtype: string, peaks: Pick<PeakSource, 'peakFlops' | 'kind' | 'isa'>): { value: number | null; which: string; note?: string } {
  const own = computePeakFor(dtype, peaks);
  const widens = peaks.kind === 'measured' && peaks.isa !== 'avx512';
  if (own.value === null && dtype === 'bf16' && widens && peaks.peakFlops.f32 !== null)
    return { value: peaks.peakFlops.f32, which: 'f32', note: 'bf16 widened to fp32 FMAs: no bf16 dot here' };
  return own;
}

/** A stable key for this machine's measured profile: CPU model, logical CPUs, memory (GiB). */
export function machineKey(cpuModel: string, logicalCpus: number, memoryBytes: number): string {
  const model = cpuModel
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');
  return `${model}-${logicalCpus}c-${Math.round(memoryBytes / 1024 ** 3)}g`;
}

/** Where `moecap calibrate` keeps the profile of a machine: $XDG_CACHE_HOME or ~/.cache, moecap/profiles/<key>.json. */
export function defaultProfilePath(key: string, env: NodeJS.ProcessEnv = process.env, home = os.homedir()): string {
  const base = env.XDG_CACHE_HOME ? env.XDG_CACHE_HOME : path.join(home, '.cache');
  return path.join(base, 'moecap', 'profiles', `${key}.json`);
}
