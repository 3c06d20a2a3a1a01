// The shapes the native addon exchanges with TypeScript (see native/binding/).
import type { Isa } from '../types';

export interface NativeStats {
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
  isa: string;
  threads: number;
  dtype: string;
  /** Time computing (route, experts, combine) as opposed to waiting for loads. */
  computeNs: number;
  /** This pass's offload counters (only when the layer offloads). */
  offload?: NativeOffloadPassStats;
}

/** Offload counters (per pass or cumulative). Rates are null when undefined. */
export interface NativeOffloadStats {
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

export interface NativeOffloadPassStats extends NativeOffloadStats {
  /** max(ioNs, computeNs) / timeNs (CPU only: the CUDA layer does not split compute from copy waits). */
  overlapEfficiency?: number;
  /** Experts resident after the pass. */
  resident: Int32Array;
}

export interface NativeOffloadInfo {
  capacity: number;
  policy: string;
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
  stats: NativeOffloadStats;
}

export interface NativeForwardResult {
  output?: Float32Array;
  expertIds: Int32Array;
  expertWeights: Float32Array;
  stats: NativeStats;
}

export interface NativeReferenceResult {
  output: Float64Array;
  expertIds: Int32Array;
  expertWeights: Float64Array;
  dropped: number;
  sample: Int32Array;
}

export interface NativeLayerInfo {
  hidden: number;
  intermediate: number;
  experts: number;
  topK: number;
  dtype: string;
  isa: string;
  isaNote: string | null;
  threads: number;
  /** CPU: each compute thread kept on a CPU of its own (the pool uses every CPU the process may
   * run on and MOECAP_PIN is not '0'); the calling thread moves to the first one for each pass. */
  pinnedThreads?: boolean;
  hugePages?: boolean;
  packedBytes: number;
  /** Packed bytes of one routed expert (in the GPU layout on the CUDA backend). */
  expertBytes: number;
  /** Where the layer runs, and why (e.g. 'libcuda.so.1 not found …' when 'auto' fell back to the CPU). */
  backend: 'cpu' | 'cuda';
  backendReason: string;
  /** CUDA only: largest T of one pass. */
  maxTokens?: number;
  offload: NativeOffloadInfo | null;
}

export interface NativeMoeLayer {
  forward(x: Float32Array): Promise<NativeForwardResult>;
  route(x: Float32Array): Promise<NativeForwardResult>;
  reference(x: Float32Array, sample?: Int32Array): Promise<NativeReferenceResult>;
  info(): NativeLayerInfo;
  offloadInfo(): NativeOffloadInfo;
  pinStatic(): Int32Array;
  resetOffloadStats(): void;
  dropCache(): void;
  close(): void;
  readonly closed: boolean;
}

export interface NativePrediction {
  /** |predicted ∩ used| distinct experts, over layers 1..N-1. */
  correct: number;
  total: number;
  accuracy: number | null;
}

export interface NativeModelStats {
  tokens: number;
  timeNs: number;
  computeNs: number;
  layers: NativeStats[];
  offload?: NativeOffloadStats & { overlapEfficiency: number };
  prediction?: NativePrediction;
}

export interface NativeModelResult {
  output: Float32Array;
  stats: NativeModelStats;
}

export interface NativeModelInfo {
  layers: number;
  hidden: number;
  intermediate: number;
  experts: number;
  topK: number;
  dtype: string;
  isa: string;
  threads: number;
  packedBytes: number;
  expertBytes: number;
  offload: NativeOffloadInfo[] | null;
}

export interface NativeMoeModel {
  forward(x: Float32Array): Promise<NativeModelResult>;
  info(): NativeModelInfo;
  offloadStats(): NativeOffloadStats & { prediction: NativePrediction };
  pinStatic(): Int32Array[];
  resetOffloadStats(): void;
  dropCache(): void;
  close(): void;
  readonly closed: boolean;
}

export interface NativeSystemInfo {
  bestIsa: string;
  supportedIsas: string[];
  hardwareThreads: number;
  availableMemory: number;
  totalMemory: number;
}

// Which backend a layer would run on here, and why (native/core/backend/cuda_loader.cc).
export interface NativeBackendInfo {
  backend: 'cpu' | 'cuda';
  requested: 'cpu' | 'cuda' | 'auto';
  reason: string;
  library: string | null;
  driverVersion: number;
  runtimeVersion: number;
}

/** One measured ceiling: median, min and max over the repeats. */
export interface NativeMeasured {
  median: number;
  min: number;
  max: number;
  unit: 'B/s' | 'FLOP/s' | 'OP/s';
  /** Every window's figure, in the order measured. */
  samples: number[];
}

/** This machine's ceilings, measured with all threads (native/core/calibrate). */
export interface NativeCalibration {
  readBandwidth: NativeMeasured;
  /** (bytes read + bytes written) / s of a buffer copy; null when called with compute: false */
  copyBandwidth: NativeMeasured | null;
  /** null when called with compute: false */
  fp32Flops: NativeMeasured | null;
  /** null where the ISA has no bf16 dot-product unit */
  bf16Flops: NativeMeasured | null;
  /** null where the ISA has no int8 dot-product unit */
  int8Ops: NativeMeasured | null;
  threads: number;
  isa: string;
  readBytes: number;
  repeats: number;
}

export interface NativeCalibrateOptions {
  /** bytes of the buffer read per repeat (default 1 GiB) */
  readBytes?: number;
  /** default 7 */
  repeats?: number;
  /** default: all CPUs this process may use */
  threads?: number;
  isa?: Isa;
  /** false: measure the read bandwidth only (default true) */
  compute?: boolean;
  /** milliseconds per compute window (default 50) */
  computeMs?: number;
}

/** Cold sequential read of a scratch file in a folder (native/core/calibrate/file_read_bandwidth). */
export interface NativeFileRead {
  bandwidth: NativeMeasured;
  bytes: number;
  /** posix_fadvise(DONTNEED) succeeded before every repeat */
  cacheDropped: boolean;
  /** Read with O_DIRECT (asked for with `direct`, and taken by the file system). */
  direct: boolean;
  path: string;
}

export interface NativeAddon {
  calibrate(options?: NativeCalibrateOptions): Promise<NativeCalibration>;
  /** `folder`: a scratch file is written there and read cold; a regular file: its first `bytes`, read cold. */
  measureFileRead(folder: string, options?: { bytes?: number; repeats?: number; direct?: boolean }): Promise<NativeFileRead>;
  createLayer(options: object): Promise<NativeMoeLayer>;
  createModel(options: object): Promise<NativeMoeModel>;
  systemInfo(): NativeSystemInfo;
  backendInfo(requested?: 'cpu' | 'cuda' | 'auto'): NativeBackendInfo;
  /** Expert parallelism simulated over in-process ranks (lib/ep.ts). */
  epSimulate(layer: object, ep: object, x: Float32Array): Promise<unknown>;
  epInit(ranks: number): { rank: number; ranks: number; library: string; builtMpi: string; runtimeMpi: string };
  epCreateLayer(layer: object, ep: object): Promise<NativeEpLayer>;
  epCalibrateLink(): Promise<unknown>;
  epAbort(code: number): void;
  epFinalize(): void;
}

export interface NativeEpLayer {
  rank: number;
  ranks: number;
  experts: Int32Array;
  forward(x: Float32Array): Promise<unknown>;
  gather(data: Uint8Array): Promise<Uint8Array[]>;
  route(x: Float32Array): Promise<Int32Array>;
}
