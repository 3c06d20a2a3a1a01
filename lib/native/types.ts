// The shapes the native addon exchanges with TypeScript (see native/binding/).
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
  packedBytes: number;
  /** Packed bytes of one routed expert (in the GPU layout on the CUDA backend). */
  expertBytes: number;
  /** Where the layer runs, and why (e.g. 'libcuda.so.1 not found …' when 'auto' fell back to the CPU). */
  backend: 'cpu' | 'cuda';
  backendReason: string;
  /** CUDA only: largest T of one pass. */
  maxTokens?: number;
}

export interface NativeMoeLayer {
  forward(x: Float32Array): Promise<NativeForwardResult>;
  route(x: Float32Array): Promise<NativeForwardResult>;
  reference(x: Float32Array, sample?: Int32Array): Promise<NativeReferenceResult>;
  info(): NativeLayerInfo;
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
}

/** This machine's ceilings, measured with all threads (native/core/calibrate). */
export interface NativeCalibration {
  readBandwidth: NativeMeasured;
  fp32Flops: NativeMeasured;
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
  isa?: 'auto' | 'avx512' | 'avx2' | 'generic';
}

export interface NativeAddon {
  calibrate(options?: NativeCalibrateOptions): Promise<NativeCalibration>;
  createLayer(options: object): Promise<NativeMoeLayer>;
  systemInfo(): NativeSystemInfo;
  backendInfo(requested?: 'cpu' | 'cuda' | 'auto'): NativeBackendInfo;
}
