// The binary trace (lib/interop/trace_binary.ts): JSONL → .mctrace → the same plan-cache output
// and the same ids; every header field, checksum and id checked, each with an error naming the
// file and the field; no file left behind when a write fails.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { TraceSpill } from '../../lib/interop/trace_spill';
import { parseBinaryTraceHeader, writeBinaryTrace, type TraceIdsAddon } from '../../lib/interop/trace_binary';
import { callNative } from '../../lib/native/call';
import { traceCommand } from '../../lib/cli/commands/trace';
import { planCacheCommand } from '../../lib/cli/commands/plan_cache';
import { sampleRouting, zipfWeights } from '../../lib/cap/routing';
import { loadAddon } from '../../lib/native/loader';
import { writeJsonlTrace } from '../trace_files';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-mctrace-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const io = () => {
  const out: string[] = [];
  return { out, io: { out: (s: string) => out.push(s), err: (s: string) => out.push(s) } };
};
const xxh = (b: Uint8Array) => BigInt('0x' + (loadAddon() as unknown as { xxhash64(b: Uint8Array): string }).xxhash64(b));

async function planCache(file: string): Promise<string> {
  const o = io();
  const rc = await planCacheCommand.run(
    {
      options: {
        preset: 'tiny',
        capacity: [1, 2, 4, 8],
        policy: ['lru', 'lfu', 'lfru', 'static', 'belady'],
        batch: 1,
        dtype: 'f32',
        'static-profile': 50,
        'slow-bw': 10,
      },
      positional: [file],
      given: new Set(),
    },
    o.io,
  );
  expect(rc).toBe(0);
  return o.out.join('').split(file).join('TRACE');
}

describe('binary trace', () => {
  const E = 8,
    k = 2;
  const layers = [0, 1, 2].map((l) => sampleRouting(1500, k, zipfWeights(E, 1.1), 70 + l));
  const jsonl = path.join(dir, 't.jsonl');
  const bin = path.join(dir, 't.mctrace');
  beforeAll(() => writeJsonlTrace(jsonl, layers, k));

  test('trace import --out X.mctrace; plan-cache prints the same as from the JSONL; the same ids', async () => {
    const o = io();
    expect(await traceCommand.run({ options: { format: 'moecap', out: bin, preset: 'tiny' }, positional: ['import', jsonl], given: new Set() }, o.io)).toBe(0);
    expect(o.out.join('')).toMatch(/binary trace, 1500 tokens × 3 layers, k = 2, E = 8, \d+ bytes/);
    // 64 B header + 16 B per layer + one byte per id (E <= 256).
    expect(fs.statSync(bin).size).toBe(64 + 3 * 16 + 3 * 1500 * k);
    const a = await planCache(jsonl),
      b = await planCache(bin);
    expect(a).toMatch(/belady/);
    expect(b).toBe(a);
    const t = await TraceSpill.read(bin, { experts: E, topK: k });
    try {
      expect(t.tokens).toEqual([1500, 1500, 1500]);
      for (let l = 0; l < 3; l++) expect(Array.from(t.layer(l))).toEqual(Array.from(layers[l]));
    } finally {
      t.close();
    }
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  test('16-bit ids for more than 256 experts round-trip', async () => {
    const ids = sampleRouting(300, 4, zipfWeights(300, 0.7), 9);
    const f = path.join(dir, 'wide.mctrace');
    writeBinaryTrace(f, { layers: 1, topK: 4, tokens: [300], layer: () => ids }, 300);
    expect(fs.statSync(f).size).toBe(64 + 16 + 300 * 4 * 2);
    const t = await TraceSpill.read(f);
    expect(t.maxExpert).toBe(300);
    expect(Array.from(t.layer(0))).toEqual(Array.from(ids));
  });

  // A valid file with one field changed (checksums redone unless `keepSums`) → the error.
  const good = () => fs.readFileSync(bin);
  const resum = (b: Buffer) => {
    const L = b.readUInt32LE(12);
    let at = 64 + 16 * L;
    for (let l = 0; l < L && at <= b.length; l++) {
      const n = Number(b.readBigUInt64LE(64 + 16 * l)) * b.readUInt32LE(20) * b.readUInt32LE(24);
      if (at + n <= b.length) b.writeBigUInt64LE(xxh(b.subarray(at, at + n)), 64 + 16 * l + 8);
      at += n;
    }
    b.writeBigUInt64LE(xxh(Buffer.concat([b.subarray(0, 40), b.subarray(64, 64 + 16 * L)])), 40);
    return b;
  };
  const readErr = async (b: Buffer) => {
    const f = path.join(dir, 'bad.mctrace');
    fs.writeFileSync(f, b);
    try {
      const t = await TraceSpill.read(f, { experts: E, topK: k });
      for (let l = 0; l < t.layers; l++) t.layer(l);
    } catch (e) {
      return e as { code: string; message: string };
    }
    return { code: 'none', message: 'no error' };
  };

  test.each([
    ['version', (b: Buffer) => b.writeUInt32LE(2, 8), true, /field 'version': 2 is not supported/],
    ['layers 0', (b: Buffer) => b.writeUInt32LE(0, 12), true, /field 'layers': must be in \[1, 4096\], got 0/],
    ['experts 0', (b: Buffer) => b.writeUInt32LE(0, 16), true, /field 'experts'/],
    ['topK > experts', (b: Buffer) => b.writeUInt32LE(9, 20), true, /field 'topK': must be in \[1, experts = 8\], got 9/],
    ['idBytes', (b: Buffer) => b.writeUInt32LE(2, 24), true, /field 'idBytes': must be 1 for 8 experts, got 2/],
    ['reserved', (b: Buffer) => (b[50] = 1), true, /field 'reserved'/],
    ['file size', (b: Buffer) => b.writeBigUInt64LE(BigInt(b.length + 1), 32), true, /field 'fileSize': header says \d+ bytes, the file has \d+/],
    [
      'header checksum',
      (b: Buffer) => b.writeUInt32LE(1501, 64),
      false,
      /field 'headerChecksum': xxhash64 of the header and layer table is [0-9a-f]{16}, the file says/,
    ],
    [
      'layer tokens',
      (b: Buffer) => b.writeBigUInt64LE(1501n, 64),
      true,
      /field 'layer 2 tokens': 1500 tokens × 2 ids × 1 B do not fit in the file's \d+ bytes/,
    ],
    ['layer checksum', (b: Buffer) => (b[64 + 48 + 5] ^= 1), false, /field 'layer 0 checksum': xxhash64 of its ids is [0-9a-f]{16}, the table says/],
    ['id out of range', (b: Buffer) => (b[64 + 48 + 2 * 1500 + 7] = 8), true, /field 'layer 1 experts': id 8 at token 3 out of range \[0, 8\)/],
    [
      'id repeated in a token',
      (b: Buffer) => (b[64 + 48 + 2 * 1500 + 7] = b[64 + 48 + 2 * 1500 + 6]),
      true,
      /field 'layer 1 experts': id \d+ at token 3 repeated \(a token's 2 ids must be distinct\)/,
    ],
  ])('%s → ERR_CORRUPT_FILE naming the file and field', async (_name, edit, redoSums, msg) => {
    const b = good();
    edit(b);
    const e = await readErr(redoSums ? resum(b) : b);
    expect(e.code).toBe('ERR_CORRUPT_FILE');
    expect(e.message).toContain('bad.mctrace');
    expect(e.message).toMatch(msg);
  });

  test('magic, truncation and appended bytes; the model shape is checked', async () => {
    const b = good();
    // Without the magic it is not a binary trace: read as JSONL, whose first line is not valid.
    const nomagic = Buffer.from(b);
    nomagic[0] = 0x4e;
    expect((await readErr(nomagic)).code).toBe('ERR_CORRUPT_FILE');
    expect(parseBinaryTraceHeaderError(nomagic)).toMatch(/field 'magic'/);
    for (const n of [8, 63, 64 + 10, b.length - 1])
      expect(await readErr(b.subarray(0, n))).toMatchObject({ code: 'ERR_CORRUPT_FILE', message: expect.stringMatching(/field '(header|fileSize)'/) });
    expect((await readErr(Buffer.concat([b, Buffer.from([0])]))).message).toMatch(/field 'fileSize'/);
    const f = path.join(dir, 'shape.mctrace');
    fs.writeFileSync(f, b);
    await expect(TraceSpill.read(f, { experts: 4, topK: k })).rejects.toThrow(/field 'experts': is 8, more than the model's 4/);
    await expect(TraceSpill.read(f, { experts: E, topK: 3 })).rejects.toThrow(/field 'topK': is 2, the model routes k = 3/);
  });

  test('a write that fails leaves no file', () => {
    const f = path.join(dir, 'fail.mctrace');
    const bad = Int32Array.from([0, 9]);
    expect(() => writeBinaryTrace(f, { layers: 1, topK: 2, tokens: [1], layer: () => bad }, 8)).toThrow(/id 9 out of range \[0, 8\)/);
    expect(fs.existsSync(f)).toBe(false);
    expect(fs.readdirSync(dir).filter((x) => x.includes('fail'))).toEqual([]);
  });

  // The core's block reader behind readBinaryTraceLayer and the spill files (trace_ids.h).
  test('readTraceIds: ids of each width widened; bad options, a missing or short file are coded errors', () => {
    const addon = loadAddon() as unknown as TraceIdsAddon;
    const f = path.join(dir, 'block.bin');
    // 3 bytes of padding, then 2 tokens × 2 ids of 2 bytes each (little-endian): 300, 7 | 65535, 0.
    fs.writeFileSync(f, Buffer.from([9, 9, 9, 0x2c, 0x01, 7, 0, 0xff, 0xff, 0, 0]));
    expect(Array.from(addon.readTraceIds({ file: f, offset: 3, tokens: 2, topK: 2, idBytes: 2, layer: 0 }))).toEqual([300, 7, 65535, 0]);
    expect(Array.from(addon.readTraceIds({ file: f, offset: 3, tokens: 2, topK: 1, idBytes: 4, layer: 0 }))).toEqual([0x0007012c, 0x0000ffff]);
    expect(Array.from(addon.readTraceIds({ file: f, offset: 0, tokens: 0, topK: 8, idBytes: 1, layer: 0 }))).toEqual([]);
    const sum = (b: Buffer) => xxh(b).toString(16).padStart(16, '0');
    const block = fs.readFileSync(f).subarray(3, 7); // 300 and 7 as 2-byte ids
    expect(Array.from(addon.readTraceIds({ file: f, offset: 3, tokens: 1, topK: 2, idBytes: 2, layer: 4, experts: 301, checksum: sum(block) }))).toEqual([
      300, 7,
    ]);
    const err = (o: object) => {
      try {
        callNative(() => addon.readTraceIds(o as Parameters<TraceIdsAddon['readTraceIds']>[0]));
      } catch (e) {
        return { code: (e as { code: string }).code, message: (e as Error).message };
      }
      return { code: 'none', message: '' };
    };
    const base = { file: f, offset: 3, tokens: 1, topK: 2, idBytes: 2, layer: 4 };
    expect(err({ ...base, experts: 300, checksum: sum(block) })).toEqual({
      code: 'ERR_CORRUPT_FILE',
      message: `binary trace '${f}' field 'layer 4 experts': id 300 at token 0 out of range [0, 300)`,
    });
    expect(err({ ...base, experts: 301, checksum: '0'.repeat(16) }).message).toMatch(
      /field 'layer 4 checksum': xxhash64 of its ids is [0-9a-f]{16}, the table says 0{16}/,
    );
    expect(err({ ...base, tokens: 5 })).toEqual({ code: 'ERR_CORRUPT_FILE', message: `trace spill '${f}' layer 4: file ended early` });
    expect(err({ ...base, file: path.join(dir, 'no-such-file') })).toMatchObject({ code: 'ERR_IO', message: expect.stringMatching(/cannot open trace/) });
    expect(err({ ...base, idBytes: 3 }).code).toBe('ERR_INVALID_ARGUMENT');
    expect(err({ ...base, offset: -1 }).code).toBe('ERR_INVALID_ARGUMENT');
    expect(err({ ...base, tokens: 2 ** 50 }).message).toMatch(/too large/);
    expect(err({ ...base, experts: 301, checksum: 'xyz' }).message).toMatch(/checksum must be 16 lowercase hex digits/);
    expect(err({ ...base, file: 7 }).code).toBe('ERR_INVALID_ARGUMENT');
  });
});

function parseBinaryTraceHeaderError(b: Buffer): string {
  try {
    parseBinaryTraceHeader('x.mctrace', b, b.length);
  } catch (e) {
    return (e as Error).message;
  }
  return 'no error';
}
