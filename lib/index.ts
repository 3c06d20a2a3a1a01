export {
  createMoeLayer,
  systemInfo,
  MoeLayer,
  type MoeLayerOptions,
  type ExplicitWeights,
  type SeededWeights,
  type ForwardResult,
  type RouteResult,
  type ReferenceResult,
  type ForwardStats,
  type LayerInfo,
  type Scoring,
  type DType,
  type Isa,
  type CachePolicy,
  type OffloadOptions,
  type OffloadInfo,
} from './moe_layer';
export { createMoeModel, MoeModel, type MoeModelOptions, type ModelForwardResult, type ModelInfo } from './moe_model';
export { loadAddon } from './native/loader';
export { fidelity, type Fidelity } from './fidelity';
export { VERSION } from './version';
export { Counters, probeCounters, type CounterReading, type CounterAvailability } from './counters';
