// The public MoE layer: a thin wrapper over the native layer. Argument checking happens in the
// binding (one options parser, messages naming the argument); this file only shapes types and
// routes every addon call through callNative (errors with a stable `code`).
import { MoecapTypeError } from './errors';
import { loadAddon } from './native/loader';
import { callNative } from './native/call';
import type { NativeMoeLayer } from './native/types';
import { prepareCheckpointLayer, type BlockScalesSpec, type CheckpointLayerOptions } from './checkpoint/checkpoint';
import { buildWithExpertStore, type ExpertStore } from './checkpoint/expert_store';
import type {
  CachePolicy,
  DType,
  ForwardResult,
  Isa,
  LayerInfo,
  OffloadInfo,
  OffloadStats,
  ReferenceResult,
  RouteResult,
  RouterGroups,
  Scoring,
  SystemInfo,
} from './types';

export type {
  CachePolicy,
  DType,
  ForwardResult,
  ForwardStats,
  Isa,
  KernelIsa,
  LayerInfo,
  OffloadInfo,
  OffloadPassStats,
  OffloadStats,
  ReferenceResult,
  RouteResult,
  RouterGroups,
  GroupScore,
  Scoring,
  SystemInfo,
} from './types';
export type { CheckpointLayerOptions } from './checkpoint/checkpoint';

/** Master weights in Hugging Face layout, fp32, row-major. */
export interface ExplicitWeights {
  /** [E, H]: logits = x · routerᵀ (HF `gate.weight`). */
  router: Float32Array;
  /** [E, F, H]: W1 (HF `gate_proj.weight` per expert). */
  gate: Float32Array;
  /** [E, F, H]: W3 (HF `up_proj.weight`). */
  up: Float32Array;
  /** [E, H, F]: W2 (HF `down_proj.weight`). */
  down: Float32Array;
  /** Shared expert: gate/up [Fs, H], down [H, Fs], gateWeight [H] when `sharedExperts.gated`. */
  shared?: { gate: Float32Array; up: Float32Array; down: Float32Array; gateWeight?: Float32Array };
}

/** Random master weights generated natively from a seed (for large presets). */
export interface SeededWeights {
  seed: number;
}

/** Rows of one tensor in a checkpoint file (lib/checkpoint fills these; rows are read on demand). */
export interface CheckpointSliceSpec {
  file: string;
  tensor: string;
  /** Byte offset of the first row in `file`. */
  offset: number;
  /** Index of the first row in the tensor. */
  row: number;
  rows: number;
  cols: number;
  /** On-disk dtype: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K, F8_E4M3 (the last with `scales`). */
  dtype: string;
  /** Block scales of a block-scaled dtype (lib/checkpoint/checkpoint.ts blockScalesOf). */
  scales?: BlockScalesSpec;
  /**
   * Expert matrices only: where the rows lie when they are not the tensor's consecutive rows
   * (native/core/checkpoint/checkpoint_slice.h). The tensor is viewed as rows of `tensorCols`
   * elements (default `cols`). Row layout: matrix row i = tensor row `row` + i·`rowStep`.
   * `transposed`: matrix row i = column `colStart` + i·`colStep` of the `cols` tensor rows from `row`.
   */
  rowStep?: number;
  transposed?: boolean;
  colStart?: number;
  colStep?: number;
  tensorCols?: number;
  /** gpt-oss's split MXFP4 (dtype MXFP4): `offset` in the `*_blocks` tensor, the same row's E8M0 scales here. */
  mxScales?: { file: string; offset: number };
}

/** Weights read natively from a checkpoint's files, row by row (createMoeLayer({ checkpoint }) builds it). */
export interface CheckpointWeightsSpec {
  checkpoint: {
    /** Identifies the source (files, sizes, mtimes, slices): an expert file written from other weights is refused. */
    key: string;
    router: CheckpointSliceSpec[];
    gate: CheckpointSliceSpec[];
    up: CheckpointSliceSpec[];
    down: CheckpointSliceSpec[];
    shared?: { gate: CheckpointSliceSpec[]; up: CheckpointSliceSpec[]; down: CheckpointSliceSpec[]; gateWeight?: CheckpointSliceSpec[] };
  };
}

export interface MoeLayerOptions {
  hidden: number;
  intermediate: number;
  experts: number;
  topK: number;
  scoring?: Scoring;
  renormalize?: boolean;
  routedScalingFactor?: number;
  /** [E]: added to the scores for expert selection only (DeepSeek-V3 e_score_correction_bias). */
  selectionBias?: Float32Array;
  /** [E]: added to the router logits, for selection and weights (gpt-oss router bias). */
  routerBias?: Float32Array;
  /** Per-expert biases (gpt-oss): gate/up [E, F] added to x·W1ᵀ / x·W3ᵀ, down [E, H] added before the routing weight. */
  expertBiases?: { gate: Float32Array; up: Float32Array; down: Float32Array };
  /** gpt-oss clamped SwiGLU: g = min(gate, limit), u = clamp(up, ±limit), h = (u + 1)·g·σ(alpha·g). */
  clampedSwiglu?: { limit: number; alpha: number };
  /** Llama 4: the routed expert's input is x·weight and its output is not scaled. */
  scoreOnInput?: boolean;
  /** scoring 'sparsemixer' (Phi-3.5-MoE): the mask threshold, the config's router_jitter_noise (default 0.01). */
  jitterEps?: number;
  /**
   * Grouped top-k: E experts in `count` groups, keep the best `keep` groups; experts of the other
   * groups score 0.0 for the selection (as the DeepSeek code). `score`: how a group is scored,
   * 'top2-sum' (default, DeepSeek-V3 noaux_tc: its two best selection scores) or 'max'
   * (DeepSeek-V2 group_limited_greedy: its best one).
   */
  groups?: RouterGroups;
  sharedExperts?: { intermediate: number; gated?: boolean };
  /** Expert capacity C = ceil(capacityFactor·T·k/E); 0 or absent = unlimited. */
  capacityFactor?: number;
  /** Compute threads (default: all CPUs this process may use). */
  threads?: number;
  /** Keep each compute thread on a CPU of its own when they use every CPU this process may run
   * on (default true; the environment variable MOECAP_PIN=0 turns it off everywhere). */
  pinThreads?: boolean;
  /** Weight storage format (default f32). */
  dtype?: DType;
  /** Kernel ISA: 'auto' or one of systemInfo().supportedIsas (others are refused, ERR_INVALID_OPTION). Default: MOECAP_ISA (read and checked by the addon) or 'auto'. */
  isa?: Isa;
  weights: SeededWeights | ExplicitWeights | CheckpointWeightsSpec;
  /** Keep the routed experts in a weights file and only a bounded cache of them in memory. */
  offload?: OffloadOptions;
  /** Testing aid: fill the engine's work buffers with NaN before every pass. */
  poison?: boolean;
  /**
   * 'auto' (default): CUDA when the driver, a device and build-cuda/libmoecap_cuda.so are usable, else the
   * CPU (info().backendReason says why). 'cuda' fails with the reason when it is unusable. MOECAP_BACKEND overrides.
   */
  backend?: 'cpu' | 'cuda' | 'auto';
  /** CUDA: largest T of one pass (sizes the device workspace; default 4096). */
  maxTokens?: number;
  /** CUDA: device index (default 0). */
  cudaDevice?: number;
  /**
   * CUDA: keep experts in pinned host memory with this many device cache slots (0 = all on the device).
   * `offload` works on CUDA too: its capacity gives the slots (unless this is set) and its policy the
   * eviction order; path, coldCache and prefetch do not apply there.
   */
  cudaCacheSlots?: number;
}

export interface OffloadOptions {
  /** Resident experts: a count, a byte budget (whole experts), or a fraction of the experts. */
  capacity: number | { bytes: number } | { fraction: number };
  /** Eviction policy (default 'lru'). 'static' pins the most used experts at pinStatic(). */
  policy?: CachePolicy;
  /** Load misses on an I/O thread, overlapped with compute (default true). */
  prefetch?: boolean;
  /** A progress bar with this label on stderr while the weights file is written (default: none). */
  progress?: string;
  /** Weights file (reused when it exists and matches; written atomically otherwise). Default: a
   *  scratch file in $TMPDIR, removed on close. For a model, layer l uses `${path}.${l}`. */
  path?: string;
  /** Drop the file's page cache (at open and after every read) so reads reach the device. */
  coldCache?: boolean;
}
export class MoeLayer {
  /** A checkpoint layer with offload: its converted expert file, and whether this run reused it. */
  expertStore?: { file: string; reused: boolean };
  /** @internal */
  constructor(
    private readonly native: NativeMoeLayer,
    readonly options: Readonly<MoeLayerOptions>,
  ) {}

  /** Runs the layer on x [T, H] off the main thread. */
  async forward(x: Float32Array): Promise<ForwardResult> {
    return (await callNative(() => this.native.forward(x))) as ForwardResult;
  }

  /** Router only: expert ids and weights for x [T, H]. */
  async route(x: Float32Array): Promise<RouteResult> {
    const r = await callNative(() => this.native.route(x));
    return { expertIds: r.expertIds, expertWeights: r.expertWeights, stats: r.stats } as RouteResult;
  }

  /** fp64 reference for the tokens in `sample` (default: all), with fp64 routing of every token. */
  async reference(x: Float32Array, sample?: Int32Array): Promise<ReferenceResult> {
    return callNative(() => this.native.reference(x, sample));
  }

  info(): LayerInfo {
    return callNative(() => this.native.info()) as LayerInfo;
  }

  /** Cumulative offload counters since creation or resetOffloadStats() (throws without offload);
   *  the same name and counters as MoeModel.offloadStats(). */
  offloadStats(): OffloadStats {
    return this.offloadInfo().stats;
  }

  /**
   * Offload configuration, resident experts and cumulative counters (throws without offload).
   * @deprecated use offloadStats() for the counters and info().offload for the configuration.
   */
  offloadInfo(): OffloadInfo {
    return callNative(() => this.native.offloadInfo()) as OffloadInfo;
  }

  /** Static policy: the passes so far were the profile run; pins the most used experts. */
  pinStatic(): Int32Array {
    return callNative(() => this.native.pinStatic());
  }

  resetOffloadStats(): void {
    callNative(() => this.native.resetOffloadStats());
  }

  /** Drops the weights file's page cache (a cold start for the next reads). */
  dropCache(): void {
    callNative(() => this.native.dropCache());
  }

  get closed(): boolean {
    return this.native.closed;
  }

  /** Frees the weights once in-flight passes finish. Later calls reject. */
  close(): void {
    callNative(() => this.native.close());
  }
}

/**
 * Creates a layer from explicit or seeded weights, or from one MoE layer of a checkpoint
 * (`{ checkpoint, layer }`: shapes, routing and weights come from the file; the core reads the rows
 * as it packs, one expert at a time. With `offload`, the experts are converted once into an expert
 * file under `cacheDir` and reused while the checkpoint's files keep their size and mtime).
 */
export async function createMoeLayer(options: MoeLayerOptions | CheckpointLayerOptions): Promise<MoeLayer> {
  if (options === null || typeof options !== 'object') throw new MoecapTypeError('ERR_INVALID_ARGUMENT', 'options must be an object');
  let store: ExpertStore | null = null;
  if ('checkpoint' in options && options.checkpoint !== undefined) ({ options, store } = prepareCheckpointLayer(options as CheckpointLayerOptions));
  const addon = loadAddon();
  let native;
  ({ built: native, store } = await buildWithExpertStore(store, () => callNative(() => addon.createLayer(options))));
  const layer = new MoeLayer(native, options as MoeLayerOptions);
  if (store) layer.expertStore = { file: store.file, reused: store.reused };
  return layer;
}

export function systemInfo(): SystemInfo {
  const addon = loadAddon();
  return callNative(() => addon.systemInfo()) as SystemInfo;
}
