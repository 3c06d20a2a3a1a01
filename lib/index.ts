export {
  createMoeLayer,
  systemInfo,
  MoeLayer,
  type MoeLayerOptions,
  type CheckpointLayerOptions,
  type ExplicitWeights,
  type SeededWeights,
  type ForwardResult,
  type RouteResult,
  type ReferenceResult,
  type ForwardStats,
  type LayerInfo,
  type Scoring,
  type RouterGroups,
  type GroupScore,
  type DType,
  type Isa,
  type KernelIsa,
  type CachePolicy,
  type OffloadOptions,
  type OffloadInfo,
  type OffloadStats,
  type OffloadPassStats,
  type SystemInfo,
} from './moe_layer';
export {
  createMoeModel,
  MoeModel,
  type MoeModelOptions,
  type CheckpointModelOptions,
  type ModelForwardResult,
  type ModelInfo,
  type ModelStats,
  type ModelOffloadStats,
  type Prediction,
} from './moe_model';
export { MoecapError, MoecapTypeError, MoecapRangeError, UsageError, PlanError, ReportInputError, ERROR_CODES, type ErrorCode } from './errors';
export { loadAddon } from './native/loader';
export { backendInfo, type Backend, type BackendInfo } from './backend';
export { fidelity, type Fidelity } from './fidelity';
export { VERSION } from './version';
export {
  abortEp,
  calibrateLink,
  createEpLayer,
  EpLayer,
  finalizeEp,
  imbalance,
  initEp,
  rankFirstToken,
  simulateEp,
  type EpOptions,
  type EpPass,
  type EpPlacementKind,
  type EpRankStats,
  type EpSimulation,
  type EpWorld,
  type LinkCalibration,
} from './ep';
export { Counters, probeCounters, type CounterReading, type CounterAvailability } from './counters';
export type { ResultsView } from './report/results_view';
export {
  run,
  calibrate,
  PRESETS,
  DATASHEETS,
  type RunPlan,
  type Results,
  type ConfigResult,
  type Progress,
  type RunOptions,
  type CalibrateOptions,
  type CpuMeasuredProfile,
  type ModelPreset,
} from './cap';

/** Writes the HTML CAP report of a results.json (or run folder); see `moecap report`. Loads Vega on first use.
 * An existing `out` that is not an earlier report (such as the results file itself) is refused unless `force`. */
export async function writeReport(input: string, out?: string, opts: { force?: boolean } = {}): Promise<{ file: string }> {
  const { writeReport: write } = await import('./report/write_report');
  const { file } = await write(input, out, opts);
  return { file };
}
