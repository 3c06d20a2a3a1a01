// The quantised source formats decoded by the native reader, against independent fp64 decoders
// written from the formats' definitions: ggml Q4_0 / Q4_1 / Q5_0 / Q5_1 / Q4_K / Q5_K / Q6_K blocks with random bits (scales
// and levels, not values a quantiser would pick), read at an offset and by later block ranges;
// FP8 E4M3 (e4m3fn) for all 256 patterns bitwise.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadAddon } from '../../lib/native/loader';
import { callNative } from '../../lib/native/call';
import { decodeGgmlBlock, GGML_QUANT_BLOCK, rng } from './writers';

interface ReaderAddon {
  readTensorElements(file: string, offset: number, dtype: string, elements: number, out: Float32Array, outOffset: number, tensor: string): void;
}
const addon = loadAddon() as unknown as ReaderAddon;
const read = (f: string, offset: number, dtype: string, n: number, out: Float32Array, name = 'w') =>
  callNative(() => addon.readTensorElements(f, offset, dtype, n, out, 0, name));

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-quant-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A random finite fp16 with exponent field in [lo, hi] (both signs). */
function randomHalf(r: () => number, lo: number, hi: number): number {
  const e = lo + Math.floor(r() * (hi - lo + 1));
  return (r() < 0.5 ? 0x8000 : 0) | (e << 10) | Math.floor(r() * 1024);
}

function sameBits(got: Float32Array, want: Float32Array, what: string): void {
  const g = new Uint32Array(got.buffer, got.byteOffset, got.length),
    w = new Uint32Array(want.buffer, want.byteOffset, want.length);
  for (let i = 0; i < got.length; i++)
    if (g[i] !== w[i]) throw new Error(`${what} element ${i}: ${got[i]} (0x${g[i].toString(16)}) vs ${want[i]} (0x${w[i].toString(16)})`);
}

// Where each format keeps its fp16 scales (d, and m / dmin where it has one).
const HALF_AT = { Q4_0: [0], Q4_1: [0, 2], Q5_0: [0], Q5_1: [0, 2], Q4_K: [0, 2], Q5_K: [0, 2], Q6_K: [208] } as const;

describe.each(['Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q4_K', 'Q5_K', 'Q6_K'] as const)('%s blocks', (dtype) => {
  test('random blocks decode bitwise as the fp64 definition, whole and by a later range', () => {
    const [be, bb] = GGML_QUANT_BLOCK[dtype];
    const r = rng(dtype.length * 1000 + bb);
    const blocks = be === 32 ? 700 : 90;
    const lead = 5; // an odd file offset
    const buf = Buffer.alloc(lead + blocks * bb);
    for (let i = lead; i < buf.length; i++) buf[i] = Math.floor(r() * 256);
    for (let b = 0; b < blocks; b++) {
      const at = lead + b * bb;
      // Scales: random finite halves within a few binades (subnormal ones in the first blocks).
      const half = () => (b < 2 ? Math.floor(r() * 0x400) | (b ? 0x8000 : 0) : randomHalf(r, 10, 18));
      for (const o of HALF_AT[dtype]) buf.writeUInt16LE(half(), at + o);
    }
    const f = path.join(tmp, `${dtype}.bin`);
    fs.writeFileSync(f, buf);
    const want = new Float32Array(blocks * be);
    for (let b = 0; b < blocks; b++) decodeGgmlBlock(dtype, buf, lead + b * bb, want, b * be);
    const got = new Float32Array(blocks * be).fill(NaN);
    read(f, lead, dtype, blocks * be, got);
    sameBits(got, want, dtype);
    const part = new Float32Array(3 * be);
    read(f, lead + 7 * bb, dtype, 3 * be, part);
    sameBits(part, want.subarray(7 * be, 10 * be), `${dtype} range`);
    // A partial block is refused; a range past the end is a truncated file naming the tensor.
    expect(() => read(f, lead, dtype, be + 16, new Float32Array(2 * be))).toThrow(
      expect.objectContaining({
        code: 'ERR_INVALID_ARGUMENT',
        message: expect.stringMatching(new RegExp(`${dtype} reads must cover whole ${be}-element blocks`)),
      }),
    );
    expect(() => read(f, lead + (blocks - 1) * bb, dtype, 2 * be, new Float32Array(2 * be), 'blk.0.ffn_up_exps.weight')).toThrow(
      expect.objectContaining({ code: 'ERR_CORRUPT_FILE', message: expect.stringMatching(/ends inside tensor blk\.0\.ffn_up_exps\.weight \(truncated\)/) }),
    );
  });
});

test('Q4_0 nibble order: byte j holds element j (low nibble) and element j+16 (high nibble)', () => {
  const buf = Buffer.alloc(18);
  buf.writeUInt16LE(0x3c00, 0); // d = 1
  for (let j = 0; j < 16; j++) buf[2 + j] = (j & 15) | ((15 - j) << 4);
  const f = path.join(tmp, 'q4order.bin');
  fs.writeFileSync(f, buf);
  const out = new Float32Array(32);
  read(f, 0, 'Q4_0', 32, out);
  expect(Array.from(out)).toEqual([...Array.from({ length: 16 }, (_, j) => j - 8), ...Array.from({ length: 16 }, (_, j) => 7 - j)]);
});

/** E4M3 "fn" from its bits in doubles: bias 7, subnormals m·2^-9, S.1111.111 NaN, no infinities. */
function e4m3Value(b: number): number {
  const s = b & 0x80 ? -1 : 1;
  const e = (b >> 3) & 15,
    m = b & 7;
  if (e === 15 && m === 7) return NaN;
  return e === 0 ? s * m * 2 ** -9 : s * (1 + m / 8) * 2 ** (e - 7);
}

test('F8_E4M3 decodes all 256 patterns exactly (±448 max, subnormals, signed zero); NaN refused by tensor name', () => {
  const finite = Array.from({ length: 256 }, (_, b) => b).filter((b) => (b & 0x7f) !== 0x7f);
  expect(finite.length).toBe(254);
  const f = path.join(tmp, 'e4m3.bin');
  fs.writeFileSync(f, Buffer.from(finite));
  const out = new Float32Array(finite.length);
  read(f, 0, 'F8_E4M3', finite.length, out);
  for (let i = 0; i < finite.length; i++) if (!Object.is(out[i], e4m3Value(finite[i]))) throw new Error(`e4m3 0x${finite[i].toString(16)}: ${out[i]}`);
  expect(Math.max(...Array.from(out))).toBe(448);
  expect(out[finite.indexOf(1)]).toBe(2 ** -9);
  expect(Object.is(out[finite.indexOf(0x80)], -0)).toBe(true);
  for (const nan of [0x7f, 0xff]) {
    fs.writeFileSync(f, Buffer.from([0x38, nan]));
    expect(() => read(f, 0, 'F8_E4M3', 2, new Float32Array(2), 'experts.0.w1.weight')).toThrow(
      expect.objectContaining({
        code: 'ERR_CORRUPT_FILE',
        message: expect.stringMatching(/tensor experts\.0\.w1\.weight in .*e4m3\.bin holds NaN at element 1/),
      }),
    );
  }
});
