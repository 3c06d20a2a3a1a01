// What offload.path may name: a regular file, or a missing one to create. Anything else is refused
// at once with an error that says what the path is (a FIFO's open would wait for a writer forever;
// a directory used to read as a truncated header), and a path with a NUL (which C calls would cut
// short, writing elsewhere) is refused before anything is created. Also: each header check of the
// weights file names the field that differs with both values.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { native, scriptedOptions, tempDir, SCRIPT } from './helpers';
import { xxhash64 } from './xxhash64';

const HEADER = 88,
  ENTRY = 24,
  E = SCRIPT.experts;
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const opts = (p: string) => scriptedOptions(1, { capacity: 2, path: p });
const loader = path.resolve(__dirname, '../../dist/native/loader.js');

// Creates a layer in a child process (a hang there is killed, not inherited by jest) and returns
// what it printed.
function createInChild(p: string): { out: string; status: number | null; signal: string | null } {
  const script = `const m = require(${JSON.stringify(loader)}).loadAddon();
    const o = { hidden: 16, intermediate: 8, experts: 6, topK: 1, weights: { seed: 3 }, offload: { capacity: 2, path: ${JSON.stringify(p)} } };
    m.createLayer(o).then((l) => { console.log('CREATED'); l.close(); }, (e) => console.log(e.name + ' ' + e.message));`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30000 });
  return { out: r.stdout + r.stderr, status: r.status, signal: r.signal };
}

describe('offload.path', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir();
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('a FIFO is refused at once, naming it, and the process exits', () => {
    const fifo = path.join(dir, 'experts.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const t0 = Date.now();
    const r = createInChild(fifo);
    expect(r.signal).toBeNull(); // not killed by the timeout
    expect(r.out).toMatch(new RegExp(`RangeError offload file '${esc(fifo)}' is a FIFO; offload.path must name a regular file`));
    expect(Date.now() - t0).toBeLessThan(20000);
    expect(fs.statSync(fifo).isFIFO()).toBe(true); // left as it was
  });

  test('a directory is reported as a directory, not as a truncated header', async () => {
    const sub = fs.mkdtempSync(path.join(dir, 'folder-'));
    await expect(native.createLayer(opts(sub))).rejects.toThrow(new RegExp(`offload file '${esc(sub)}' is a directory`));
    await expect(native.createLayer(opts(sub))).rejects.toEqual(expect.objectContaining({ name: 'RangeError' }));
    expect(fs.readdirSync(sub)).toEqual([]);
  });

  test('a character device is refused', async () => {
    await expect(native.createLayer(opts('/dev/null'))).rejects.toThrow(/'\/dev\/null' is a character device/);
  });

  test('a symlink to a regular file works; to a FIFO it is refused', async () => {
    const real = path.join(dir, 'real.bin');
    (await native.createLayer(opts(real))).close();
    const link = path.join(dir, 'link.bin');
    fs.symlinkSync(real, link);
    (await native.createLayer(opts(link))).close();
    const fifo = path.join(dir, 'other.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const flink = path.join(dir, 'fifo-link.bin');
    fs.symlinkSync(fifo, flink);
    expect(createInChild(flink).out).toMatch(/is a FIFO/);
  });

  test('a NUL inside the path is refused before any file is written', async () => {
    const target = path.join(dir, 'nul.bin');
    const p = `${target}\0.evil`;
    await expect(native.createLayer(opts(p))).rejects.toEqual(expect.objectContaining({ name: 'RangeError' }));
    await expect(native.createLayer(opts(p))).rejects.toThrow(
      new RegExp(`offload.path contains a NUL character at index ${target.length} \\('${esc(target)}\\\\0\\.evil'\\)`),
    );
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('nul.bin'))).toEqual([]);
    // Also when the part before the NUL names an existing, valid file.
    const good = path.join(dir, 'good.bin');
    (await native.createLayer(opts(good))).close();
    await expect(native.createLayer(opts(`${good}\0x`))).rejects.toThrow(/NUL character/);
    // Models append ".<layer>" to the prefix: the NUL is still seen.
    const model = { hidden: 16, intermediate: 8, experts: 6, topK: 1, layers: 2, weights: { seed: 3 } };
    await expect(native.createModel({ ...model, offload: { capacity: 2, path: `${dir}/m\0` } })).rejects.toThrow(/NUL character/);
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('m'))).toEqual([]);
  });
});

describe('weights file header fields', () => {
  let dir: string, good: string, bytes: Buffer;
  beforeAll(async () => {
    dir = tempDir();
    good = path.join(dir, 'experts.bin');
    (await native.createLayer(opts(good))).close();
    bytes = fs.readFileSync(good);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const variant = (name: string, edit: (b: Buffer) => void, seal = false) => {
    const b = Buffer.from(bytes);
    edit(b);
    if (seal) b.writeBigUInt64LE(xxhash64(b.subarray(0, HEADER + ENTRY * E)), HEADER + ENTRY * E);
    const p = path.join(dir, name);
    fs.writeFileSync(p, b);
    return p;
  };

  test('a flipped table_bytes names the field and both values (was "holds 6 experts, the layer has 6")', async () => {
    const p = variant('table-bytes.bin', (b) => {
      b[80] ^= 0x01;
    });
    const want = ENTRY * E + 8;
    await expect(native.createLayer(opts(p))).rejects.toThrow(
      new RegExp(`${esc(p)}': header field table_bytes is ${want ^ 1}, expected ${want} for ${E} experts`),
    );
    const huge = variant('table-huge.bin', (b) => {
      b[87] ^= 0x80;
    });
    await expect(native.createLayer(opts(huge))).rejects.toThrow(/header field table_bytes is 9223372036854775960, expected 152 for 6 experts/);
  });

  test.each([
    ['w13_panels', 28, 4],
    ['w13_k', 32, 4],
    ['w2_panels', 36, 4],
    ['w2_k', 40, 4],
    ['w13_panel_bytes', 48, 8],
    ['w2_panel_bytes', 56, 8],
    ['expert_bytes', 64, 8],
  ])('packing field %s (checksum re-sealed) is named with both values', async (field, off, size) => {
    const p = variant(
      `${field}.bin`,
      (b) => {
        b[off as number] ^= 0x02;
      },
      true,
    );
    const was = size === 4 ? bytes.readInt32LE(off as number) : Number(bytes.readBigUInt64LE(off as number));
    await expect(native.createLayer(opts(p))).rejects.toThrow(
      new RegExp(`${esc(p)}': header field ${field} is ${was ^ 2}, this build packs ${was} for the layer's shape`),
    );
  });

  test('an expert whose bytes lie inside the header is refused, saying so', async () => {
    const p = variant(
      'inside.bin',
      (b) => {
        b.writeBigUInt64LE(64n, HEADER + ENTRY * 1);
      },
      true,
    );
    await expect(native.createLayer(opts(p))).rejects.toThrow(/expert 1: bytes \[64, \d+\) lie inside the header \(data starts at 4096\)/);
  });
});
