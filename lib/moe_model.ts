// A stack of MoE layers with residuals (x ← x + moe_l(x)), for offload across layers: with
// offload + prefetch, each layer's experts are predicted from the previous layer's input through
// its own router and prefetched while the previous layer computes.
import { MoecapError, MoecapTypeError, shown } from './errors';
import { openCheckpoint, prepareCheckpointLayer, type CheckpointLayerOptions } from './checkpoint/checkpoint';
import { buildWithExpertStores } from './checkpoint/expert_store';
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

/** A model of a checkpoint's MoE layers: shapes, routing and weights of each from the file. */
export type CheckpointModelOptions = Omit<CheckpointLayerOptions, 'layer' | 'poison'> & {
  /** 'all' of the checkpoint's MoE layers, or decoder layer indices (MoE layers), run in this order. */
  layers: 'all' | number[];
};

export class MoeModel {
  /** A checkpoint model with offload: each layer's converted expert file, and whether this run reused it. */
  expertStores?: Array<{ layer: number; file: string; reused: boolean }>;
  /** The checkpoint's decoder layer index of each model layer (a checkpoint model). */
  checkpointLayers?: number[];
  /** @internal */
  constructor(
    private readonly native: NativeMoeModel,
    readonly options: Readonly<MoeModelOptions | CheckpointModelOptions>,
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

/**
 * A stack of seeded layers (`layers: N, weights: { seed }`), or a checkpoint's MoE layers
 * (`{ checkpoint, layers: 'all' | [...], dtype?, offload?, cacheDir? }`): each layer's shape, routing
 * and weights come from the file; with offload each layer's experts are converted once into a
 * cached expert file (see createMoeLayer).
 */
export async function createMoeModel(options: MoeModelOptions | CheckpointModelOptions): Promise<MoeModel> {
  if (options === null || typeof options !== 'object') throw new MoecapTypeError('ERR_INVALID_ARGUMENT', 'options must be an object');
  const addon = loadAddon();
  if (!('checkpoint' in options) || options.checkpoint === undefined) {
    const native = await callNative(() => addon.createModel(options));
    return new MoeModel(native, options as MoeModelOptions);
  }
  const { layers: which, ...rest } = options as CheckpointModelOptions;
  let layers: number[];
  if (which === 'all') layers = openCheckpoint(rest.checkpoint).plan.moeLayers;
  else if (Array.isArray(which) && which.length > 0 && which.every((l) => Number.isInteger(l))) layers = which;
  else throw new MoecapError('ERR_INVALID_OPTION', `layers must be 'all' or a non-empty list of decoder layer indices with checkpoint, got ${shown(which)}`);
  // An explicit offload.path is a prefix, as for seeded models: layer L's file is "<path>.<L>".
  const own = (layer: number) => (rest.offload?.path ? { offload: { ...rest.offload, path: `${rest.offload.path}.${layer}` } } : {});
  const prepared = layers.map((layer) => prepareCheckpointLayer({ ...rest, ...own(layer), layer } as CheckpointLayerOptions));
  // A damaged cached file is converted again (once per layer), as createMoeLayer does.
  const { built: native, stores } = await buildWithExpertStores(
    prepared.map((p) => p.store),
    () => callNative(() => addon.createModel({ layers: prepared.map((p) => p.options) })),
  );
  const model = new MoeModel(native, options);
  model.checkpointLayers = layers;
  const kept = stores.flatMap((s, i) => (s ? [{ layer: layers[i], file: s.file, reused: s.reused }] : []));
  if (kept.length) model.expertStores = kept;
  return model;
}
