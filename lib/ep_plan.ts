// Expert parallelism on paper: the bytes each rank sends per MoE layer pass (counted with the
// wire sizes the split forward packs, native/core/ep/ep_wire.h), the time that takes on a link,
// the compute time per layer from a device's peaks, and the batch from which the layer is
// communication-bound. `moecap ep-plan` prints it; `--check` compares it with a measured
// `moecap run --ep` result (ep_results.json).
import { MoecapRangeError } from './errors';
import { loadAddon } from './native/loader';
import { callNative } from './native/call';
import { bytesPerWeight, expertBytes, type ModelPreset } from './cap/presets';
import { timeBoundPeakFor, type PeakSource } from './cap/hardware';
import { expectedDistinctUniform, flopsPerToken } from './cap/metrics';

/** Bytes of one expert-parallel pass's wire formats (ep_wire.h). */
export interface EpWireSizes {
  /** A token's activation row as the expert kernels consume it (int8/int4: per-32 scales and sums). */
  activationBytes: number;
  /** One dispatched row: activation row + router weight, padded to 64 bytes. */
  recordBytes: number;
  /** One expert output row back to its origin: fp32, hidden padded to 32. */
  resultBytes: number;
  /** The per-expert row counts sent to each peer before the rows. */
  countsBytes: number;
}

export function epWireSizes(dtype: string, hidden: number, experts: number): EpWireSizes {
  const addon = loadAddon();
  return callNative(() => addon.epWireSizes(dtype, hidden, experts));
}

/** Bytes one rank sends in one pass: the counts to each peer, its rows out, the results of the rows it received back. */
export function epBytesSent(w: EpWireSizes, ranks: number, rowsSent: number, rowsReceived: number): number {
  return (ranks - 1) * w.countsBytes + rowsSent * w.recordBytes + rowsReceived * w.resultBytes;
}

/** A link between ranks: per-direction bandwidth and one-way small-message latency. */
export interface LinkFigures {
  name: string;
  label: string;
  bandwidthBytesPerSecond: number;
  latencySeconds: number;
  source: string;
}

// Assumptions, not measurements: line rates from the standards/datasheets, latencies typical
// one-way small-message figures. Replace them with `moecap run --ep`'s calibrated link
// (ep-plan --check) for a real cluster.
export const LINKS: readonly LinkFigures[] = [
  {
    name: '100gbe',
    label: '100 Gb/s Ethernet',
    bandwidthBytesPerSecond: 12.5e9,
    latencySeconds: 5e-6,
    source: 'assumed: 100 Gbit/s line rate = 12.5 GB/s per direction; 5 µs one-way (RoCE-class NIC, one switch hop)',
  },
  {
    name: 'ib-ndr',
    label: '400 Gb/s InfiniBand NDR',
    bandwidthBytesPerSecond: 50e9,
    latencySeconds: 1e-6,
    source: 'assumed: 400 Gbit/s NDR line rate = 50 GB/s per direction per port; 1 µs one-way (MPI small message)',
  },
  {
    name: 'nvlink4',
    label: 'NVLink 4 (H100 SXM)',
    bandwidthBytesPerSecond: 450e9,
    latencySeconds: 2e-6,
    source: 'assumed: NVIDIA H100 datasheet 900 GB/s NVLink bidirectional = 450 GB/s per direction per GPU; 2 µs one-way (NCCL-class)',
  },
];

export function findLink(name: string): LinkFigures {
  const l = LINKS.find((x) => x.name === name.toLowerCase());
  if (!l) throw new MoecapRangeError('ERR_INVALID_OPTION', `unknown link '${name}' (known: ${LINKS.map((x) => x.name).join(', ')})`);
  return l;
}

type PlanModel = Pick<ModelPreset, 'name' | 'hidden' | 'experts' | 'topK' | 'intermediate' | 'shared'>;

/** One rank's MoE layer pass with `batch` tokens per rank, uniform routing, experts spread evenly. */
export interface EpPlanRow {
  model: string;
  ranks: number;
  batch: number;
  link: string;
  /** Expected rows to other ranks (each of batch·k rows leaves with probability (P−1)/P); as many come in. */
  rowsSent: number;
  bytesSent: number;
  bytesPerToken: number;
  /** 3 exchanges (counts, rows, results): 3·latency + bytes out / bandwidth (full duplex). */
  commSeconds: number;
  /** Roofline of the rank's share: max(FLOPs / peak, weight bytes read / memory bandwidth). */
  computeSeconds: number;
  computeBound: 'flops' | 'memory';
  commOverCompute: number;
}

export interface EpPlanInputs {
  model: PlanModel;
  ranks: number;
  dtype: string;
  peaks: PeakSource;
  wire: EpWireSizes;
}

function rankCompute(i: EpPlanInputs, batch: number): { seconds: number; bound: 'flops' | 'memory' } {
  const m = i.model,
    P = i.ranks;
  const shared = m.shared ? m.shared.intermediate : 0;
  // Every rank computes batch·k routed rows on average (what it receives equals what it sends).
  const flops = batch * flopsPerToken({ hidden: m.hidden, experts: m.experts, topK: m.topK, intermediate: m.intermediate, sharedIntermediate: shared });
  const hitPerRank = expectedDistinctUniform(m.experts, m.topK, batch * P) / P;
  const b = bytesPerWeight(i.dtype);
  const bytes = hitPerRank * expertBytes(m, b) + (shared ? expertBytes({ hidden: m.hidden, intermediate: shared }, b) : 0) + m.hidden * m.experts * 4;
  const peak = timeBoundPeakFor(i.dtype, i.peaks).value;
  const bw = i.peaks.memoryBandwidth;
  if (!peak || !bw) throw new MoecapRangeError('ERR_INVALID_OPTION', `${i.peaks.name} gives no ${i.dtype} peak or memory bandwidth`);
  const tf = flops / peak,
    tm = bytes / bw;
  return tf >= tm ? { seconds: tf, bound: 'flops' } : { seconds: tm, bound: 'memory' };
}

export function epCommSeconds(bytesSent: number, link: Pick<LinkFigures, 'bandwidthBytesPerSecond' | 'latencySeconds'>): number {
  return 3 * link.latencySeconds + bytesSent / link.bandwidthBytesPerSecond;
}

export function epPlanRow(i: EpPlanInputs, batch: number, link: LinkFigures): EpPlanRow {
  if (!(Number.isInteger(batch) && batch >= 1)) throw new MoecapRangeError('ERR_INVALID_OPTION', `batch must be an integer >= 1, got ${batch}`);
  const P = i.ranks;
  const rowsSent = (batch * i.model.topK * (P - 1)) / P;
  const bytesSent = epBytesSent(i.wire, P, rowsSent, rowsSent);
  const commSeconds = epCommSeconds(bytesSent, link);
  const c = rankCompute(i, batch);
  return {
    model: i.model.name,
    ranks: P,
    batch,
    link: link.name,
    rowsSent,
    bytesSent,
    bytesPerToken: bytesSent / batch,
    commSeconds,
    computeSeconds: c.seconds,
    computeBound: c.bound,
    commOverCompute: commSeconds / c.seconds,
  };
}

/**
 * The smallest batch per rank from which the layer stays communication-bound (comm ≥ compute for
 * every batch from it up to `maxBatch`), or null when it is compute-bound at `maxBatch`.
 */
export function commBoundFrom(i: EpPlanInputs, link: LinkFigures, maxBatch = 65536): number | null {
  let from: number | null = null;
  for (let b = maxBatch; b >= 1; b--) {
    if (epPlanRow(i, b, link).commOverCompute < 1) break;
    from = b;
  }
  return from;
}

/** The planner's bytes and link time for a measured run, rank by rank. */
export interface EpCheckRow {
  rank: number;
  rowsSent: number;
  rowsReceived: number;
  measuredBytes: number;
  predictedBytes: number;
  /** Expected under uniform routing (what the plan table assumes). */
  uniformBytes: number;
  measuredCommSeconds: number;
  predictedCommSeconds: number;
}

export function checkAgainstRun(
  r: {
    ranks: number;
    tokens: number;
    link: { latencySeconds: number; bandwidthBytesPerSecond: number };
    perRank: Array<{ rank: number; rowsSent: number; rowsReceived: number; bytesSent: number; dispatchNs: number; combineNs: number }>;
  },
  model: PlanModel,
  wire: EpWireSizes,
): EpCheckRow[] {
  return r.perRank.map((p) => {
    const tokens = Math.floor((r.tokens * (p.rank + 1)) / r.ranks) - Math.floor((r.tokens * p.rank) / r.ranks);
    const uniformRows = (tokens * model.topK * (r.ranks - 1)) / r.ranks;
    const predictedBytes = epBytesSent(wire, r.ranks, p.rowsSent, p.rowsReceived);
    return {
      rank: p.rank,
      rowsSent: p.rowsSent,
      rowsReceived: p.rowsReceived,
      measuredBytes: p.bytesSent,
      predictedBytes,
      uniformBytes: epBytesSent(wire, r.ranks, uniformRows, uniformRows),
      measuredCommSeconds: (p.dispatchNs + p.combineNs) / 1e9,
      predictedCommSeconds: epCommSeconds(predictedBytes, r.link),
    };
  });
}
