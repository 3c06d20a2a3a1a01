// A user's MoE checkpoint opened for one layer: the container (safetensors file, shards with an
// index, or a GGUF v3 file), its family plan, and the layer's explicit fp32 weights read range by
// range through the native tensor reader. createMoeLayer and an expert-parallel rank use the
// streaming source (the core reads rows from the files as it packs, one expert at a time, a rank
// only its own experts'); readLayer holds the whole layer's fp32 in memory (a test reference).
import * as fs from 'fs';
import * as path from 'path';
import { MoecapError, MoecapRangeError, shown } from '../errors';
import { loadAddon } from '../native/loader';
import { callNative } from '../native/call';
import type { CheckpointSliceSpec, CheckpointWeightsSpec, ExplicitWeights, MoeLayerOptions } from '../moe_layer';
import type { DType, RouterGroups } from '../types';
import {
  planFromGguf,
  planFromHfConfig,
  splitInterleavedBias,
  splitInterleavedRows,
  untransposeExperts,
  type FamilyPlan,
  type LayerSources,
  type TensorSlice,
} from './families';
import { GGML_TYPES, ggufTensorMap, readGgufFile } from './gguf';
import { readSafetensorsCheckpoint, SAFETENSORS_DTYPE_BYTES } from './safetensors';
import type { TensorEntry, TensorMap } from './tensor_map';
import { openExpertStore, type ExpertStore } from './expert_store';

export interface Checkpoint {
  path: string;
  format: 'safetensors' | 'gguf';
  files: string[];
  tensors: TensorMap;
  /** Where the family configuration came from (config.json, or the GGUF file). */
  configFile: string;
  plan: FamilyPlan;
  /** config.json's quantization_config for fp8 (block-scaled F8_E4M3 weights): the block each scale covers. */
  fp8Block?: [number, number];
}

/** On-disk dtypes the native reader converts to fp32 (F8_E4M3 with its block scales). */
export const READABLE_DTYPES = ['F32', 'F16', 'BF16', 'Q8_0', 'MXFP4', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q4_K', 'Q5_K', 'Q6_K', 'F8_E4M3'] as const;

/** quantization_config methods whose tensors this reader knows how to find (fp8: `<weight>_scale_inv` per block). */
const KNOWN_QUANT_METHODS = ['fp8', 'mxfp4'];

/** Validates config.json's quantization_config; for fp8, the [rows, cols] block its scales cover (default 128×128). */
function quantConfig(cfg: Record<string, unknown>, configFile: string): [number, number] | undefined {
  const q = cfg.quantization_config;
  if (q === undefined) return undefined;
  if (typeof q !== 'object' || q === null || Array.isArray(q))
    throw new MoecapError('ERR_CORRUPT_FILE', `${configFile}: quantization_config must be an object`);
  const method = (q as Record<string, unknown>).quant_method;
  if (typeof method !== 'string' || !KNOWN_QUANT_METHODS.includes(method))
    throw new MoecapError(
      'ERR_INVALID_OPTION',
      `not yet supported: ${configFile}: quantization_config.quant_method ${shown(method)} (known: ${KNOWN_QUANT_METHODS.join(', ')})`,
    );
  if (method !== 'fp8') return undefined;
  const fmt = (q as Record<string, unknown>).fmt;
  if (fmt !== undefined && fmt !== 'e4m3')
    throw new MoecapError('ERR_INVALID_OPTION', `not yet supported: ${configFile}: quantization_config.fmt ${shown(fmt)} (known: e4m3)`);
  const b = (q as Record<string, unknown>).weight_block_size ?? [128, 128];
  if (!Array.isArray(b) || b.length !== 2 || !b.every((x) => Number.isSafeInteger(x) && (x as number) > 0))
    throw new MoecapError('ERR_CORRUPT_FILE', `${configFile}: quantization_config.weight_block_size must be two positive integers, got ${shown(b)}`);
  return [b[0] as number, b[1] as number];
}

/** The native form of a block-scaled tensor's scales (F8_E4M3: its `<name>_scale_inv`), validated. */
export interface BlockScalesSpec {
  file: string;
  tensor: string;
  offset: number;
  dtype: string;
  rows: number;
  cols: number;
  blockRows: number;
  blockCols: number;
  weightRows: number;
  weightCols: number;
}

export function blockScalesOf(ck: Checkpoint, t: TensorEntry): BlockScalesSpec | undefined {
  if (t.dtype !== 'F8_E4M3') return undefined;
  if (!ck.fp8Block)
    throw new MoecapError(
      'ERR_CORRUPT_FILE',
      `${t.file}: tensor ${t.name} is F8_E4M3 but ${path.basename(ck.configFile)} has no quantization_config with quant_method "fp8" (its block scales are unknown)`,
    );
  if (t.shape.length !== 2)
    throw new MoecapError('ERR_INVALID_OPTION', `not yet supported: ${t.file}: F8_E4M3 tensor ${t.name} has ${t.shape.length} dimensions (2 expected)`);
  const name = `${t.name}_scale_inv`;
  const s = ck.tensors.get(name);
  if (!s) throw new MoecapError('ERR_CORRUPT_FILE', `${t.file}: F8_E4M3 tensor ${t.name} has no scale tensor ${name}`);
  const [br, bc] = ck.fp8Block;
  const [R, C] = t.shape;
  const want = [Math.ceil(R / br), Math.ceil(C / bc)];
  if (!sameShape(s.shape, want))
    throw new MoecapError(
      'ERR_CORRUPT_FILE',
      `${s.file}: scale tensor ${name} has shape [${s.shape.join(', ')}] but ${t.name} [${R}, ${C}] in ${br}×${bc} blocks needs [${want.join(', ')}]`,
    );
  if (!['F32', 'BF16', 'F16'].includes(s.dtype))
    throw new MoecapError('ERR_CORRUPT_FILE', `${s.file}: scale tensor ${name} is ${s.dtype} (F32, BF16 or F16 expected)`);
  return {
    file: s.file,
    tensor: name,
    offset: s.offset,
    dtype: s.dtype,
    rows: want[0],
    cols: want[1],
    blockRows: br,
    blockCols: bc,
    weightRows: R,
    weightCols: C,
  };
}

function isGgufFile(p: string): boolean {
  try {
    const fd = fs.openSync(p, 'r');
    try {
      const b = Buffer.alloc(4);
      return fs.readSync(fd, b, 0, 4, 0) === 4 && b.toString('latin1') === 'GGUF';
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return false;
  }
}

/** Opens a checkpoint folder (config.json + safetensors), a .safetensors file (config.json beside it) or a .gguf file. */
export function openCheckpoint(p: string): Checkpoint {
  if (typeof p !== 'string' || p === '')
    throw new MoecapError('ERR_INVALID_OPTION', 'checkpoint must be a path to a folder, a .safetensors file or a .gguf file');
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    throw new MoecapError('ERR_INVALID_OPTION', `checkpoint ${p} does not exist`);
  }
  let ggufPath: string | null = null;
  if (st.isFile() && isGgufFile(p)) ggufPath = p;
  else if (st.isDirectory() && !fs.existsSync(path.join(p, 'config.json'))) {
    const ggufs = fs.readdirSync(p).filter((f) => f.endsWith('.gguf'));
    if (ggufs.length === 1) ggufPath = path.join(p, ggufs[0]);
    else
      throw new MoecapError(
        'ERR_INVALID_OPTION',
        `checkpoint folder ${p} has no config.json${ggufs.length > 1 ? ` and ${ggufs.length} .gguf files (name one)` : ''}`,
      );
  }
  if (ggufPath) {
    const g = readGgufFile(ggufPath);
    const tensors = ggufTensorMap(g);
    const plan = planFromGguf(g.metadata, ggufPath, (name) => tensors.get(name)?.shape);
    return { path: p, format: 'gguf', files: [ggufPath], tensors, configFile: ggufPath, plan };
  }
  const dir = st.isDirectory() ? p : path.dirname(p);
  const configFile = path.join(dir, 'config.json');
  let cfg: unknown;
  try {
    cfg = JSON.parse(fs.readFileSync(configFile, 'utf8'));
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    throw new MoecapError(
      missing ? 'ERR_INVALID_OPTION' : 'ERR_CORRUPT_FILE',
      `${configFile}: ${missing ? 'missing (a safetensors checkpoint needs its config.json)' : `not valid JSON (${(e as Error).message})`}`,
    );
  }
  if (typeof cfg !== 'object' || cfg === null || Array.isArray(cfg)) throw new MoecapError('ERR_CORRUPT_FILE', `${configFile}: not a JSON object`);
  const plan = planFromHfConfig(cfg as Record<string, unknown>, configFile);
  const fp8Block = quantConfig(cfg as Record<string, unknown>, configFile);
  const { tensors, files } = readSafetensorsCheckpoint(p);
  return { path: p, format: 'safetensors', files, tensors, configFile, plan, ...(fp8Block ? { fp8Block } : {}) };
}

function sameShape(a: number[], b: number[]): boolean {
  const strip = (s: number[]) => {
    const out = [...s];
    while (out.length > 1 && out[0] === 1) out.shift();
    return out;
  };
  const x = strip(a),
    y = strip(b);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/** Checks the layer index and every tensor the layer needs (present, shape; with `readable`, a dtype the reader converts). */
export function checkLayer(ck: Checkpoint, layer: number, readable = true): LayerSources {
  const plan = ck.plan;
  if (!Number.isInteger(layer) || layer < 0 || layer >= plan.layers)
    throw new MoecapRangeError(
      'ERR_INVALID_OPTION',
      `layer must be an integer in [0, ${plan.layers - 1}] (${ck.path} has ${plan.layers} layers), got ${layer}`,
    );
  if (!plan.moeLayers.includes(layer))
    throw new MoecapRangeError('ERR_INVALID_OPTION', `layer ${layer} of ${ck.path} is a dense layer, not MoE (MoE layers: ${summariseLayers(plan.moeLayers)})`);
  const sources = plan.sources(layer);
  for (const want of sources.expected) {
    const t = ck.tensors.get(want.tensor);
    if (!t) throw new MoecapError('ERR_CORRUPT_FILE', `${ck.format === 'gguf' ? ck.files[0] : ck.path}: tensor ${want.tensor} (layer ${layer}) is missing`);
    if (!sameShape(t.shape, want.shape))
      throw new MoecapError(
        'ERR_CORRUPT_FILE',
        `${t.file}: tensor ${want.tensor} has shape [${t.shape.join(', ')}] but ${path.basename(ck.configFile)} implies [${want.shape.join(', ')}]`,
      );
    // gpt-oss's MXFP4 pairs are bytes (U8) the MXFP4 reader decodes.
    const mxPart = sources.mxfp4 && /_(blocks|scales)$/.test(want.tensor) && t.dtype === 'U8';
    if (readable && !mxPart && !(READABLE_DTYPES as readonly string[]).includes(t.dtype))
      throw new MoecapError(
        'ERR_INVALID_OPTION',
        `not yet supported: ${t.file}: tensor ${want.tensor} is ${t.dtype} (readable: ${READABLE_DTYPES.join(', ')})`,
      );
    if (readable) blockScalesOf(ck, t);
  }
  return sources;
}

export function summariseLayers(ls: number[]): string {
  if (ls.length === 0) return 'none';
  const parts: string[] = [];
  for (let i = 0; i < ls.length;) {
    let j = i;
    while (j + 1 < ls.length && ls[j + 1] === ls[j] + 1) j++;
    parts.push(j > i ? `${ls[i]}-${ls[j]}` : `${ls[i]}`);
    i = j + 1;
  }
  return parts.join(',');
}

interface ReaderAddon {
  readTensorElements(
    file: string,
    offset: number,
    dtype: string,
    elements: number,
    out: Float32Array,
    outOffset: number,
    tensor: string,
    scales?: BlockScalesSpec,
    row?: number,
  ): void;
  tensorReadCounters(resetPeak?: boolean): CheckpointReadCounters;
  readMxfp4Elements(
    blocksFile: string,
    blocksOffset: number,
    scalesFile: string,
    scalesOffset: number,
    elements: number,
    out: Float32Array,
    outOffset: number,
    tensor: string,
  ): void;
}

export interface CheckpointReadCounters {
  /** Every pread of checkpoint bytes that returned bytes, and their bytes. */
  preads: number;
  bytes: number;
  /** Bytes the staged experts (an expert's raw rows, read ahead of packing) hold now, and at most since the last reset. */
  stagedBytes: number;
  stagedPeakBytes: number;
}

/** Checkpoint reads of this process so far; `resetPeak`: stagedPeakBytes starts again from now. */
export function checkpointReadCounters(resetPeak = false): CheckpointReadCounters {
  return (loadAddon() as unknown as ReaderAddon).tensorReadCounters(resetPeak);
}

/** A whole gpt-oss MXFP4 tensor (`${name}_blocks` + `${name}_scales`), exactly, as fp32 [.., rows, cols]. */
function readMxfp4(ck: Checkpoint, name: string, elements: number): Float32Array {
  const b = ck.tensors.get(`${name}_blocks`)!,
    s = ck.tensors.get(`${name}_scales`)!;
  const out = new Float32Array(elements);
  const addon = loadAddon() as unknown as ReaderAddon;
  callNative(() => addon.readMxfp4Elements(b.file, b.offset, s.file, s.offset, elements, out, 0, name));
  return out;
}

/** On-disk bytes of one row (last dimension) of `t`, for any dtype its container knows. */
export function rowBytes(t: TensorEntry): number {
  const rowLen = t.shape.length ? t.shape[t.shape.length - 1] : 1;
  const block = GGML_BLOCKS.get(t.dtype);
  if (block && !(t.dtype in SAFETENSORS_DTYPE_BYTES)) return (rowLen / block.block) * block.bytes;
  return rowLen * (SAFETENSORS_DTYPE_BYTES[t.dtype] ?? block!.bytes);
}
const GGML_BLOCKS = new Map(Object.values(GGML_TYPES).map((t) => [t.name, t]));

/** Reads the slices, in order, into one Float32Array of `elements` values. */
/**
 * Rows [first, first + rows) of the matrix the slices form one after another (an expert's rows of a
 * stacked or per-expert weight), read alone: what `inspect --error` samples without reading the layer.
 */
export function readSliceRows(ck: Checkpoint, slices: TensorSlice[], first: number, rows: number): Float32Array {
  const addon = loadAddon() as unknown as ReaderAddon;
  let out: Float32Array | undefined;
  let row = 0;
  for (const s of slices) {
    const t = ck.tensors.get(s.tensor)!;
    const cols = t.shape.length ? t.shape[t.shape.length - 1] : 1;
    out ??= new Float32Array(rows * cols);
    const lo = Math.max(first, row),
      hi = Math.min(first + rows, row + s.rows);
    if (lo < hi) {
      const r = s.rowStart + (lo - row);
      const scales = blockScalesOf(ck, t);
      callNative(() => addon.readTensorElements(t.file, t.offset + r * rowBytes(t), t.dtype, (hi - lo) * cols, out!, (lo - first) * cols, s.tensor, scales, r));
    }
    row += s.rows;
  }
  if (!out || row < first + rows) throw new MoecapError('ERR_INTERNAL', `rows ${first}..${first + rows} are past the ${row} rows of ${slices[0]?.tensor}`);
  return out;
}

function readSlices(ck: Checkpoint, slices: TensorSlice[], elements: number): Float32Array {
  let out: Float32Array;
  try {
    out = new Float32Array(elements);
  } catch {
    throw new MoecapRangeError('ERR_OUT_OF_MEMORY', `cannot allocate ${elements * 4} bytes for a layer matrix of ${ck.path}`);
  }
  const addon = loadAddon() as unknown as ReaderAddon;
  let at = 0;
  for (const s of slices) {
    const t = ck.tensors.get(s.tensor)!;
    const rowLen = t.shape.length ? t.shape[t.shape.length - 1] : 1;
    const n = s.rows * rowLen;
    const scales = blockScalesOf(ck, t);
    callNative(() => addon.readTensorElements(t.file, t.offset + s.rowStart * rowBytes(t), t.dtype, n, out, at, s.tensor, scales, s.rowStart));
    at += n;
  }
  if (at !== elements) throw new MoecapError('ERR_INTERNAL', `read ${at} of ${elements} values for ${slices[0]?.tensor}`);
  return out;
}

/** The layer's shape, routing and explicit fp32 weights, read whole from the checkpoint (a reference for tests). */
export function readLayer(ck: Checkpoint, layer: number): Omit<MoeLayerOptions, 'weights'> & { weights: ExplicitWeights } {
  const src = checkLayer(ck, layer);
  const p = ck.plan;
  const { hidden: H, intermediate: F, experts: E } = p;
  // Transposed (gpt-oss, Llama 4) and MXFP4 tensors, untransposed or decoded here.
  const router = readSlices(ck, src.router, E * H);
  const weights: ExplicitWeights = src.mxfp4
    ? { router, ...splitInterleavedRows(readMxfp4(ck, src.mxfp4.gateUp, E * 2 * F * H), E, F, H), down: readMxfp4(ck, src.mxfp4.down, E * H * F) }
    : src.transposed
      ? {
          router,
          ...untransposeExperts(
            readSlices(ck, src.transposed.gateUp, E * H * 2 * F),
            readSlices(ck, src.transposed.down, E * F * H),
            E,
            F,
            H,
            src.transposed.interleaved,
          ),
        }
      : { router, gate: readSlices(ck, src.gate, E * F * H), up: readSlices(ck, src.up, E * F * H), down: readSlices(ck, src.down, E * H * F) };
  if (src.shared && p.sharedExperts) {
    const Fs = p.sharedExperts.intermediate;
    weights.shared = {
      gate: readSlices(ck, src.shared.gate, Fs * H),
      up: readSlices(ck, src.shared.up, Fs * H),
      down: readSlices(ck, src.shared.down, H * Fs),
    };
    if (src.shared.gateWeight) weights.shared.gateWeight = readSlices(ck, src.shared.gateWeight, H);
  }
  const selectionBias = src.selectionBias ? readSlices(ck, src.selectionBias, E) : undefined;
  return { ...layerPlanOptions(ck, src), ...(selectionBias ? { selectionBias } : {}), weights };
}

/** The layer's shape, routing and expert variant as engine options (no weights), from its family plan. */
function layerPlanOptions(ck: Checkpoint, src: LayerSources): Omit<MoeLayerOptions, 'weights'> {
  const p = ck.plan;
  return {
    hidden: p.hidden,
    intermediate: p.intermediate,
    experts: p.experts,
    topK: p.topK,
    scoring: p.scoring,
    renormalize: p.renormalize,
    routedScalingFactor: p.routedScalingFactor,
    ...(p.groups ? { groups: p.groups } : {}),
    ...(p.sharedExperts ? { sharedExperts: p.sharedExperts } : {}),
    ...layerVariant(ck, src),
  };
}

/** The expert and router variant a family's layer needs (gpt-oss, Llama 4, Phi-3.5-MoE), from its files and config. */
function layerVariant(ck: Checkpoint, src: LayerSources): Partial<MoeLayerOptions> {
  const p = ck.plan,
    E = p.experts,
    F = p.intermediate,
    H = p.hidden;
  const variant: Partial<MoeLayerOptions> = {};
  if (src.routerBias) variant.routerBias = readSlices(ck, src.routerBias, E);
  const eb = src.expertBiases;
  if (eb)
    variant.expertBiases = {
      ...(eb.gateUp
        ? splitInterleavedBias(readSlices(ck, eb.gateUp, E * 2 * F), E, F)
        : { gate: readSlices(ck, eb.gate!, E * F), up: readSlices(ck, eb.up!, E * F) }),
      down: readSlices(ck, eb.down, E * H),
    };
  if (p.clampedSwiglu) variant.clampedSwiglu = p.clampedSwiglu;
  if (p.scoreOnInput) variant.scoreOnInput = true;
  if (p.jitterEps !== undefined) variant.jitterEps = p.jitterEps;
  return variant;
}

/** The layer's matrices as native row ranges (read on demand by the core), and the key that identifies them. */
export function layerWeightsSpec(ck: Checkpoint, layer: number, src: LayerSources): CheckpointWeightsSpec {
  const spec = (slices: TensorSlice[]): CheckpointSliceSpec[] =>
    slices.map((s) => {
      const t = ck.tensors.get(s.tensor)!;
      const cols = t.shape.length ? t.shape[t.shape.length - 1] : 1;
      const scales = blockScalesOf(ck, t);
      return {
        file: t.file,
        tensor: s.tensor,
        offset: t.offset + s.rowStart * rowBytes(t),
        row: s.rowStart,
        rows: s.rows,
        cols,
        dtype: t.dtype,
        ...(scales ? { scales } : {}),
      };
    });
  const experts = src.transposed ? transposedExpertSpecs(ck, src.transposed) : src.mxfp4 ? mxfp4ExpertSpecs(ck, src.mxfp4) : null;
  const w: Omit<CheckpointWeightsSpec['checkpoint'], 'key'> = {
    router: spec(src.router),
    ...(experts ?? { gate: spec(src.gate), up: spec(src.up), down: spec(src.down) }),
  };
  if (src.shared && ck.plan.sharedExperts)
    w.shared = {
      gate: spec(src.shared.gate),
      up: spec(src.shared.up),
      down: spec(src.shared.down),
      ...(src.shared.gateWeight ? { gateWeight: spec(src.shared.gateWeight) } : {}),
    };
  // Each source file's size and mtime: a shard rewritten or touched gives another key.
  const files = [
    ...new Set(
      [w.router, w.gate, w.up, w.down, ...(w.shared ? Object.values(w.shared) : [])]
        .flat()
        .flatMap((x) => [x.file, ...(x.scales ? [x.scales.file] : []), ...(x.mxScales ? [x.mxScales.file] : [])]),
    ),
  ].sort();
  const stamp = files.map((f) => {
    const st = fs.statSync(f);
    return [path.resolve(f), st.size, st.mtimeMs];
  });
  const key = JSON.stringify({ v: 1, layer, files: stamp, shape: [ck.plan.hidden, ck.plan.intermediate, ck.plan.experts], w });
  return { checkpoint: { key, ...w } };
}

/**
 * gpt-oss's and Llama 4's transposed experts (x @ W: gate_up [E, H, 2F], down [E, F, H]) as
 * per-expert column slices: gate row f of expert e is column f (gpt-oss interleaved: 2f) of the
 * expert's H rows of 2F, up row f column F + f (2f + 1); down row h is column h of its F rows of H.
 * The core reads the expert's whole slab once and gathers the columns as it packs.
 */
function transposedExpertSpecs(ck: Checkpoint, tr: NonNullable<LayerSources['transposed']>) {
  const { hidden: H, intermediate: F, experts: E } = ck.plan;
  const gu = ck.tensors.get(tr.gateUp[0].tensor)!,
    dn = ck.tensors.get(tr.down[0].tensor)!;
  const column = (t: TensorEntry, e: number, inRows: number, rows: number, colStart: number, colStep: number): CheckpointSliceSpec => ({
    file: t.file,
    tensor: t.name,
    offset: t.offset + e * inRows * rowBytes(t),
    row: e * inRows,
    rows,
    cols: inRows,
    dtype: t.dtype,
    transposed: true,
    tensorCols: t.shape[t.shape.length - 1],
    colStart,
    colStep,
  });
  const experts = Array.from({ length: E }, (_, e) => e);
  return {
    gate: experts.map((e) => column(gu, e, H, F, 0, tr.interleaved ? 2 : 1)),
    up: experts.map((e) => column(gu, e, H, F, tr.interleaved ? 1 : F, tr.interleaved ? 2 : 1)),
    down: experts.map((e) => column(dn, e, F, H, 0, 1)),
  };
}

/**
 * gpt-oss's MXFP4 release (`*_blocks` [E, rows, cols/32, 16] + `*_scales` [E, rows, cols/32],
 * [out, in]): gate = the even rows of gate_up, up = the odd ones (row step 2), down its rows.
 */
function mxfp4ExpertSpecs(ck: Checkpoint, mx: NonNullable<LayerSources['mxfp4']>) {
  const { hidden: H, intermediate: F, experts: E } = ck.plan;
  const rows = (name: string, cols: number, first: number, count: number, step: number): CheckpointSliceSpec => {
    const b = ck.tensors.get(`${name}_blocks`)!,
      s = ck.tensors.get(`${name}_scales`)!;
    return {
      file: b.file,
      tensor: name,
      offset: b.offset + (first * cols) / 2,
      row: first,
      rows: count,
      cols,
      dtype: 'MXFP4',
      ...(step !== 1 ? { rowStep: step } : {}),
      mxScales: { file: s.file, offset: s.offset + (first * cols) / 32 },
    };
  };
  return { gate: [rows(mx.gateUp, H, 0, E * F, 2)], up: [rows(mx.gateUp, H, 1, E * F, 2)], down: [rows(mx.down, F, 0, E * H, 1)] };
}

/** createMoeLayer's options when they name a checkpoint. */
export type CheckpointLayerOptions = Partial<Omit<MoeLayerOptions, 'weights' | 'selectionBias' | 'routerBias' | 'expertBiases' | 'dtype'>> & {
  /** Expert storage; 'native' (the default): the dtype the checkpoint stores them in (nativeDtype). */
  dtype?: DType | 'native';
  /** A checkpoint folder (config.json + safetensors), a .safetensors file or a .gguf file. */
  checkpoint: string;
  /** The decoder layer index (an MoE layer). */
  layer: number;
  /** With `offload`: the folder of converted expert files reused across runs (default defaultCacheDir()). */
  cacheDir?: string;
};

const FROM_CHECKPOINT = [
  'hidden',
  'intermediate',
  'experts',
  'topK',
  'scoring',
  'renormalize',
  'routedScalingFactor',
  'groups',
  'sharedExperts',
  'clampedSwiglu',
  'scoreOnInput',
  'jitterEps',
] as const;

/**
 * Resolves checkpoint options into the engine's options (weights as native row ranges, read as the
 * layer packs); a given option that contradicts the checkpoint is an error naming both values.
 */
export function resolveCheckpointOptions(o: CheckpointLayerOptions): MoeLayerOptions {
  return prepareCheckpointLayer(o).options;
}

/** An expert-parallel rank's share of a checkpoint layer: the core packs (and so reads) only `experts`. */
export interface CheckpointShare {
  rank: number;
  ranks: number;
  /** The routed experts this rank holds (placeExperts). */
  experts: readonly number[];
}

/**
 * The engine options of a checkpoint layer, weights as native row ranges (the core reads and packs
 * them one expert at a time), and with `offload` the expert file in the cache folder: reused when
 * its manifest's key matches, else converted by createLayer and then committed (commitExpertStore).
 * With `share` (an expert-parallel rank), the core packs only the share's experts, so only their
 * rows are read; the rank's expert file is its own (the engine's ".rank<r>-of-<P>" file) and its
 * key names the share.
 */
export function prepareCheckpointLayer(o: CheckpointLayerOptions, share?: CheckpointShare): { options: MoeLayerOptions; store: ExpertStore | null } {
  const { checkpoint, layer, cacheDir, ...rest } = o as CheckpointLayerOptions & { weights?: unknown; selectionBias?: unknown };
  if ((rest as { weights?: unknown }).weights !== undefined)
    throw new MoecapError('ERR_INVALID_OPTION', 'weights cannot be given with checkpoint (the checkpoint holds them)');
  for (const key of ['selectionBias', 'routerBias', 'expertBiases'])
    if ((rest as Record<string, unknown>)[key] !== undefined)
      throw new MoecapError('ERR_INVALID_OPTION', `${key} cannot be given with checkpoint (the checkpoint holds it)`);
  if (typeof layer !== 'number') throw new MoecapError('ERR_INVALID_OPTION', 'layer (the decoder layer index) is required with checkpoint');
  if (cacheDir !== undefined && (typeof cacheDir !== 'string' || cacheDir === ''))
    throw new MoecapError('ERR_INVALID_OPTION', 'cacheDir must be a non-empty string');
  const ck = openCheckpoint(checkpoint);
  const src = checkLayer(ck, layer);
  // A checkpoint runs at its own precision unless a dtype is asked for.
  if (rest.dtype === undefined || rest.dtype === 'native') rest.dtype = nativeDtype(ck, src);
  const p = ck.plan;
  const fromFile = layerPlanOptions(ck, src);
  rejectContradictions(rest, fromFile, checkpoint, layer);
  const weights = layerWeightsSpec(ck, layer, src);
  const selectionBias = src.selectionBias ? readSlices(ck, src.selectionBias, p.experts) : undefined;
  const options = { ...rest, ...fromFile, ...(selectionBias ? { selectionBias } : {}), weights } as MoeLayerOptions;
  let store: ExpertStore | null = null;
  // A rank holding no routed expert has no expert file (the engine writes none).
  if (options.offload && typeof options.offload === 'object' && (!share || share.experts.length > 0)) {
    const key = share ? JSON.stringify({ layer: weights.checkpoint.key, ranks: share.ranks, experts: [...share.experts] }) : weights.checkpoint.key;
    const rank = share ? { rank: share.rank, ranks: share.ranks } : undefined;
    store = openExpertStore({ checkpoint, layer, dtype: options.dtype ?? 'f32', key, cacheDir, file: options.offload.path, rank });
    options.offload = { ...options.offload, path: store.offloadPath };
  }
  return { options, store };
}

/** On-disk expert formats → the engine dtype that holds their values as stored. */
// F16 → f32: the engine has no f16 storage and bf16 would round F16's 10-bit mantissas; f32 holds them exactly.
const NATIVE_DTYPES: Record<string, DType> = { MXFP4: 'mxfp4', F8_E4M3: 'fp8', BF16: 'bf16', F16: 'f32', F32: 'f32', Q8_0: 'int8', Q4_0: 'int4' };

/**
 * dtype 'native': the engine dtype of the layer's expert tensors as stored — MXFP4 (gpt-oss
 * `_blocks`/`_scales`, GGUF MXFP4) → mxfp4, kept bitwise; F8_E4M3 with 128-wide block scales → fp8,
 * codes and scales kept bitwise; BF16 → bf16, F32 → f32, Q8_0 → int8, Q4_0 → int4 (every value kept).
 * F16 maps to f32 (exact). Any other format, or experts in several formats, is an error naming them.
 */
export function nativeDtype(ck: Checkpoint, src: LayerSources): DType {
  if (src.mxfp4) return 'mxfp4';
  const slices = src.transposed ? [...src.transposed.gateUp, ...src.transposed.down] : [...src.gate, ...src.up, ...src.down];
  const formats = [...new Set(slices.map((s) => ck.tensors.get(s.tensor)!.dtype))];
  const dt = formats.length === 1 ? NATIVE_DTYPES[formats[0]] : undefined;
  if (!dt)
    throw new MoecapError(
      'ERR_INVALID_OPTION',
      `dtype 'native': ${ck.path} stores this layer's experts as ${formats.join(', ')}, which no engine dtype holds as stored (${Object.keys(NATIVE_DTYPES).join(', ')} do); pick a dtype`,
    );
  return dt;
}

/** A given option that differs from the checkpoint's value is an error naming both. */
function rejectContradictions(rest: object, fromFile: object, checkpoint: string, layer: number): void {
  for (const key of FROM_CHECKPOINT) {
    const given = (rest as Record<string, unknown>)[key];
    if (given === undefined) continue;
    const own = (fromFile as Record<string, unknown>)[key];
    if (!sameValue(given, own) && !(key === 'sharedExperts' && sharedEqual(given, own)) && !(key === 'groups' && groupsEqual(given, own)))
      throw new MoecapError(
        'ERR_INVALID_OPTION',
        `option ${key} ${shown(given)} contradicts the checkpoint ${checkpoint}, whose layer ${layer} has ${key} ${own === undefined ? 'unset' : shown(own)}`,
      );
  }
}

// Equal values, objects by their defined fields whatever their order ({alpha, limit} is {limit, alpha}).
function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) return false;
  const fields = (o: object) => Object.keys(o).filter((k) => (o as Record<string, unknown>)[k] !== undefined);
  const ka = fields(a),
    kb = fields(b);
  return ka.length === kb.length && ka.every((k) => kb.includes(k) && sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

function groupsEqual(a: unknown, b: unknown): boolean {
  const x = a as RouterGroups | undefined,
    y = b as RouterGroups | undefined;
  return !!x && !!y && x.count === y.count && x.keep === y.keep && (x.score ?? 'top2-sum') === (y.score ?? 'top2-sum');
}

function sharedEqual(a: unknown, b: unknown): boolean {
  const x = a as { intermediate?: number; gated?: boolean } | undefined,
    y = b as { intermediate?: number; gated?: boolean } | undefined;
  return !!x && !!y && x.intermediate === y.intermediate && !!x.gated === !!y.gated;
}
