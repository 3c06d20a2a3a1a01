// `moecap inspect --error`: how far each engine dtype moves a checkpoint's own weights. The values
// are decoded exactly from the source format (the native reader), then converted by the engine's
// own conversions in the core (bf16 rounding, the int8/int4 block quantisers); this file picks the
// tensors, sums the per-expert results and formats them.
import { MoecapError } from '../errors';
import { loadAddon } from '../native/loader';
import { callNative } from '../native/call';
import { checkLayer, readSliceRows, type Checkpoint } from './checkpoint';

export const ERROR_DTYPES = ['f32', 'bf16', 'int8', 'int4', 'mxfp4', 'fp8'] as const;
export type ErrorDType = (typeof ERROR_DTYPES)[number];

export interface ConversionErrorRow {
  /** router, or gate/up/down over the sampled experts. */
  kind: 'router' | 'gate' | 'up' | 'down';
  /** On-disk dtype of the tensor(s). */
  source: string;
  /** Engine dtype converted to (the router always stays f32 in the engine). */
  dtype: ErrorDType;
  maxAbs: number;
  /** sqrt(Σ err² / Σ value²) over the values measured. */
  relRms: number;
  /** maxAbs is 0: the engine holds the checkpoint's values bitwise. */
  exact: boolean;
  values: number;
}

export interface ConversionErrorReport {
  layer: number;
  experts: number[];
  rows: ConversionErrorRow[];
}

interface ErrorAddon {
  conversionError(values: Float32Array, rows: number, cols: number, dtype: string): { maxAbs: number; sumSqErr: number; sumSqRef: number; values: number };
}

/** `n` experts spread evenly over [0, E). */
export function sampleExperts(E: number, n: number): number[] {
  const k = Math.min(E, n);
  if (k <= 1) return [0];
  return [...new Set(Array.from({ length: k }, (_, i) => Math.round((i * (E - 1)) / (k - 1))))];
}

export function measureConversionError(ck: Checkpoint, dtypes: readonly ErrorDType[], opts: { layer?: number; experts?: number } = {}): ConversionErrorReport {
  const p = ck.plan;
  const layer = opts.layer ?? p.moeLayers[0];
  if (layer === undefined) throw new MoecapError('ERR_INVALID_OPTION', `${ck.path} has no MoE layer`);
  const src = checkLayer(ck, layer);
  const experts = sampleExperts(p.experts, opts.experts ?? 4);
  if (src.transposed || src.mxfp4)
    throw new MoecapError('ERR_INVALID_OPTION', `not yet supported: --error for ${ck.path}, whose experts are stored transposed or as MXFP4 blocks`);
  const addon = loadAddon() as unknown as ErrorAddon;
  const { hidden: H, intermediate: F } = p;
  const dtypeOf = (slices: { tensor: string }[]) => [...new Set(slices.map((s) => ck.tensors.get(s.tensor)!.dtype))].join('+');
  const rows: ConversionErrorRow[] = [];
  const measure = (kind: ConversionErrorRow['kind'], source: string, dtype: ErrorDType, parts: Array<[Float32Array, number, number]>) => {
    let maxAbs = 0,
      sumSqErr = 0,
      sumSqRef = 0,
      values = 0;
    for (const [v, r, c] of parts) {
      const e = callNative(() => addon.conversionError(v, r, c, dtype));
      maxAbs = Math.max(maxAbs, e.maxAbs);
      sumSqErr += e.sumSqErr;
      sumSqRef += e.sumSqRef;
      values += e.values;
    }
    rows.push({ kind, source, dtype, maxAbs, relRms: sumSqRef > 0 ? Math.sqrt(sumSqErr / sumSqRef) : 0, exact: maxAbs === 0, values });
  };
  measure('router', dtypeOf(src.router), 'f32', [[readSliceRows(ck, src.router, 0, p.experts), p.experts, H]]);
  // Only the sampled experts' rows are read.
  const per = (slices: typeof src.gate, r: number, c: number): Array<[Float32Array, number, number]> =>
    experts.map((e) => [readSliceRows(ck, slices, e * r, r), r, c]);
  const gate = per(src.gate, F, H),
    up = per(src.up, F, H),
    down = per(src.down, H, F);
  for (const dtype of dtypes) {
    measure('gate', dtypeOf(src.gate), dtype, gate);
    measure('up', dtypeOf(src.up), dtype, up);
    measure('down', dtypeOf(src.down), dtype, down);
  }
  return { layer, experts, rows };
}

export function formatConversionError(r: ConversionErrorReport): string {
  const lines = [
    `conversion error of layer ${r.layer} (router; experts ${r.experts.join(', ')}), checkpoint values decoded exactly, converted by the engine:`,
    `  ${'tensor'.padEnd(7)}${'on disk'.padEnd(10)}${'engine'.padEnd(8)}${'max abs'.padStart(12)}${'rel rms'.padStart(12)}`,
  ];
  for (const x of r.rows) {
    const note = x.exact ? '  exact' : '';
    lines.push(
      `  ${x.kind.padEnd(7)}${x.source.padEnd(10)}${x.dtype.padEnd(8)}${(x.exact ? '0' : x.maxAbs.toExponential(3)).padStart(12)}${(x.exact ? '0' : x.relRms.toExponential(3)).padStart(12)}${note}${x.kind === 'router' ? ' (the engine keeps the router in fp32)' : ''}`,
    );
  }
  return lines.join('\n') + '\n';
}
