// The offload weights file: reuse, hostile files (truncated, flipped byte, header pointing past
// the end, other shape / weights / garbage) and failed writes. Every failure is an error naming the
// file (and the expert where one is at fault), never a crash or a wrong output.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { native, sameBits, scriptedOptions, scriptedTokens, tempDir, tokens, SCRIPT } from './helpers';
import { xxhash64 } from './xxhash64';

const HEADER = 88,
  ENTRY = 24,
  E = SCRIPT.experts;
const entryOffset = (buf: Buffer, e: number) => Number(buf.readBigUInt64LE(HEADER + ENTRY * e));
function reseal(buf: Buffer) {
  const n = HEADER + ENTRY * E;
  buf.writeBigUInt64LE(xxhash64(buf.subarray(0, n)), n);
}

describe('offload: weights file', () => {
  let dir: string, good: string, bytes: Buffer;
  const opts = (p: string, extra: object = {}) => scriptedOptions(1, { capacity: 2, path: p, ...extra });
  const copy = (name: string, edit: (b: Buffer) => Buffer) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, edit(Buffer.from(bytes)));
    return p;
  };
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

  beforeAll(async () => {
    dir = tempDir();
    good = path.join(dir, 'experts.bin');
    const l = await native.createLayer(opts(good));
    expect(l.offloadInfo().path).toBe(good);
    l.close();
    bytes = fs.readFileSync(good);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('is written once and reused with identical outputs; no temp file left', async () => {
    expect(fs.readdirSync(dir)).toEqual(['experts.bin']);
    expect(bytes.subarray(0, 8).toString()).toBe('MOECAPEX');
    const mtime = fs.statSync(good).mtimeMs;
    const [a, b] = [await native.createLayer(opts(good)), await native.createLayer(scriptedOptions(1, undefined))];
    const x = scriptedTokens([[0], [3], [5], [1]]);
    expect(sameBits((await a.forward(x)).output, (await b.forward(x)).output)).toBe(true);
    expect(fs.statSync(good).mtimeMs).toBe(mtime);
  });

  test('truncated file → error naming the file and the first expert past the end', async () => {
    const p = copy('trunc.bin', (b) => b.subarray(0, entryOffset(b, 3) + 100));
    await expect(native.createLayer(opts(p))).rejects.toThrow(new RegExp(`${esc(p)}.*expert 3: bytes .* past the end of the file`));
    const q = copy('trunc-header.bin', (b) => b.subarray(0, 50));
    await expect(native.createLayer(opts(q))).rejects.toThrow(new RegExp(`${esc(q)}.*truncated header`));
    const z = copy('empty.bin', () => Buffer.alloc(0));
    await expect(native.createLayer(opts(z))).rejects.toThrow(/truncated header/);
  });

  test.each([true, false])('flipped byte in expert 4 → checksum error on the pass that needs it (prefetch %s)', async (prefetch) => {
    const p = copy(`flip-${prefetch}.bin`, (b) => {
      b[entryOffset(b, 4) + 123] ^= 0x10;
      return b;
    });
    const l = await native.createLayer(opts(p, { prefetch }));
    const ref = await native.createLayer(scriptedOptions(1, undefined));
    const ok = scriptedTokens([[0], [1]]);
    expect(sameBits((await l.forward(ok)).output, (await ref.forward(ok)).output)).toBe(true);
    const bad = scriptedTokens([[2], [4]]);
    await expect(l.forward(bad)).rejects.toThrow(new RegExp(`${esc(p)}.*expert 4: checksum mismatch`));
    await expect(l.forward(bad)).rejects.toThrow(/expert 4: checksum mismatch/); // never cached
    expect(Array.from(l.offloadInfo().resident)).not.toContain(4);
    expect(sameBits((await l.forward(ok)).output, (await ref.forward(ok)).output)).toBe(true);
  });

  test('header pointing past the end (checksum re-sealed) → error naming the expert', async () => {
    const p = copy('past-end.bin', (b) => {
      b.writeBigUInt64LE(BigInt(b.length - 100), HEADER + ENTRY * 2);
      reseal(b);
      return b;
    });
    await expect(native.createLayer(opts(p))).rejects.toThrow(new RegExp(`${esc(p)}.*expert 2: bytes .* past the end`));
    const q = copy('bad-size.bin', (b) => {
      b.writeBigUInt64LE(12n, HEADER + ENTRY * 5 + 8);
      reseal(b);
      return b;
    });
    await expect(native.createLayer(opts(q))).rejects.toThrow(new RegExp(`${esc(q)}.*expert 5: size 12`));
  });

  test('flipped header byte, garbage, other shape or weights → refused', async () => {
    const h = copy('header-flip.bin', (b) => {
      b[20] ^= 1;
      return b;
    });
    await expect(native.createLayer(opts(h))).rejects.toThrow(new RegExp(`${esc(h)}.*header checksum mismatch`));
    const g = copy('garbage.bin', (b) => b.fill(7));
    await expect(native.createLayer(opts(g))).rejects.toThrow(/bad magic/);
    const other = { hidden: 16, intermediate: 12, experts: 6, topK: 1, weights: { seed: 1 } };
    await expect(native.createLayer({ ...other, offload: { capacity: 2, path: good } })).rejects.toThrow(new RegExp(`${esc(good)}.*another shape`));
    await expect(native.createLayer({ ...other, experts: 5, offload: { capacity: 2, path: good } })).rejects.toThrow(/holds 6 experts, the layer has 5/);
    await expect(native.createLayer(scriptedOptions(1, { capacity: 2, path: good }, 99))).rejects.toThrow(/written from other weights/);
    await expect(native.createLayer({ ...opts(good), dtype: 'bf16' })).rejects.toThrow(/another shape \(dtype f32/);
  });

  test('a failed write leaves nothing that loads: missing folder, read-only file system', async () => {
    const missing = path.join(dir, 'no-such-folder', 'x.bin');
    await expect(native.createLayer(opts(missing))).rejects.toThrow(new RegExp(`${esc(missing)}.*cannot create`));
    await expect(native.createLayer(opts('/proc/moecap-x.bin'))).rejects.toThrow(/moecap-x\.bin.*cannot create/);
    expect(fs.existsSync('/proc/moecap-x.bin')).toBe(false);
  });

  test('a failed write (file size limit, as on a full disk) leaves no file and no temp file', async () => {
    const sub = fs.mkdtempSync(path.join(dir, 'full-'));
    const p = path.join(sub, 'experts.bin');
    const loader = path.resolve(__dirname, '../../dist/native/loader.js');
    const helpers = `const m = require(${JSON.stringify(loader)}).loadAddon();
      const o = { hidden: 64, intermediate: 64, experts: 8, topK: 2, weights: { seed: 5 }, offload: { capacity: 2, path: ${JSON.stringify(p)} } };
      m.createLayer(o).then(() => console.log('CREATED'), (e) => console.log('REJECTED ' + e.message));`;
    // SIGXFSZ ignored: write() fails with EFBIG like it would with ENOSPC.
    const r = spawnSync('bash', ['-c', `trap '' XFSZ; ulimit -f 64; exec node -e "$0"`, helpers], { encoding: 'utf8' });
    expect(r.stdout).toMatch(/REJECTED offload file .*experts\.bin.*: writing expert \d+: File too large/);
    expect(fs.readdirSync(sub)).toEqual([]);
    const ok = await native.createLayer({ hidden: 64, intermediate: 64, experts: 8, topK: 2, weights: { seed: 5 }, offload: { capacity: 2, path: p } });
    expect(ok.offloadInfo().fileBytes).toBe(fs.statSync(p).size);
  });

  // In a child process with its own TMPDIR, so moecap runs elsewhere on the machine cannot change the count.
  test('scratch files (no path) are removed while the layer holds them open', () => {
    const scratch = fs.mkdtempSync(path.join(dir, 'scratch-'));
    const loader = path.resolve(__dirname, '../../dist/native/loader.js');
    const script = `const m = require(${JSON.stringify(loader)}).loadAddon();
      const fs = require('fs');
      (async () => {
        const l = await m.createLayer({ hidden: 64, intermediate: 64, experts: 8, topK: 2, weights: { seed: 5 }, offload: { capacity: 2 } });
        await l.forward(Float32Array.from({ length: 3 * 64 }, (_, i) => Math.sin(i + 1)));
        console.log('HELD ' + l.offloadInfo().fileBytes + ' ' + JSON.stringify(fs.readdirSync(process.env.TMPDIR)));
      })().catch((e) => console.log('FAILED ' + e.message));`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, TMPDIR: scratch } });
    expect(r.stdout).toMatch(/^HELD [1-9]\d* \[\]$/m);
  });
});

// Next-layer prefetch loads experts before any pass needs them, without checking them (the I/O
// threads only read); the checksum is checked when a pass takes the expert. A model whose layer-1
// file has every expert corrupted must fail on layer 1 (naming that file), never return output.
test('model: corrupt experts loaded by next-layer prefetch fail the pass that takes them', async () => {
  const dir = tempDir();
  try {
    const base = { hidden: 40, intermediate: 24, experts: 8, topK: 2, layers: 2, threads: 2, dtype: 'bf16', weights: { seed: 9 } };
    const prefix = path.join(dir, 'm');
    const offload = { capacity: 8, prefetch: true, path: prefix };
    const x = tokens(3, 40, 5);
    const good = await native.createModel({ ...base, offload });
    const ref = (await good.forward(x)).output;
    good.close();
    const f1 = `${prefix}.1`;
    const buf = fs.readFileSync(f1);
    for (let e = 0; e < 8; e++) buf[Number(buf.readBigUInt64LE(88 + 24 * e)) + 7] ^= 0x40;
    fs.writeFileSync(f1, buf);
    const m = await native.createModel({ ...base, offload });
    const esc = f1.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    await expect(m.forward(x)).rejects.toThrow(new RegExp(`${esc}.*expert \\d+: checksum mismatch`));
    expect(m.offloadStats().prefetchIssued).toBeGreaterThan(0); // layer 1's experts came by prefetch
    await expect(m.forward(x)).rejects.toThrow(/checksum mismatch/); // a corrupt expert is never kept
    m.close();
    // Intact files give the output of the first model.
    const clean = await native.createModel({ ...base, offload: { ...offload, path: path.join(dir, 'clean') } });
    expect(sameBits((await clean.forward(x)).output, ref)).toBe(true);
    clean.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
