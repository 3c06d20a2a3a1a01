// What a checkpoint layer is fed. By default: RMS-normalised N(0,1) vectors scaled by the layer's
// own post-attention norm weight (the MoE block's input is RMSNorm(h)·g), so the router sees
// inputs with the checkpoint's per-channel scales. `--activations FILE`: captured hidden states
// [T, H] (safetensors or .npy; f32/f16/bf16), validated against the layer's hidden size.
import * as fs from 'fs';
import { MoecapError } from '../errors';
import { naturalTokens } from '../cap/routing';
import { loadAddon } from '../native/loader';
import { callNative } from '../native/call';
import type { Checkpoint } from './checkpoint';
import { readSafetensorsFile } from './safetensors';
import { openForRead, readRange } from './tensor_map';

interface ReaderAddon {
  readTensorElements(file: string, offset: number, dtype: string, elements: number, out: Float32Array, outOffset: number, tensor: string): void;
}

function readElements(file: string, offset: number, dtype: string, n: number, tensor: string): Float32Array {
  const out = new Float32Array(n);
  const addon = loadAddon() as unknown as ReaderAddon;
  callNative(() => addon.readTensorElements(file, offset, dtype, n, out, 0, tensor));
  return out;
}

/** The layer's post-attention norm weight [H] (HF post_attention_layernorm, GGUF ffn_norm), or null when the checkpoint has none. */
export function normWeight(ck: Checkpoint, layer: number): { tensor: string; values: Float32Array } | null {
  const name = ck.format === 'gguf' ? `blk.${layer}.ffn_norm.weight` : `model.layers.${layer}.post_attention_layernorm.weight`;
  const t = ck.tensors.get(name);
  if (!t) return null;
  const H = ck.plan.hidden;
  if (t.shape.reduce((a, b) => a * b, 1) !== H)
    throw new MoecapError('ERR_CORRUPT_FILE', `${t.file}: tensor ${name} has shape [${t.shape.join(', ')}], expected [${H}] (hidden size)`);
  if (!['F32', 'F16', 'BF16'].includes(t.dtype)) throw new MoecapError('ERR_INVALID_OPTION', `not yet supported: ${t.file}: tensor ${name} is ${t.dtype}`);
  return { tensor: name, values: readElements(t.file, t.offset, t.dtype, H, name) };
}

/** T rows of RMS-normalised N(0,1) vectors times `g` (per channel), seeded. */
export function normalisedInputs(T: number, g: Float32Array, seed: number): Float32Array {
  const H = g.length;
  const x = naturalTokens(T, H, seed);
  for (let t = 0; t < T; t++) {
    let ss = 0;
    for (let i = 0; i < H; i++) ss += x[t * H + i] * x[t * H + i];
    const inv = 1 / Math.sqrt(ss / H + 1e-6);
    for (let i = 0; i < H; i++) x[t * H + i] = x[t * H + i] * inv * g[i];
  }
  return x;
}

/** Captured activations [T, H] from a safetensors file (its one tensor, or `hidden_states`) or a .npy file. */
export function readActivations(file: string, hidden: number): Float32Array {
  const { fd, size } = openForRead(file);
  let magic: Buffer;
  try {
    magic = readRange(fd, file, 0, Math.min(6, size), 'the file header');
  } finally {
    fs.closeSync(fd);
  }
  const bad = (m: string) => new MoecapError('ERR_CORRUPT_FILE', `activations ${file}: ${m}`);
  let dtype: string, shape: number[], offset: number, tensor: string;
  if (magic.length === 6 && magic.toString('latin1') === '\x93NUMPY') ({ dtype, shape, offset } = npyHeader(file, size, bad));
  else {
    const st = readSafetensorsFile(file);
    const names = st.tensors.map((t) => t.name);
    const t = st.tensors.length === 1 ? st.tensors[0] : st.tensors.find((x) => x.name === 'hidden_states');
    if (!t)
      throw new MoecapError(
        'ERR_INVALID_OPTION',
        `activations ${file}: ${names.length} tensors (${names.slice(0, 5).join(', ')}); name one hidden_states or keep one`,
      );
    const name = t.name;
    ({ dtype, shape } = t);
    offset = t.offset;
    tensor = name;
  }
  tensor ??= 'activations';
  if (!['F32', 'F16', 'BF16'].includes(dtype)) throw new MoecapError('ERR_INVALID_OPTION', `activations ${file}: dtype ${dtype}; f32, f16 or bf16 are read`);
  while (shape.length > 2 && shape[0] === 1) shape = shape.slice(1);
  if (shape.length !== 2 || shape[1] !== hidden || shape[0] < 1)
    throw new MoecapError('ERR_INVALID_OPTION', `activations ${file}: shape [${shape.join(', ')}], the layer needs [T, ${hidden}] (hidden size ${hidden})`);
  const bytes = shape[0] * hidden * (dtype === 'F32' ? 4 : 2);
  if (offset + bytes > size) throw bad(`${size} bytes, the [${shape.join(', ')}] ${dtype} data needs ${offset + bytes} (truncated)`);
  return readElements(file, offset, dtype, shape[0] * hidden, tensor);
}

/** .npy v1–v3 header: little-endian f4/f2, C order. */
function npyHeader(file: string, size: number, bad: (m: string) => Error): { dtype: string; shape: number[]; offset: number } {
  const { fd } = openForRead(file);
  try {
    const pre = readRange(fd, file, 0, Math.min(12, size), 'the .npy header');
    const major = pre[6];
    const wide = major >= 2; // v2 and v3: a 4-byte header length
    if (pre.length < (wide ? 12 : 10)) throw bad('truncated .npy header');
    const len = wide ? pre.readUInt32LE(8) : pre.readUInt16LE(8);
    const start = wide ? 12 : 10;
    if (start + len > size) throw bad(`.npy header of ${len} bytes runs past the end of the file (truncated)`);
    const h = readRange(fd, file, start, len, 'the .npy header').toString('latin1');
    const descr = /'descr':\s*'([^']*)'/.exec(h)?.[1];
    const fortran = /'fortran_order':\s*(True|False)/.exec(h)?.[1];
    const shapeText = /'shape':\s*\(([^)]*)\)/.exec(h)?.[1];
    if (descr === undefined || fortran === undefined || shapeText === undefined) throw bad('.npy header without descr, fortran_order and shape');
    if (fortran === 'True') throw new MoecapError('ERR_INVALID_OPTION', `activations ${file}: Fortran-order array; save it C-ordered`);
    const dtype = descr === '<f4' ? 'F32' : descr === '<f2' ? 'F16' : descr === '<V2' || descr === 'bfloat16' ? 'BF16' : descr;
    const shape = shapeText
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '')
      .map(Number);
    if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw bad(`.npy shape (${shapeText}) is not a list of sizes`);
    return { dtype, shape, offset: start + len };
  } finally {
    fs.closeSync(fd);
  }
}
