// S-MBU and S-MFU of each rank of an expert-parallel run, with the single-process metrics' own
// functions (cap/metrics.ts): the bytes the rank's expert compute read (the weights of the experts
// it computed rows for, at the run's dtype, and those rows' activations) over its compute time,
// against the read bandwidth the rank measured around its passes; the FLOPs of the rows it computed
// (routed rows and its tokens through the shared expert) over that time, against the compute peak
// it measured for the dtype. Pure arithmetic on measured figures; nothing here measures.
import { expertRowFlops, layerBytes, smbu, smfu, type LayerBytes } from './cap/metrics';
import { bandwidthNow } from './cap/scoring';
import { computePeakFor } from './cap/hardware';
import { likelyCauseAbove1 } from './cap/ceilings';
import type { CeilingsNow } from './cap/calibrate';
import type { Unavailable } from './cap/results';
import type { EpRankStats } from './ep';

/** A rank's ceilings, measured in the run by the rank itself (every rank at once). */
export interface RankCeiling {
  threads: number;
  /** Best read window (B/s) before the timed passes and after them. */
  bandwidthBefore: number;
  bandwidthAfter: number;
  /** Best compute window before and after the timed passes (FLOP/s; int8 in OP/s), null where the ISA has none. */
  peakFlops: { f32: number | null; bf16: number | null; int8: number | null };
  statistic: string;
}

/** A rank's ceilings from its windows before and after its passes: a peak is the best window of
 *  both (other work only slows a window down), the bandwidths stay apart as the single-process run's. */
export function rankCeiling(before: CeilingsNow, after: CeilingsNow): RankCeiling {
  const best = (u: 'f32' | 'bf16' | 'int8') => {
    const v = [before.peakFlops[u]?.value, after.peakFlops[u]?.value].filter((x): x is number => x !== undefined);
    return v.length ? Math.max(...v) : null;
  };
  const n = (before.peakFlops.f32?.repeats ?? 0) + (after.peakFlops.f32?.repeats ?? 0);
  return {
    threads: before.threads,
    bandwidthBefore: before.readBandwidth,
    bandwidthAfter: after.readBandwidth,
    peakFlops: { f32: best('f32'), bf16: best('bf16'), int8: best('int8') },
    statistic: `read: best window before and after the passes; compute: best of ${n} windows a unit, before and after`,
  };
}

/** What a rank's expert compute did in one pass (summed over the layers) or per pass (a mean). */
export interface RankWork {
  /** Expert compute time: the routed rows plus the shared expert over its tokens. */
  seconds: number;
  rows: number;
  sharedRows: number;
  /** Distinct experts computed (summed over the layers). */
  experts: number;
  bytes: LayerBytes;
  flops: number;
}

export interface LayerShape {
  hidden: number;
  intermediate: number;
  sharedIntermediate: number;
}

const ZERO_BYTES: LayerBytes = { router: 0, experts: 0, shared: 0, attention: 0, activations: 0, total: 0 };

function addBytes(a: LayerBytes, b: LayerBytes, w = 1): LayerBytes {
  const k = Object.keys(ZERO_BYTES) as Array<keyof LayerBytes>;
  return Object.fromEntries(k.map((f) => [f, a[f] + w * b[f]])) as unknown as LayerBytes;
}

/** One pass of one rank: its layers' work, summed. The router is not part of the expert compute time. */
export function passWork(layers: readonly EpRankStats[], shape: LayerShape): RankWork {
  let w: RankWork = { seconds: 0, rows: 0, sharedRows: 0, experts: 0, bytes: ZERO_BYTES, flops: 0 };
  for (const s of layers) {
    const bytes = layerBytes({
      distinctExperts: s.expertsComputed,
      expertBytes: s.expertBytes,
      routerBytes: 0,
      sharedBytes: s.sharedBytes,
      activationBytes: (s.rowsComputed + s.sharedRows) * s.rowBytes,
    });
    w = {
      seconds: w.seconds + (s.computeNs + s.sharedNs) / 1e9,
      rows: w.rows + s.rowsComputed,
      sharedRows: w.sharedRows + s.sharedRows,
      experts: w.experts + s.expertsComputed,
      bytes: addBytes(w.bytes, bytes),
      flops:
        w.flops + s.rowsComputed * expertRowFlops(shape.hidden, shape.intermediate) + s.sharedRows * expertRowFlops(shape.hidden, shape.sharedIntermediate),
    };
  }
  return w;
}

/** The mean over passes of each figure. */
export function meanWork(passes: readonly RankWork[]): RankWork {
  const n = Math.max(1, passes.length);
  const m = (f: (w: RankWork) => number) => passes.reduce((a, w) => a + f(w), 0) / n;
  return {
    seconds: m((w) => w.seconds),
    rows: m((w) => w.rows),
    sharedRows: m((w) => w.sharedRows),
    experts: m((w) => w.experts),
    bytes: passes.reduce((a, w) => addBytes(a, w.bytes, 1 / n), ZERO_BYTES),
    flops: m((w) => w.flops),
  };
}

export type RankSmbu =
  | { value: number; bytesPerPass: number; seconds: number; peakBandwidth: number; bandwidthNow: { before: number; after: number }; above1?: string }
  | Unavailable;
export type RankSmfu = { value: number; flopsPerPass: number; seconds: number; peakFlops: number; peakDtype: string; above1?: string } | Unavailable;

/**
 * A rank's S-MBU (mean bytes per pass / mean compute seconds per pass / its bandwidth, the higher of
 * its before and after windows, as the single-process run's bandwidthNow) and S-MFU (passes per
 * second · FLOPs per pass / its peak of the dtype).
 */
export function rankUtilisation(work: RankWork, ceiling: RankCeiling | Unavailable, dtype: string): { smbu: RankSmbu; smfu: RankSmfu } {
  if ('available' in ceiling) return { smbu: ceiling, smfu: ceiling };
  if (!(work.seconds > 0) || work.rows + work.sharedRows === 0) {
    const none: Unavailable = { available: false, reason: 'this rank computed no rows in the timed passes' };
    return { smbu: none, smfu: none };
  }
  const bw = bandwidthNow(ceiling.bandwidthBefore, ceiling.bandwidthAfter);
  const mbu = smbu(work.bytes.total, work.seconds, bw.value);
  const smbuR: RankSmbu = {
    value: mbu,
    bytesPerPass: work.bytes.total,
    seconds: work.seconds,
    peakBandwidth: bw.value,
    bandwidthNow: { before: bw.before, after: bw.after },
    ...(mbu > 1 ? { above1: likelyCauseAbove1('S-MBU', { bandwidthBefore: bw.before, bandwidthAfter: bw.after, workingSetBytes: work.bytes.total }) } : {}),
  };
  const cp = computePeakFor(dtype, ceiling);
  let smfuR: RankSmfu;
  if (cp.value) {
    const mfu = smfu(1 / work.seconds, work.flops, cp.value);
    smfuR = {
      value: mfu,
      flopsPerPass: work.flops,
      seconds: work.seconds,
      peakFlops: cp.value,
      peakDtype: cp.which,
      ...(mfu > 1 ? { above1: likelyCauseAbove1('S-MFU', {}) } : {}),
    };
  } else smfuR = { available: false, reason: `this rank's CPU has no ${cp.which} compute loop` };
  return { smbu: smbuR, smfu: smfuR };
}
