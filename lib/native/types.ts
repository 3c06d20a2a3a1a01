// The shapes the native addon exchanges with TypeScript (see native/binding/).
import type {
  BackendInfo,
  ForwardStats,
  Isa,
  LayerInfo,
  ModelInfo,
  ModelStats,
  OffloadInfo,
  OffloadPassStats,
  OffloadStats,
  Prediction,
  ReferenceResult,
  SystemInfo,
} from '../types';
// The addon returns exactly the public result shapes (lib/types.ts declares them); these names are
// the binding's side of them.

export type NativeStats = ForwardStats;
export type NativeOffloadStats = OffloadStats;
export type NativeOffloadPassStats = OffloadPassStats;
export type NativeOffloadInfo = OffloadInfo;
export interface NativeForwardResult {
  output?: Float32Array;
  expertIds: Int32Array;
  expertWeights: Float32Array;
  stats: NativeStats;
}

export type NativeReferenceResult = ReferenceResult;
export type NativeLayerInfo = LayerInfo;
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

export type NativePrediction = Prediction;
export type NativeModelStats = ModelStats;
export interface NativeModelResult {
  output: Float32Array;
  stats: NativeModelStats;
}

export type NativeModelInfo = ModelInfo;
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

export type NativeSystemInfo = SystemInfo;
// Which backend a layer would run on here, and why (native/core/backend/cuda_loader.cc).
export type NativeBackendInfo = BackendInfo;
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
  /** null where the ISA has no int8 multiply-add loop (AVX2 has one: vpmaddubsw + vpaddw) */
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
  epPlace(experts: number, ep: object): Int32Array[];
  epCalibrateLink(): Promise<unknown>;
  epAbort(code: number): void;
  epFinalize(): void;
  epWireSizes(dtype: string, hidden: number, experts: number): import('../ep_plan').EpWireSizes;
}

export interface NativeEpLayer {
  rank: number;
  ranks: number;
  experts: Int32Array;
  backend: 'cpu' | 'cuda';
  device?: number;
  forward(x: Float32Array): Promise<unknown>;
  gather(data: Uint8Array): Promise<Uint8Array[]>;
  route(x: Float32Array): Promise<Int32Array>;
}
