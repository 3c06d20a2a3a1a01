// The types the public API returns, declared here rather than aliased from the addon's shapes
// (lib/native/types.ts), so the published .d.ts says `dtype: DType`, not `dtype: string`, and a
// change in the binding cannot silently change what users see.

export type Scoring = 'softmax' | 'sigmoid' | 'sparsemixer';
/** How grouped top-k scores a group: its two best selection scores summed (DeepSeek-V3 noaux_tc) or its best one (DeepSeek-V2 group_limited_greedy). */
export type GroupScore = 'top2-sum' | 'max';
/** Grouped top-k: E experts in `count` groups, keep the best `keep`; `score` defaults to 'top2-sum'. */
export interface RouterGroups {
  count: number;
  keep: number;
  score?: GroupScore;
}
/** Weight storage: mxfp4 (E2M1 + E8M0 per 32 inputs, gpt-oss) and fp8 (E4M3 + fp32 scale per 128 inputs, DeepSeek-V3) as released. */
export type DType = 'f32' | 'bf16' | 'int8' | 'int4' | 'mxfp4' | 'fp8';
/** The kernel ISA names `isa` / MOECAP_ISA accept (the native list, kernel_table.h kIsaNames). */
export const ISA_NAMES = ['auto', 'avx512', 'avx2', 'neon', 'generic'] as const;
/** The kernel ISA asked for ('auto': the best this CPU has; a named one must be one this CPU runs). */
export type Isa = (typeof ISA_NAMES)[number];
/** The kernels a layer runs: a CPU ISA, or 'cuda' on the CUDA backend. */
export type KernelIsa = Exclude<Isa, 'auto'> | 'cuda';
export type CachePolicy = 'lru' | 'lfu' | 'lfru' | 'static';
export type Backend = 'cpu' | 'cuda' | 'auto';

/** Offload counters (per pass or cumulative). Rates are null when undefined. */
export interface OffloadStats {
  passes: number;
  /** Needed experts that needed no load of their own pass (prefetched ones included). */
  hits: number;
  /** Needed experts loaded on demand. */
  misses: number;
  hitRate: number | null;
  evictions: number;
  /** Reads from the slow tier (demand + prefetch). */
  loads: number;
  bytesRead: number;
  /** Time the I/O path spent reading and verifying. */
  ioNs: number;
  /** Time the compute thread waited for loads. */
  stallNs: number;
  prefetchIssued: number;
  prefetchUsed: number;
  /** Compute batches (waves). */
  waves: number;
  /** Checksum checks of loaded experts, on the compute thread (the I/O threads only read). */
  verifyNs: number;
  /** bytesRead / ioNs. */
  tierBytesPerSecond: number | null;
}

/** One pass's offload counters. */
export interface OffloadPassStats extends OffloadStats {
  /** max(ioNs, computeNs) / timeNs (CPU only: the CUDA layer does not split compute from copy waits). */
  overlapEfficiency?: number;
  /** Experts resident after the pass. */
  resident: Int32Array;
}

/** A layer's offload configuration, resident experts and cumulative counters. */
export interface OffloadInfo {
  capacity: number;
  policy: CachePolicy;
  prefetch: boolean;
  path: string;
  /** True when `path` was a scratch file, already removed from its folder (held open). */
  scratch: boolean;
  coldCache: boolean;
  /** Cold mode reads experts with O_DIRECT (false: buffered reads + page cache dropped, or not cold). */
  directIo: boolean;
  expertBytes: number;
  fileBytes: number;
  resident: Int32Array;
  /** Cumulative since creation or resetOffloadStats(). */
  stats: OffloadStats;
}

/** What one pass did and how long it took (native steady-clock timers). */
export interface ForwardStats {
  tokens: number;
  distinctExperts: number;
  assignments: number;
  dropped: number;
  capacity: number | null;
  expertBytes: number;
  sharedBytes: number;
  routerBytes: number;
  flops: number;
  timeNs: number;
  routeNs: number;
  expertsNs: number;
  combineNs: number;
  expertCounts: Int32Array;
  isa: KernelIsa;
  threads: number;
  dtype: DType;
  /** Time computing (route, experts, combine) as opposed to waiting for loads. */
  computeNs: number;
  /** This pass's offload counters (only when the layer offloads). */
  offload?: OffloadPassStats;
}

export interface ForwardResult {
  /** [T, H] */
  output: Float32Array;
  /** [T, k] in selection order */
  expertIds: Int32Array;
  /** [T, k] router weights after renormalisation and scaling */
  expertWeights: Float32Array;
  stats: ForwardStats;
}

export interface RouteResult {
  expertIds: Int32Array;
  expertWeights: Float32Array;
  stats: ForwardStats;
}

/** fp64 reference computed from the fp32 master weights (not the quantised copies). */
export interface ReferenceResult {
  /** [sample.length, H] */
  output: Float64Array;
  /** [T, k]: fp64 routing of every token */
  expertIds: Int32Array;
  expertWeights: Float64Array;
  dropped: number;
  sample: Int32Array;
}

export interface LayerInfo {
  hidden: number;
  intermediate: number;
  experts: number;
  topK: number;
  dtype: DType;
  isa: KernelIsa;
  /** A note on the ISA choice, or null (a named ISA this CPU cannot run is refused, not lowered). */
  isaNote: string | null;
  threads: number;
  /** CPU: each compute thread kept on a CPU of its own (the pool uses every CPU the process may
   * run on and MOECAP_PIN is not '0'); the calling thread moves to the first one for each pass. */
  pinnedThreads?: boolean;
  /** CPU: large weight buffers are asked to be backed by transparent huge pages (Linux, unless
   * MOECAP_NO_HUGEPAGES is set; false where the OS has no such request, e.g. macOS). */
  hugePages?: boolean;
  packedBytes: number;
  /** Packed bytes of one routed expert (in the GPU layout on the CUDA backend). */
  expertBytes: number;
  /** Where the layer runs, and why (e.g. 'libcuda.so.1 not found …' when 'auto' fell back to the CPU). */
  backend: 'cpu' | 'cuda';
  backendReason: string;
  /** CUDA only: largest T of one pass. */
  maxTokens?: number;
  offload: OffloadInfo | null;
}

/** Next-layer expert prediction of a model (prefetch). */
export interface Prediction {
  /** |predicted ∩ used| distinct experts, over layers 1..N-1. */
  correct: number;
  total: number;
  accuracy: number | null;
}

export interface ModelStats {
  tokens: number;
  timeNs: number;
  computeNs: number;
  layers: ForwardStats[];
  offload?: OffloadStats & { overlapEfficiency: number };
  prediction?: Prediction;
}

export interface ModelForwardResult {
  output: Float32Array;
  stats: ModelStats;
}

export interface ModelInfo {
  layers: number;
  hidden: number;
  intermediate: number;
  experts: number;
  topK: number;
  dtype: DType;
  isa: KernelIsa;
  threads: number;
  packedBytes: number;
  expertBytes: number;
  offload: OffloadInfo[] | null;
}

/** A model's cumulative offload counters summed over layers, and next-layer prediction accuracy. */
export interface ModelOffloadStats extends OffloadStats {
  prediction: Prediction;
}

export interface SystemInfo {
  bestIsa: Exclude<Isa, 'auto'>;
  supportedIsas: Array<Exclude<Isa, 'auto'>>;
  hardwareThreads: number;
  availableMemory: number;
  totalMemory: number;
  /** x86: `prefetcht1` fills L2 without L1 (Intel; AMD from Zen 4), so the AVX2 decode tiles also fetch their weight streams 2 and 8 KB ahead. False elsewhere. */
  prefetchT1SkipsL1: boolean;
}

/** Which backend a layer would run on here, and why. */
export interface BackendInfo {
  backend: 'cpu' | 'cuda';
  requested: Backend;
  reason: string;
  library: string | null;
  driverVersion: number;
  runtimeVersion: number;
}
