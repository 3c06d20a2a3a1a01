// Expert parallelism: the routed experts placed over ranks, each token routed on its own rank,
// its rows computed on the ranks holding its experts and combined back on its rank. The output
// equals the single-process layer's bitwise. simulateEp runs P ranks in this process over an
// in-process transport (no MPI); a real run has one process per rank under mpirun.
import { MoecapTypeError } from './errors';
import { loadAddon } from './native/loader';
import { callNative } from './native/call';
import type { MoeLayerOptions } from './moe_layer';
import type { OffloadStats } from './types';
import { openCheckpoint, prepareCheckpointLayer, type CheckpointLayerOptions } from './checkpoint/checkpoint';
import { buildWithExpertStore, type ExpertStore } from './checkpoint/expert_store';

export type EpPlacementKind = 'contiguous' | 'balanced';
/** How rows travel between ranks: 'mpi' moves host buffers over MPI (GPU ranks stage rows through
 *  host memory); 'nccl' (GPU ranks only) moves them between the GPUs over NCCL, from device buffers
 *  (still staged through host memory on each side by the CUDA pass); 'auto' is 'mpi'. */
export type EpTransportKind = 'mpi' | 'nccl' | 'auto';

export interface EpOptions {
  /** Ranks (processes under mpirun; threads in simulateEp). */
  ranks: number;
  /** 'contiguous' (default): expert e on rank floor(e·P/E); 'balanced': greedy over `loads`. */
  placement?: EpPlacementKind;
  /** Replicate the R hottest experts (by `loads`) on one more rank each. */
  redundant?: number;
  /** [E] per-expert loads (e.g. rows per expert of a routing trace); needed by 'balanced' and redundant > 0. */
  loads?: ArrayLike<number>;
  /** Default 'mpi'. Another name: ERR_INVALID_OPTION. */
  transport?: EpTransportKind;
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
  /** Assignments of this rank's tokens dropped by the capacity factor (0 without one). */
  dropped: number;
  bytesSent: number;
  bytesReceived: number;
  /** Of combineNs: the shared expert over this rank's tokens (0 without one, and on GPU ranks,
   *  whose shared expert runs inside the device combine). */
  sharedNs: number;
  /** Rows this rank's experts computed (its own tokens' and received ones). */
  rowsComputed: number;
  /** Distinct held experts with at least one row this pass. */
  expertsComputed: number;
  /** This rank's tokens through the shared expert (0 without one, and on GPU ranks). */
  sharedRows: number;
  /** One routed expert's packed weights at the run's dtype, the shared expert's (0 without one). */
  expertBytes: number;
  sharedBytes: number;
  /** A computed row's activations: its input as the kernels read it and its fp32 result. */
  rowBytes: number;
  /** Every rank's expert compute time of this pass. */
  rankComputeNs: number[];
  /** This rank's expert cache over this pass (the experts it computed), or null when not offloaded. */
  offload: OffloadStats | null;
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

/**
 * The experts each rank holds under `ep` (the placement createEpLayer and simulateEp make): [ranks]
 * of ascending expert ids.
 */
export function placeExperts(experts: number, ep: EpOptions): Int32Array[] {
  const addon = loadAddon();
  return callNative(() => addon.epPlace(experts, ep));
}

/**
 * Runs one expert-parallel pass of x [T, H] over `ep.ranks` in-process ranks. With `offload`, each
 * rank's experts stream from a weights file of its own through its own cache (capacity.fraction is
 * of the experts the rank holds).
 */
export async function simulateEp(layer: MoeLayerOptions, ep: EpOptions, x: Float32Array): Promise<EpSimulation> {
  if (layer === null || typeof layer !== 'object') throw new MoecapTypeError('ERR_INVALID_ARGUMENT', 'layer options must be an object');
  const addon = loadAddon();
  return (await callNative(() => addon.epSimulate(layer, ep, x))) as EpSimulation;
}

/** The MPI world this process belongs to. */
export interface EpWorld {
  rank: number;
  ranks: number;
  /** libmoecap_mpi.so loaded. */
  library: string;
  /** The MPI it was built against, and the one loaded now. */
  builtMpi: string;
  runtimeMpi: string;
}

/**
 * Loads build-mpi/libmoecap_mpi.so and initialises MPI for `ranks` ranks (once per process).
 * ERR_BACKEND_UNAVAILABLE, saying which and what to do, when the process was not started by
 * mpirun, mpirun started another number of ranks, the library is not built, libmpi is missing,
 * or the MPI loaded differs from the one it was built against.
 */
export function initEp(ranks: number): EpWorld {
  const addon = loadAddon();
  return callNative(() => addon.epInit(ranks));
}

export interface EpPass {
  /** This rank's tokens' outputs [T_rank, H]. */
  output: Float32Array;
  expertIds: Int32Array;
  stats: EpRankStats;
}

/** One rank's share of an expert-parallel layer (one process per rank, under mpirun). */
export class EpLayer {
  /** @internal */
  constructor(private readonly native: import('./native/types').NativeEpLayer) {}
  get rank(): number {
    return this.native.rank;
  }
  get ranks(): number {
    return this.native.ranks;
  }
  /** The routed experts this rank holds. */
  get experts(): Int32Array {
    return this.native.experts;
  }
  /** Where this rank's experts compute ('cuda' with the layer option backend: 'cuda'). */
  get backend(): 'cpu' | 'cuda' {
    return this.native.backend;
  }
  /** The GPU of this rank (its local rank modulo the node's devices), or null on the CPU. */
  get device(): number | null {
    return this.native.device ?? null;
  }
  /** Collective: this rank's tokens x [T_rank, H] (may be empty) through the layer. */
  async forward(x: Float32Array): Promise<EpPass> {
    return (await callNative(() => this.native.forward(x))) as EpPass;
  }
  /** Router only, on this rank alone (no exchange): expert ids [T, k] of x [T, H]. */
  async route(x: Float32Array): Promise<Int32Array> {
    return callNative(() => this.native.route(x));
  }
  /** Collective: every rank's bytes, in rank order, on rank 0; [] on the others. */
  async gather(data: Uint8Array): Promise<Uint8Array[]> {
    return callNative(() => this.native.gather(data));
  }
}

/**
 * Collective: each rank builds its share (the experts its placement gives it). Calls initEp.
 * `offload`: the rank's experts live in its own weights file (a given path gets a
 * ".rank<r>-of-<P>" suffix) behind its own cache; capacity.fraction is of the experts it holds.
 * `backend: 'cuda'`: the rank's experts live on its GPU (local rank modulo the node's devices) and
 * its received rows compute there, staged through host memory; the output equals the
 * single-process CUDA layer's bitwise. ERR_BACKEND_UNAVAILABLE naming what is missing (driver,
 * device, library) before MPI starts; offload is refused (ERR_INVALID_OPTION).
 * `{ checkpoint, layer }`: the rank reads the router, the shared expert and only its own routed
 * experts' rows from the checkpoint, as it packs them; with offload, its experts convert once into
 * its own cached expert file (cacheDir, or offload.path, with the rank suffix), keyed by its share.
 */
export async function createEpLayer(layer: MoeLayerOptions | CheckpointLayerOptions, ep: EpOptions): Promise<EpLayer> {
  if (layer === null || typeof layer !== 'object') throw new MoecapTypeError('ERR_INVALID_ARGUMENT', 'layer options must be an object');
  const addon = loadAddon();
  let store: ExpertStore | null = null;
  if ('checkpoint' in layer && layer.checkpoint !== undefined) {
    // The weights stay row ranges of the files: the core packs, and so reads, only this rank's experts.
    const world = initEp(ep?.ranks);
    const experts = openCheckpoint(layer.checkpoint).plan.experts;
    const share = { rank: world.rank, ranks: world.ranks, experts: Array.from(placeExperts(experts, ep)[world.rank]) };
    ({ options: layer, store } = prepareCheckpointLayer(layer as CheckpointLayerOptions, share));
  }
  const opts = layer as MoeLayerOptions;
  const { built } = await buildWithExpertStore(store, () => callNative(() => addon.epCreateLayer(opts, ep)));
  return new EpLayer(built);
}

export interface LinkCalibration {
  /** One-way ping-pong time of 8 bytes between ranks 0 and 1. */
  latencySeconds: number;
  /** Ping-pong bandwidth at 4 MiB. */
  bandwidthBytesPerSecond: number;
  pingpong: Array<{ bytes: number; seconds: number }>;
  /** MPI_Alltoall per-pair block sizes, slowest rank's time per exchange. */
  alltoall: Array<{ bytes: number; seconds: number }>;
}

/** Collective: ping-pong and all-to-all sweep over the link the ranks use. */
export async function calibrateLink(): Promise<LinkCalibration> {
  const addon = loadAddon();
  return (await callNative(() => addon.epCalibrateLink())) as LinkCalibration;
}

/** MPI_Abort: mpirun ends every rank with this exit code. */
export function abortEp(code = 1): void {
  loadAddon().epAbort(code);
}

/** MPI_Finalize (collective; once, at the end). */
export function finalizeEp(): void {
  const addon = loadAddon();
  callNative(() => addon.epFinalize());
}
