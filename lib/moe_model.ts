// A stack of MoE layers with residuals (x ← x + moe_l(x)), for offload across layers: with
// offload + prefetch, each layer's experts are predicted from the previous layer's input through
// its own router and prefetched while the previous layer computes.
import { loadAddon } from './native/loader';
import { resolveIsa, type MoeLayerOptions, type SeededWeights } from './moe_layer';
import type { NativeModelInfo, NativeModelResult, NativeMoeModel, NativeOffloadStats, NativePrediction } from './native/types';

export interface MoeModelOptions extends Omit<MoeLayerOptions, 'weights' | 'poison'> {
  /** Number of MoE layers (1..1024). */
  layers: number;
  /** Seeded weights only: layer l uses seed + l. */
  weights: SeededWeights;
}

export type ModelForwardResult = NativeModelResult;
export type ModelInfo = NativeModelInfo;

export class MoeModel {
  /** @internal */
  constructor(private readonly native: NativeMoeModel, readonly options: Readonly<MoeModelOptions>) {}

  /** Runs all layers on x [T, H] off the main thread; stats per layer, offload and prediction. */
  async forward(x: Float32Array): Promise<ModelForwardResult> {
    return this.native.forward(x);
  }

  info(): ModelInfo {
    return this.native.info();
  }

  /** Cumulative offload counters summed over layers, and next-layer prediction accuracy. */
  offloadStats(): NativeOffloadStats & { prediction: NativePrediction } {
    return this.native.offloadStats();
  }

  /** Static policy: pins each layer's most used experts so far → the pinned experts per layer. */
  pinStatic(): Int32Array[] {
    return this.native.pinStatic();
  }

  resetOffloadStats(): void {
    this.native.resetOffloadStats();
  }

  dropCache(): void {
    this.native.dropCache();
  }

  get closed(): boolean {
    return this.native.closed;
  }

  close(): void {
    this.native.close();
  }
}

export async function createMoeModel(options: MoeModelOptions): Promise<MoeModel> {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const native = await loadAddon().createModel({ ...options, isa: resolveIsa(options.isa) });
  return new MoeModel(native, options);
}
