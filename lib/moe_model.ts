// A stack of MoE layers with residuals (x ← x + moe_l(x)), for offload across layers: with
// offload + prefetch, each layer's experts are predicted from the previous layer's input through
// its own router and prefetched while the previous layer computes.
import { MoecapTypeError } from './errors';
import { loadAddon } from './native/loader';
import { callNative } from './native/call';
import { type MoeLayerOptions, type SeededWeights } from './moe_layer';
import type { NativeMoeModel } from './native/types';
import type { ModelForwardResult, ModelInfo, ModelOffloadStats } from './types';

export type { ModelForwardResult, ModelInfo, ModelOffloadStats, ModelStats, Prediction } from './types';

export interface MoeModelOptions extends Omit<MoeLayerOptions, 'weights' | 'poison'> {
  /** Number of MoE layers (1..1024). */
  layers: number;
  /** Seeded weights only: layer l uses seed + l. */
  weights: SeededWeights;
}

export class MoeModel {
  /** @internal */
  constructor(
    private readonly native: NativeMoeModel,
    readonly options: Readonly<MoeModelOptions>,
  ) {}

  /** Runs all layers on x [T, H] off the main thread; stats per layer, offload and prediction. */
  async forward(x: Float32Array): Promise<ModelForwardResult> {
    return (await callNative(() => this.native.forward(x))) as ModelForwardResult;
  }

  info(): ModelInfo {
    return callNative(() => this.native.info()) as ModelInfo;
  }

  /** Cumulative offload counters summed over layers, and next-layer prediction accuracy. */
  offloadStats(): ModelOffloadStats {
    return callNative(() => this.native.offloadStats());
  }

  /** Static policy: pins each layer's most used experts so far → the pinned experts per layer. */
  pinStatic(): Int32Array[] {
    return callNative(() => this.native.pinStatic());
  }

  resetOffloadStats(): void {
    callNative(() => this.native.resetOffloadStats());
  }

  dropCache(): void {
    callNative(() => this.native.dropCache());
  }

  get closed(): boolean {
    return this.native.closed;
  }

  close(): void {
    callNative(() => this.native.close());
  }
}

export async function createMoeModel(options: MoeModelOptions): Promise<MoeModel> {
  if (options === null || typeof options !== 'object') throw new MoecapTypeError('ERR_INVALID_ARGUMENT', 'options must be an object');
  const addon = loadAddon();
  const native = await callNative(() => addon.createModel(options));
  return new MoeModel(native, options);
}
