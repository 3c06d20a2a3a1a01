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
  expertBytes: number;
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

export interface NativeAddon {
  createLayer(options: object): Promise<NativeMoeLayer>;
  systemInfo(): NativeSystemInfo;
}
