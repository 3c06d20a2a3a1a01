// The native tensor reader: BF16/F16/F32 → fp32 bit-exact over every finite pattern, Q8_0
// dequantised exactly as d·q (one fp32 rounding), ranges read at offsets, truncation and
// non-finite values refused by file and tensor name.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadAddon } from '../../lib/native/loader';
import { callNative } from '../../lib/native/call';
import { f16Value, rng } from './writers';

interface ReaderAddon {
  readTensorElements(file: string, offset: number, dtype: string, elements: number, out: Float32Array, outOffset: number, tensor: string): void;
}
const addon = loadAddon() as unknown as ReaderAddon;
const read = (f: string, offset: number, dtype: string, n: number, out: Float32Array, at = 0, name = 'w') =>
  callNative(() => addon.readTensorElements(f, offset, dtype, n, out, at, name));

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-reader-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function finite16(isBf16: boolean): number[] {
  const out: number[] = [];
  for (let b = 0; b < 65536; b++) {
    const expAllOnes = isBf16 ? (b & 0x7f80) === 0x7f80 : (b & 0x7c00) === 0x7c00;
    if (!expAllOnes) out.push(b);
  }
  return out;
}

test('BF16 → f32 is the 16 bits shifted left, for every finite pattern, at an odd offset', () => {
  const patterns = finite16(true);
  const buf = Buffer.alloc(3 + patterns.length * 2);
  patterns.forEach((b, i) => buf.writeUInt16LE(b, 3 + 2 * i));
  const f = path.join(tmp, 'bf16.bin');
  fs.writeFileSync(f, buf);
  const out = new Float32Array(patterns.length + 5).fill(NaN);
  read(f, 3, 'BF16', patterns.length, out);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < patterns.length; i++)
    if (bits[i] !== (patterns[i] << 16) >>> 0) throw new Error(`bf16 ${patterns[i].toString(16)} → ${bits[i].toString(16)}`);
  expect(Number.isNaN(out[patterns.length])).toBe(true); // nothing written past the range
});

test('F16 → f32 exact for every finite pattern (subnormals and signed zeros included)', () => {
  const patterns = finite16(false);
  const buf = Buffer.alloc(patterns.length * 2);
  patterns.forEach((b, i) => buf.writeUInt16LE(b, 2 * i));
  const f = path.join(tmp, 'f16.bin');
  fs.writeFileSync(f, buf);
  const out = new Float32Array(patterns.length);
  read(f, 0, 'F16', patterns.length, out);
  for (let i = 0; i < patterns.length; i++)
    if (!Object.is(out[i], f16Value(patterns[i]))) throw new Error(`f16 ${patterns[i].toString(16)}: ${out[i]} vs ${f16Value(patterns[i])}`);
});

test('Q8_0 dequantises exactly: value = fp32(q · d) for random scales (incl. subnormal halves) and all q', () => {
  const r = rng(77);
  const blocks = 600;
  const buf = Buffer.alloc(blocks * 34);
  const want = new Float32Array(blocks * 32);
  for (let b = 0; b < blocks; b++) {
    let dBits: number;
    do dBits = Math.floor(r() * 65536);
    while ((dBits & 0x7c00) === 0x7c00);
    if (b < 4) dBits = [0x0001, 0x03ff, 0x8001, 0x0000][b];
    buf.writeUInt16LE(dBits, b * 34);
    const d = f16Value(dBits);
    for (let j = 0; j < 32; j++) {
      const q = b === 5 ? j * 8 - 128 : Math.floor(r() * 256) - 128;
      buf.writeInt8(q, b * 34 + 2 + j);
      want[b * 32 + j] = Math.fround(q * d);
    }
  }
  const f = path.join(tmp, 'q8.bin');
  fs.writeFileSync(f, buf);
  const out = new Float32Array(blocks * 32);
  read(f, 0, 'Q8_0', blocks * 32, out);
  for (let i = 0; i < out.length; i++) if (!Object.is(out[i], want[i])) throw new Error(`q8_0 element ${i}: ${out[i]} vs ${want[i]}`);
  // A range that starts at a later block.
  const part = new Float32Array(64);
  read(f, 10 * 34, 'Q8_0', 64, part);
  expect(Array.from(part)).toEqual(Array.from(want.subarray(320, 384)));
});

test('F32 little-endian, a range past the end is a truncated file, NaN and partial blocks refused', () => {
  const buf = Buffer.alloc(4 * 8);
  for (let i = 0; i < 8; i++) buf.writeFloatLE(i * 0.1 - 0.3, 4 * i);
  const f = path.join(tmp, 'f32.bin');
  fs.writeFileSync(f, buf);
  const out = new Float32Array(8);
  read(f, 0, 'F32', 8, out);
  for (let i = 0; i < 8; i++) expect(out[i]).toBe(buf.readFloatLE(4 * i));
  expect(() => read(f, 8, 'F32', 8, out, 0, 'layer.w')).toThrow(
    expect.objectContaining({ code: 'ERR_CORRUPT_FILE', message: expect.stringMatching(/f32\.bin ends inside tensor layer\.w \(truncated\)/) }),
  );
  buf.writeFloatLE(Infinity, 12);
  fs.writeFileSync(f, buf);
  expect(() => read(f, 0, 'F32', 8, out, 0, 'layer.w')).toThrow(
    expect.objectContaining({ code: 'ERR_CORRUPT_FILE', message: expect.stringMatching(/tensor layer\.w in .*f32\.bin holds Inf at element 3/) }),
  );
  expect(() => read(f, 0, 'Q8_0', 20, out)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
  expect(() => read(f, 0, 'F32', 8, out, 1)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringMatching(/too short/) }));
  expect(() => read(f, 0, 'Q4_K', 8, out)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
  expect(() => read(path.join(tmp, 'absent.bin'), 0, 'F32', 1, out)).toThrow(
    expect.objectContaining({ code: 'ERR_IO', message: expect.stringMatching(/absent\.bin/) }),
  );
});
