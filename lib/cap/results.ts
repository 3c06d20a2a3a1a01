// The results object of a CAP run (schema/results.schema.json, versioned by `schemaVersion`).
// Every figure is measured, computed from measured figures, or an input that says its source.
import * as fs from 'fs';
import * as path from 'path';
import Ajv from 'ajv';
import type { PeakSource } from './hardware';
import type { PriceTable, CostResult } from './cost';
import type { Summary } from './metrics';
import type { LayerFidelity } from './accuracy';
import type { ParetoResult } from './pareto';
import type { RadarMethod, RadarScore } from './radar';

export const SCHEMA_VERSION = '1.1.0';

export interface Unavailable {
  available: false;
  reason: string;
}

export type Counter =
  { name: string; available: true; value: number; unit?: string; source: string } | { name: string; available: false; unit?: string; reason: string };

export interface RoutingSpec {
  kind: 'natural' | 'skewed' | 'trace';
  /** Zipf exponent (skewed). */
  skew?: number;
  /** Trace file (trace). */
  trace?: string;
}

export interface ConfigOptions {
  preset: string;
  layers: number;
  phase: 'prefill' | 'decode';
  batch: number;
  /** Prefill: tokens per sequence. */
  seqLen: number;
  /** Decode: new tokens per repeat. */
  steps: number;
  dtype: string;
  threads: number | null;
  capacityFactor: number;
  /** Fraction of experts resident (1 = no offload). */
  residentFraction: number;
  routing: RoutingSpec;
  seed: number;
}

/** Expert offload of a config (per sample = all layers of one pass / decode step). */
export interface OffloadResult {
  /** Slow-tier utilisation: tierBandwidth / the measured offload-folder read bandwidth; null without that peak. */
  value: number | null;
  valueReason?: string;
  bytesMoved: number; // mean bytes read from the weights file per sample
  tierBandwidth: number; // bytesMoved / median sample time (B/s)
  ioBandwidth: number | null; // bytes read / time the I/O thread spent reading (B/s)
  hitRate: number | null;
  stallMs: number; // mean time per sample the compute waited for loads
  cacheExperts: number; // resident slots per layer
  residentFraction: number;
  policy: string;
  coldCache: boolean;
  peakBandwidth: number | null;
}

export interface ConfigResult {
  id: string;
  index: number;
  options: ConfigOptions;
  layer: {
    hidden: number;
    intermediate: number;
    experts: number;
    topK: number;
    sharedIntermediate: number;
    dtype: string;
    isa: string;
    threads: number;
    expertBytes: number;
    routerBytes: number;
    sharedBytes: number;
  };
  /** Tokens in one pass (prefill: batch × seqLen; decode: batch). */
  tokensPerPass: number;
  warmupPasses: number;
  /** Timed samples: prefill passes, or decode steps (each through all layers). */
  samples: number;
  timing: {
    /** Seconds per sample summed over layers (native steady-clock pass times). */
    passSeconds: Summary;
    ttftSeconds: Summary | null;
    tpotSeconds: Summary | null;
    source: string;
  };
  tokensPerSecond: number;
  routing: {
    /** Per layer: median over samples of distinct experts A. */
    distinctExperts: number[];
    meanDistinctExperts: number;
    expectedUniform: number;
    /** Per layer: share of assignments per expert, over all timed samples. */
    expertShare: number[][];
    /** Trace/skew: fraction of tokens whose routed set equals the designed one (layer 0, last sample). */
    designAgreement: number | null;
    dropRate: number;
  };
  /** Every timed sample in order: seconds (summed over layers) and distinct experts (mean over layers). */
  passes?: { seconds: number[]; distinctExperts: number[] };
  /** Bytes/s and FLOP/s the config achieved (always recorded, whatever the peaks). */
  achieved: { bytesPerSecond: number; flopsPerSecond: number };
  smbu:
    | {
        value: number;
        bytesPerSample: number;
        peakBandwidth: number;
        peaks: string;
        /** Read bandwidth measured right before and after the config (B/s), when S-MBU is against it. */
        bandwidthNow?: { before: number; after: number };
        /** The same bytes against the profile's bandwidth, for comparison. */
        calibrated?: { value: number; peakBandwidth: number; peaks: string };
        /** Present when value > 1: the likely cause. */
        above1?: string;
      }
    | Unavailable;
  smfu:
    | {
        value: number;
        flopsPerToken: number;
        peakFlops: number;
        peakDtype: string;
        peaks: string;
        peakSamples?: number;
        peakStatistic?: string;
        above1?: string;
      }
    | Unavailable;
  offload: OffloadResult | Unavailable;
  counters: Counter[] | Unavailable;
  cost: CostResult | Unavailable;
  fidelity: (LayerFidelity & { layer: number }) | Unavailable;
}

/** A task accuracy from a full-model evaluation, optionally for one preset and/or dtype only. */
export interface TaskAccuracy {
  task: string;
  accuracy: number;
  source: string;
  preset?: string;
  dtype?: string;
}

export interface CapPhase {
  /** Config ids on the CAP axes (configs without a cost are left out, with the reason). */
  points: Array<{ id: string; cost: number; accuracy: number; performance: number }>;
  excluded: Array<{ id: string; reason: string }>;
  radar: RadarScore[];
  pareto: ParetoResult;
}

/** CAP per phase: prefill and decode tokens/s are different quantities and are not compared. */
export interface CapSummary {
  accuracyAxis: string;
  performanceAxis: string;
  costAxis: string;
  radarMethod: RadarMethod;
  radarNormalisation: string;
  phases: { prefill?: CapPhase; decode?: CapPhase };
}

export interface Results {
  schemaVersion: string;
  tool: { name: 'moecap'; version: string };
  status: 'running' | 'complete' | 'interrupted';
  createdAt: string;
  updatedAt: string;
  planFingerprint: string;
  plan: Record<string, unknown>;
  machine: Record<string, unknown>;
  peaks: PeakSource | Unavailable;
  prices: PriceTable;
  /** Where the layers ran: the CPU or a GPU (device name as the backend reports it). */
  device: { kind: 'cpu' | 'gpu'; name: string; count: number };
  /** Peaks of another device applied to these measurements: a projection, never a run on it. */
  projected: { device: string; method: string } | null;
  taskAccuracy: TaskAccuracy[] | null;
  configs: ConfigResult[];
  cap: CapSummary | null;
  /** Why a run stopped early (status 'interrupted'). */
  error?: string;
}

export function schemaPath(): string {
  // lib/cap/results.ts (ts-jest) and dist/cap/results.js both sit two levels under the package root.
  return path.join(__dirname, '..', '..', 'schema', 'results.schema.json');
}

let validator: (((v: unknown) => boolean) & { errors?: unknown }) | null = null;

/** Validates against schema/results.schema.json; returns the error messages (empty when valid). */
export function validateResults(value: unknown): string[] {
  if (!validator) {
    const ajv = new Ajv({ allErrors: true, strict: false });
    validator = ajv.compile(JSON.parse(fs.readFileSync(schemaPath(), 'utf8')));
  }
  if (validator(value)) return [];
  const errs = (validator.errors ?? []) as Array<{ instancePath: string; message?: string }>;
  return errs.map((e) => `${e.instancePath || '/'} ${e.message ?? 'invalid'}`);
}
