// Expert parallelism: the routed experts placed over ranks, each token routed on its own rank,
// its rows computed on the ranks holding its experts and combined back on its rank. The output
// equals the single-process layer's bitwise. simulateEp runs P ranks in this process over an
// in-process transport (no MPI); a real run has one process per rank under mpirun.
import { MoecapTypeError } from './errors';
import { loadAddon } from './native/loader';
import { callNative } from './native/call';
import type { MoeLayerOptions } from './moe_layer';

export type EpPlacementKind = 'contiguous' | 'balanced';

export interface EpOptions {
  /** Ranks (processes under mpirun; threads in simulateEp). */
  ranks: number;
  /** 'contiguous' (default): expert e on rank floor(e·P/E); 'balanced': greedy over `loads`. */
  placement?: EpPlacementKind;
  /** Replicate the R hottest experts (by `loads`) on one more rank each. */
  redundant?: number;
  /** [E] per-expert loads (e.g. rows per expert of a routing trace); needed by 'balanced' and redundant > 0. */
  loads?: ArrayLike<number>;
}

/** One rank's measurements of one pass. Bytes and rows count only what crosses to other ranks. */
export interface EpRankStats {
  rank: number;
  ranks: number;
  routeNs: number;
  dispatchNs: number;
  computeNs: number;
  combineNs: number;
  totalNs: number;
  rowsSent: number;
  rowsReceived: number;
  bytesSent: number;
  bytesReceived: number;
  /** Every rank's expert compute time of this pass. */
  rankComputeNs: number[];
  /** Experts this rank holds (simulation). */
  experts?: Int32Array;
}

export interface EpSimulation {
  output: Float32Array;
  expertIds: Int32Array;
  ranks: EpRankStats[];
}

/** Slowest rank's expert compute time over the mean (1 = perfectly even). */
export function imbalance(rankComputeNs: readonly number[]): number {
  const mean = rankComputeNs.reduce((a, b) => a + b, 0) / Math.max(1, rankComputeNs.length);
  return mean > 0 ? Math.max(...rankComputeNs) / mean : 1;
}

/** First token of rank r's share of T tokens over P ranks (the split a real run uses). */
export function rankFirstToken(tokens: number, ranks: number, rank: number): number {
  return Math.floor((tokens * rank) / ranks);
}

/** Runs one expert-parallel pass of x [T, H] over `ep.ranks` in-process ranks. */
export async function simulateEp(layer: MoeLayerOptions, ep: EpOptions, x: Float32Array): Promise<EpSimulation> {
  if (layer === null || typeof layer !== 'object') throw new MoecapTypeError('ERR_INVALID_ARGUMENT', 'layer options must be an object');
  const addon = loadAddon();
  return (await callNative(() => addon.epSimulate(layer, ep, x))) as EpSimulation;
}
