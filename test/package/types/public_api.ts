// Compiled with `tsc --noEmit` by test/package/package.test.ts against the published declarations
// (dist/index.d.ts through the package name): the public API with correct types, and wrong uses
// that must not compile (each `@ts-expect-error` fails the compile if the line below it is accepted).
import {
  createMoeLayer,
  createMoeModel,
  backendInfo,
  systemInfo,
  fidelity,
  MoecapError,
  MoecapTypeError,
  MoecapRangeError,
  UsageError,
  PlanError,
  ReportInputError,
  type DType,
  type ErrorCode,
  type ForwardResult,
  type LayerInfo,
  type OffloadStats,
  type ModelOffloadStats,
  type BackendInfo,
  type SystemInfo,
  type Fidelity,
  type KernelIsa,
} from 'moecap';

export async function usesTheApi(): Promise<void> {
  const layer = await createMoeLayer({ hidden: 64, intermediate: 32, experts: 8, topK: 2, dtype: 'bf16', isa: 'avx2', weights: { seed: 1 } });
  const r: ForwardResult = await layer.forward(new Float32Array(64));
  const out: Float32Array = r.output;
  const ids: Int32Array = r.expertIds;
  const dtype: DType = r.stats.dtype;
  const isa: KernelIsa = r.stats.isa;
  const info: LayerInfo = layer.info();
  const d2: DType = info.dtype;
  const counters: OffloadStats = layer.offloadStats();
  const hits: number = counters.hits;
  const ref = await layer.reference(new Float32Array(64), Int32Array.from([0]));
  const f: Fidelity = fidelity(out, ids, ref, 64, 2);
  const model = await createMoeModel({ hidden: 64, intermediate: 32, experts: 8, topK: 2, layers: 2, weights: { seed: 1 } });
  const ms: ModelOffloadStats = model.offloadStats();
  const m2: OffloadStats = ms; // the layer's and the model's counters are one shape
  const b: BackendInfo = backendInfo('cpu');
  const s: SystemInfo = systemInfo();
  void [dtype, isa, d2, hits, f, m2, b, s];

  // @ts-expect-error dtype is a DType, not any string
  await createMoeLayer({ hidden: 64, intermediate: 32, experts: 8, topK: 2, dtype: 'fp16', weights: { seed: 1 } });
  // @ts-expect-error isa is an Isa
  await createMoeLayer({ hidden: 64, intermediate: 32, experts: 8, topK: 2, isa: 'sse2', weights: { seed: 1 } });
  // @ts-expect-error forward takes a Float32Array
  await layer.forward([1, 2, 3]);
  // @ts-expect-error info().dtype is not a number
  const wrong: number = info.dtype;
  // @ts-expect-error a model's weights are seeded only
  await createMoeModel({ hidden: 64, intermediate: 32, experts: 8, topK: 2, layers: 2, weights: { router: new Float32Array(1) } });
  void wrong;
}

export function classifies(e: unknown): ErrorCode | null {
  if (e instanceof MoecapTypeError || e instanceof MoecapRangeError || e instanceof UsageError || e instanceof PlanError || e instanceof ReportInputError)
    return e.code;
  if (e instanceof MoecapError) return e.code;
  // @ts-expect-error not an error code
  const bad: ErrorCode = 'ERR_NOPE';
  void bad;
  return null;
}
