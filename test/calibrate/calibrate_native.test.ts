// The addon's calibrate(): the machine's ceilings (native/core/calibrate), as the bench and the CAP runner use
// them. Only the shape and sanity of the figures are asserted — they are measurements.
import { loadAddon, systemInfo } from '../../lib';

const addon = loadAddon();
const ISAS = systemInfo().supportedIsas;

describe('calibrate', () => {
  test.each(ISAS)('measures read bandwidth and arithmetic peaks with the %s loops', async (isa) => {
    const c = await addon.calibrate({ readBytes: 64 << 20, repeats: 3, threads: 2, isa, computeMs: 5 });
    expect(c.isa).toBe(isa);
    expect(c.threads).toBe(2);
    expect(c.repeats).toBe(3);
    for (const m of [c.readBandwidth, c.fp32Flops!]) {
      expect(m.min).toBeGreaterThan(0);
      expect(m.min).toBeLessThanOrEqual(m.median);
      expect(m.median).toBeLessThanOrEqual(m.max);
      // every window, in the order measured: the callers keep the best or a percentile of them
      expect(m.samples).toHaveLength(3);
      expect(Math.min(...m.samples)).toBe(m.min);
      expect(Math.max(...m.samples)).toBe(m.max);
    }
    expect(c.readBandwidth.unit).toBe('B/s');
    expect(c.fp32Flops!.unit).toBe('FLOP/s');
    if (isa === 'avx512') {
      expect(c.bf16Flops!.median).toBeGreaterThan(0);
      expect(c.int8Ops!.unit).toBe('OP/s');
    } else if (isa === 'neon') {
      // bfdot / sdot loops only where the CPU has FEAT_BF16 / FEAT_DotProd (test/arm64 checks which).
      for (const m of [c.bf16Flops, c.int8Ops]) if (m) expect(m.median).toBeGreaterThan(0);
    } else if (isa === 'avx2') {
      // vpmaddubsw + vpaddw chains (the int8/int4/mxfp4 kernels' multiply-add); no bf16 unit.
      expect(c.int8Ops!.unit).toBe('OP/s');
      expect(c.int8Ops!.median).toBeGreaterThan(0);
      expect(c.bf16Flops).toBeNull();
    } else {
      expect(c.bf16Flops).toBeNull();
      expect(c.int8Ops).toBeNull();
    }
  });

  test('compute: false measures the read bandwidth only', async () => {
    const c = await addon.calibrate({ readBytes: 32 << 20, repeats: 2, compute: false });
    expect(c.readBandwidth.median).toBeGreaterThan(0);
    expect(c.fp32Flops).toBeNull();
    expect(c.int8Ops).toBeNull();
  });

  test('rejects bad options with a clear error', async () => {
    // The addon's error classes come from Node's realm, not jest's sandbox: compare names.
    const thrown = (f: () => unknown): Error => {
      try {
        f();
      } catch (e) {
        return e as Error;
      }
      throw new Error('did not throw');
    };
    expect(thrown(() => addon.calibrate({ repeats: 0 }))).toMatchObject({ name: 'RangeError', message: expect.stringMatching(/repeats/) });
    expect(thrown(() => addon.calibrate({ readBytes: 1.5 }))).toMatchObject({ name: 'RangeError', message: expect.stringMatching(/readBytes/) });
    expect(thrown(() => addon.calibrate({ computeMs: 0 }))).toMatchObject({ name: 'RangeError', message: expect.stringMatching(/computeMs/) });
    expect(thrown(() => addon.calibrate({ isa: 'sse9' } as never))).toMatchObject({ name: 'TypeError', message: expect.stringMatching(/isa/) });
    expect(thrown(() => addon.calibrate(42 as never))).toMatchObject({ name: 'TypeError', message: expect.stringMatching(/options/) });
  });
});

// Cold sequential read of a folder (scratch file) or of an existing file (an offload weights
// file: read only, nothing written), buffered or O_DIRECT where the file system takes it.
describe('measureFileRead', () => {
  const fs = require('fs') as typeof import('fs');
  const os = require('os') as typeof import('os');
  const path = require('path') as typeof import('path');
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-fileread-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test.each([false, true])('an existing file is read, not written (direct %s)', async (direct) => {
    const file = path.join(dir, `weights-${direct}.bin`);
    const data = Buffer.alloc((20 << 20) + 12345);
    for (let i = 0; i < data.length; i += 4096) data.writeUInt32LE((i * 2654435761) >>> 0, i);
    fs.writeFileSync(file, data);
    let directOk = true;
    try {
      fs.closeSync(fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_DIRECT));
    } catch {
      directOk = false;
    }
    const r = await addon.measureFileRead(file, { bytes: 64 << 20, repeats: 2, direct });
    expect(r.path).toBe(file);
    expect(r.bytes).toBe(16 << 20); // whole 8 MiB reads, at most the file's size
    expect(r.direct).toBe(direct && directOk);
    expect(r.bandwidth.min).toBeGreaterThan(0);
    expect(r.bandwidth.unit).toBe('B/s');
    expect(fs.readFileSync(file).equals(data)).toBe(true);
  });

  test('a file smaller than one read, or a missing path, is refused naming it', async () => {
    const small = path.join(dir, 'small.bin');
    fs.writeFileSync(small, Buffer.alloc(4096, 1));
    await expect(addon.measureFileRead(small)).rejects.toThrow(/small\.bin.*smaller than one 8 MiB read/);
    await expect(addon.measureFileRead(path.join(dir, 'nope', 'x'))).rejects.toThrow(/nope/);
    expect(() => addon.measureFileRead(dir, { direct: 1 as unknown as boolean })).toThrow(/direct must be a boolean/);
  });
});
