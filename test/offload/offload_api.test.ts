// The offload API through lib/: createMoeLayer({ offload }) and createMoeModel.
import { createMoeLayer, createMoeModel } from '../../lib';
import { sameBits, tokens } from './helpers';

const SHAPE = { hidden: 40, intermediate: 24, experts: 8, topK: 2, threads: 2, weights: { seed: 5 } };

test('createMoeLayer with offload matches the resident layer; offload info and counters', async () => {
  const ref = await createMoeLayer({ ...SHAPE, dtype: 'bf16' });
  const l = await createMoeLayer({ ...SHAPE, dtype: 'bf16', offload: { capacity: { fraction: 0.25 }, policy: 'lfru' } });
  for (let i = 0; i < 3; i++) {
    const x = tokens(3 + i, SHAPE.hidden, 40 + i);
    const [a, b] = [await ref.forward(x), await l.forward(x)];
    expect(sameBits(a.output, b.output)).toBe(true);
    expect(b.stats.offload!.hits + b.stats.offload!.misses).toBe(b.stats.distinctExperts);
  }
  const info = l.offloadInfo();
  expect(info).toMatchObject({ capacity: 2, policy: 'lfru', prefetch: true, coldCache: false });
  expect(info.stats.passes).toBe(3);
  expect(l.info().offload!.capacity).toBe(2);
  expect(ref.info().offload).toBeNull();
  l.resetOffloadStats();
  expect(l.offloadStats().passes).toBe(0);
});

test('createMoeModel: residual stack, offload with prediction, per-layer stats', async () => {
  const ref = await createMoeModel({ ...SHAPE, layers: 3 });
  const m = await createMoeModel({ ...SHAPE, layers: 3, offload: { capacity: 3, policy: 'static' } });
  for (let i = 0; i < 4; i++) {
    if (i === 2) expect(m.pinStatic()).toHaveLength(3);
    const x = tokens(2, SHAPE.hidden, 70 + i);
    const [a, b] = [await ref.forward(x), await m.forward(x)];
    expect(sameBits(a.output, b.output)).toBe(true);
    expect(b.stats.layers).toHaveLength(3);
    expect(b.stats.offload!.overlapEfficiency).toBeGreaterThan(0);
    expect(b.stats.prediction!.total).toBeGreaterThan(0);
  }
  const s = m.offloadStats();
  expect(s.passes).toBe(12);
  expect(s.prediction.accuracy).not.toBeNull();
  expect(m.info()).toMatchObject({ layers: 3, experts: 8 });
  m.close();
  expect(m.closed).toBe(true);
  await expect(m.forward(tokens(1, SHAPE.hidden, 1))).rejects.toThrow(/closed/);
});

test('moecap run --offload 0.25 reports hit rate and slow-tier bandwidth, same fidelity', () => {
  const { execFileSync, spawnSync } = require('child_process');
  const BIN = require('path').join(__dirname, '..', '..', 'bin', 'moecap.js');
  const small = ['--hidden', '64', '--intermediate', '32', '--experts', '8', '--top-k', '2', '--tokens', '1,5', '--repeats', '3'];
  const out: string = execFileSync(process.execPath, [BIN, 'layer', ...small, '--offload', '0.25', '--offload-policy', 'lfu', '--cold'], { encoding: 'utf8' });
  expect(out).toMatch(/offload: 2 of 8 experts resident, policy lfu, cold page cache/);
  const rows = out.split('\n').filter((l) => /^\s+[15]\s/.test(l));
  expect(rows).toHaveLength(2);
  for (const r of rows) {
    const cells = r.trim().split(/\s+/);
    expect(Number(cells[6])).toBeLessThan(1e-5); // rel L2 vs fp64, as without offload
    expect(Number(cells[8])).toBeGreaterThanOrEqual(0); // hit rate
  }
  const bad = spawnSync(process.execPath, [BIN, 'layer', ...small, '--offload', '2'], { encoding: 'utf8' });
  expect(bad.status).not.toBe(0);
  expect(bad.stderr).toMatch(/offload\.capacity\.fraction must be in \(0, 1\]/);
});

// Cold mode reads experts with O_DIRECT where the file system takes it (checked here on its own
// with fs.openSync), else buffered with the page cache dropped; either way bit-identical output.
// Odd shapes make every expert's length a non-multiple of 4 KiB, so the last expert's rounded
// direct read runs past the end of the file.
test.each(['f32', 'bf16', 'int8', 'int4', 'mxfp4', 'fp8'] as const)('coldCache (O_DIRECT where supported) matches the resident layer, %s', async (dtype) => {
  const fs = await import('fs');
  const os = await import('os');
  const path = await import('path');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-direct-'));
  try {
    const file = path.join(dir, `experts-${dtype}.bin`);
    const ref = await createMoeLayer({ ...SHAPE, dtype });
    const layers = [];
    for (const [capacity, prefetch] of [
      [1, true],
      [3, false],
      [8, true],
    ] as const)
      layers.push(await createMoeLayer({ ...SHAPE, dtype, offload: { capacity, prefetch, path: file, coldCache: true } }));
    let directOk = true;
    try {
      fs.closeSync(fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_DIRECT));
    } catch {
      directOk = false;
    }
    for (const l of layers) expect(l.offloadInfo()).toMatchObject({ coldCache: true, directIo: directOk });
    for (let i = 0; i < 4; i++) {
      const x = tokens(5 + i, SHAPE.hidden, 90 + i);
      const a = await ref.forward(x);
      for (const l of layers) {
        const b = await l.forward(x);
        expect(sameBits(a.output, b.output)).toBe(true);
      }
    }
    // Still direct after the reads (an EINVAL from the device would have switched it off).
    for (const l of layers) expect(l.offloadInfo().directIo).toBe(directOk);
    // Every expert was read at least once at capacity 1 (the last one included).
    expect(layers[0].offloadStats().loads).toBeGreaterThanOrEqual(8);
    const warm = await createMoeLayer({ ...SHAPE, dtype, offload: { capacity: 2, path: file } });
    expect(warm.offloadInfo().directIo).toBe(false);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
