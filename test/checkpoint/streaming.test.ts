// Checkpoint layers read by the core as it packs (no fp32 copy of the layer), and with `offload`
// converted once into a cached expert file: exact conversions bitwise, the same output as the
// in-memory path, reuse while the files are unchanged, reconversion after a change, and never a
// partial expert file after a failure or a kill.
import { spawn } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createMoeLayer, createMoeModel } from '../../lib';
import { checkpointReadCounters, openCheckpoint, readLayer } from '../../lib/checkpoint/checkpoint';
import { buildGguf, buildSafetensors } from './build';
import type { RefSpec } from './family_reference';
import { randomArray, rng, writeSafetensorsCheckpoint, type StTensor } from './writers';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-stream-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const mixtralCfg = (s: RefSpec, L: number) => ({
  architectures: ['MixtralForCausalLM'],
  hidden_size: s.H,
  num_hidden_layers: L,
  num_experts_per_tok: s.k,
  hidden_act: 'silu',
  intermediate_size: s.F,
  num_local_experts: s.E,
});

/** Packed bytes of expert e of an engine expert file (header: 88 bytes, then {offset, size, xxh64} per expert). */
function expertBytes(file: string, e: number): Buffer {
  const b = fs.readFileSync(file);
  const at = 88 + 24 * e;
  const off = Number(b.readBigUInt64LE(at)),
    size = Number(b.readBigUInt64LE(at + 8));
  return b.subarray(off, off + size);
}

function sortedU16(b: Buffer): number[] {
  const out: number[] = [];
  for (let i = 0; i + 1 < b.length; i += 2) out.push(b.readUInt16LE(i));
  return out.sort((x, y) => x - y);
}

const S: RefSpec = { family: 'mixtral', H: 64, F: 32, E: 6, k: 2 };

describe('streaming conversion into the expert file', () => {
  let dir: string;
  beforeAll(() => {
    dir = path.join(tmp, 'mixtral-bf16');
    buildSafetensors(dir, S, mixtralCfg(S, 2), [0, 1], () => 'BF16', rng(7), 2);
  });

  test('BF16 → bf16 is exact: the packed expert holds exactly the checkpoint bits', async () => {
    const cacheDir = path.join(tmp, 'cache-exact');
    const moe = await createMoeLayer({ checkpoint: dir, layer: 1, dtype: 'bf16', offload: { capacity: 2 }, cacheDir, threads: 2 });
    const file = moe.expertStore!.file;
    moe.close();
    expect(file.startsWith(cacheDir)).toBe(true);
    const ck = openCheckpoint(dir);
    for (const e of [0, 4]) {
      const src: Buffer[] = ['w1', 'w3', 'w2'].map((n) => {
        const t = ck.tensors.get(`model.layers.1.block_sparse_moe.experts.${e}.${n}.weight`)!;
        const fd = fs.openSync(t.file, 'r');
        const buf = Buffer.alloc(t.byteLength);
        fs.readSync(fd, buf, 0, t.byteLength, t.offset);
        fs.closeSync(fd);
        return buf;
      });
      // H and F are multiples of the panel sizes: no padding, so the packed bytes are a permutation of the source's.
      expect(sortedU16(expertBytes(file, e))).toEqual(sortedU16(Buffer.concat(src)));
    }
  });

  test('streamed (resident and offloaded) output is bitwise the in-memory layer', async () => {
    const x = Float32Array.from(randomArray(rng(3), 9 * S.H, 1));
    const ref = await createMoeLayer({ ...readLayer(openCheckpoint(dir), 0), dtype: 'bf16', threads: 2 });
    const want = (await ref.forward(x)).output;
    ref.close();
    for (const offload of [undefined, { capacity: 2 }]) {
      const moe = await createMoeLayer({
        checkpoint: dir,
        layer: 0,
        dtype: 'bf16',
        threads: 2,
        poison: true,
        offload,
        cacheDir: path.join(tmp, 'cache-bitwise'),
      });
      const got = (await moe.forward(x)).output;
      moe.close();
      expect(Buffer.from(got.buffer).equals(Buffer.from(want.buffer))).toBe(true);
    }
  });

  test('reused while unchanged; a touched shard or another dtype converts again', async () => {
    const cacheDir = path.join(tmp, 'cache-reuse');
    const open = (dtype: 'bf16' | 'int8') => createMoeLayer({ checkpoint: dir, layer: 1, dtype, offload: { capacity: 1 }, cacheDir, threads: 2 });
    const a = await open('bf16');
    expect(a.expertStore!.reused).toBe(false);
    const file = a.expertStore!.file;
    a.close();
    const st1 = fs.statSync(file);
    const manifest1 = fs.readFileSync(`${file}.json`, 'utf8');
    const b = await open('bf16');
    expect(b.expertStore).toEqual({ file, reused: true });
    b.close();
    const st2 = fs.statSync(file);
    expect([st2.ino, st2.mtimeMs]).toEqual([st1.ino, st1.mtimeMs]);
    expect(fs.readFileSync(`${file}.json`, 'utf8')).toBe(manifest1);
    // Another dtype: its own file.
    const c = await open('int8');
    expect(c.expertStore!.reused).toBe(false);
    expect(c.expertStore!.file).not.toBe(file);
    c.close();
    // Touch every shard: same bytes, new mtime → converted again.
    const later = new Date(Date.now() + 5000);
    for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.safetensors'))) fs.utimesSync(path.join(dir, f), later, later);
    const d = await open('bf16');
    expect(d.expertStore!.reused).toBe(false);
    d.close();
    // The new manifest's key holds the shards' new mtimes.
    expect(fs.readFileSync(`${file}.json`, 'utf8')).not.toBe(manifest1);
    expect(fs.readdirSync(path.dirname(file)).filter((n) => n.includes('.tmp-'))).toEqual([]);
    // A cached file damaged on disk (its manifest still matches): converted again, not an error.
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.from([0xff]), 0, 1, 40);
    fs.closeSync(fd);
    const e = await open('bf16');
    expect(e.expertStore).toEqual({ file, reused: false });
    e.close();
    const f = await open('bf16');
    expect(f.expertStore!.reused).toBe(true);
    f.close();
  });
});

test('Q8_0 → int8 is exact: the packed expert holds the checkpoint q values and fp16 scales', async () => {
  const s: RefSpec = { family: 'qwen3_moe', H: 64, F: 32, E: 4, k: 2, normTopkProb: true };
  const file = path.join(tmp, 'q8.gguf');
  buildGguf(file, s, 'qwen3moe', 1, [0], [['qwen3moe.expert_feed_forward_length', 'u32', s.F]], 'Q8_0', rng(9));
  const moe = await createMoeLayer({ checkpoint: file, layer: 0, dtype: 'int8', offload: { capacity: 1 }, cacheDir: path.join(tmp, 'cache-q8'), threads: 2 });
  const ef = moe.expertStore!.file;
  moe.close();
  const ck = openCheckpoint(file);
  const e = 2;
  const parts = ['gate', 'up', 'down'].map((n) => {
    const t = ck.tensors.get(`blk.0.ffn_${n}_exps.weight`)!;
    const per = t.byteLength / s.E;
    const fd = fs.openSync(t.file, 'r');
    const buf = Buffer.alloc(per);
    fs.readSync(fd, buf, 0, per, t.offset + e * per);
    fs.closeSync(fd);
    return buf;
  });
  // Q8_0 block: fp16 d then 32 int8 q; the engine's int8 block: the rows' q stored as q + 128, then their fp16 scales.
  const src = Buffer.concat(parts);
  for (let b = 0; b < src.length; b += 34) for (let j = 2; j < 34; j++) src[b + j] = (src.readInt8(b + j) + 128) & 0xff;
  const bytes = (b: Buffer) => Array.from(b).sort((x, y) => x - y);
  expect(bytes(expertBytes(ef, e))).toEqual(bytes(src));
});

describe('failures leave no expert file', () => {
  test('NaN in an expert mid-conversion: a clear error naming file and tensor, nothing at the path', async () => {
    const dir = path.join(tmp, 'nan');
    buildSafetensors(dir, S, mixtralCfg(S, 1), [0], () => 'F32', rng(11));
    const ck = openCheckpoint(dir);
    const t = ck.tensors.get('model.layers.0.block_sparse_moe.experts.3.w2.weight')!;
    const fd = fs.openSync(t.file, 'r+');
    const nan = Buffer.alloc(4);
    nan.writeFloatLE(NaN);
    fs.writeSync(fd, nan, 0, 4, t.offset + 4 * 77);
    fs.closeSync(fd);
    const cacheDir = path.join(tmp, 'cache-nan');
    await expect(createMoeLayer({ checkpoint: dir, layer: 0, offload: { capacity: 2 }, cacheDir, threads: 2 })).rejects.toMatchObject({
      code: 'ERR_CORRUPT_FILE',
      message: expect.stringMatching(/tensor model\.layers\.0\.block_sparse_moe\.experts\.3\.w2\.weight in .*model\.safetensors holds NaN at element 77/),
    });
    const folder = fs.readdirSync(path.join(cacheDir, 'experts'));
    expect(folder.length).toBe(1);
    expect(fs.readdirSync(path.join(cacheDir, 'experts', folder[0]))).toEqual([]);
  });

  test('a shard truncated after it was opened: error names the file and tensor, nothing written', async () => {
    const dir = path.join(tmp, 'trunc');
    buildSafetensors(dir, S, mixtralCfg(S, 1), [0], () => 'BF16', rng(12));
    const f = path.join(dir, 'model.safetensors');
    const size = fs.statSync(f).size;
    const cacheDir = path.join(tmp, 'cache-trunc');
    // Truncate between the header check (openCheckpoint) and the conversion: the core's reads find the end.
    const { prepareCheckpointLayer } = await import('../../lib/checkpoint/checkpoint');
    const { options } = prepareCheckpointLayer({ checkpoint: dir, layer: 0, offload: { capacity: 2 }, cacheDir, threads: 2 });
    fs.truncateSync(f, size - 4096);
    await expect(createMoeLayer(options)).rejects.toMatchObject({
      code: 'ERR_CORRUPT_FILE',
      message: expect.stringMatching(/model\.safetensors ends inside tensor model\.layers\.0\.block_sparse_moe\.experts\.\d\.w\d\.weight \(truncated\)/),
    });
    expect(fs.existsSync(options.offload!.path!)).toBe(false);
    expect(fs.readdirSync(path.dirname(options.offload!.path!))).toEqual([]);
  });

  test('a conversion killed half-way leaves no file at the path; the next run converts and clears the leftover', async () => {
    const s: RefSpec = { family: 'mixtral', H: 256, F: 512, E: 64, k: 2 };
    const dir = path.join(tmp, 'big');
    // Random finite BF16 bits written directly (generating fp64 values first is the slow part here).
    const bf16 = (n: number) => {
      const b = crypto.randomBytes(2 * n);
      for (let i = 0; i < b.length; i += 2) b.writeUInt16LE((b.readUInt16LE(i) & 0x807f) | 0x3c00, i);
      return b;
    };
    const p = 'model.layers.0.block_sparse_moe.';
    const tensors: StTensor[] = [{ name: `${p}gate.weight`, dtype: 'BF16', shape: [s.E, s.H], bytes: bf16(s.E * s.H) }];
    for (let e = 0; e < s.E; e++)
      for (const [n, shape] of [
        ['w1', [s.F, s.H]],
        ['w3', [s.F, s.H]],
        ['w2', [s.H, s.F]],
      ] as const)
        tensors.push({ name: `${p}experts.${e}.${n}.weight`, dtype: 'BF16', shape: [...shape], bytes: bf16(s.F * s.H) });
    writeSafetensorsCheckpoint(dir, mixtralCfg(s, 1), tensors);
    const cacheDir = path.join(tmp, 'cache-kill');
    // The compiled package (npm test runs tsc first). Killed at its first progress line (one expert written of 64).
    const lib = path.join(__dirname, '..', '..', 'dist', 'index.js');
    const opts = `{ checkpoint: ${JSON.stringify(dir)}, layer: 0, dtype: 'f32', offload: { capacity: 1, progress: 'convert' }, cacheDir: ${JSON.stringify(cacheDir)}, threads: 1 }`;
    const child = spawn(process.execPath, ['-e', `require(${JSON.stringify(lib)}).createMoeLayer(${opts}).then(() => setTimeout(() => {}, 60000))`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const exited = new Promise((r) => child.once('exit', r));
    let stderr = '';
    await new Promise<void>((resolve) => {
      child.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (/convert \[/.test(stderr)) {
          child.kill('SIGKILL');
          resolve();
        }
      });
      void exited.then(() => resolve());
    });
    await exited;
    expect(stderr).toMatch(/convert \[#*\.+\] \d+\/64 experts, \d+ MB\/s packed, ETA \d+ s/);
    const folder = path.join(cacheDir, 'experts', fs.readdirSync(path.join(cacheDir, 'experts'))[0]);
    const names = fs.readdirSync(folder);
    expect(names.filter((n) => n.includes('.tmp-')).length).toBe(1);
    expect(names.filter((n) => !n.includes('.tmp-'))).toEqual([]); // no expert file, no manifest
    const moe = await createMoeLayer({ checkpoint: dir, layer: 0, dtype: 'f32', offload: { capacity: 1 }, cacheDir, threads: 2 });
    expect(moe.expertStore!.reused).toBe(false);
    moe.close();
    expect(fs.readdirSync(folder).sort()).toEqual(['layer0-f32.experts', 'layer0-f32.experts.json']);
  }, 60000);
});

test("createMoeModel({ checkpoint, layers: 'all' }): each layer from the file, equal to the layers run one after the other with residuals", async () => {
  const dir = path.join(tmp, 'model');
  buildSafetensors(dir, S, mixtralCfg(S, 2), [0, 1], () => 'BF16', rng(17));
  const cacheDir = path.join(tmp, 'cache-model');
  const x = Float32Array.from(randomArray(rng(4), 5 * S.H, 1));
  const model = await createMoeModel({ checkpoint: dir, layers: 'all', dtype: 'bf16', offload: { capacity: { fraction: 0.5 } }, cacheDir, threads: 2 });
  expect(model.checkpointLayers).toEqual([0, 1]);
  expect(model.expertStores!.map((s) => [s.layer, s.reused])).toEqual([
    [0, false],
    [1, false],
  ]);
  const got = (await model.forward(x)).output;
  model.close();
  // The same with resident layers, one at a time: h ← h + moe_l(h).
  const h = Float32Array.from(x);
  for (const layer of [0, 1]) {
    const moe = await createMoeLayer({ checkpoint: dir, layer, dtype: 'bf16', threads: 2 });
    const y = (await moe.forward(h)).output;
    moe.close();
    for (let i = 0; i < h.length; i++) h[i] += y[i];
  }
  expect(Buffer.from(got.buffer).equals(Buffer.from(h.buffer))).toBe(true);
  const again = await createMoeModel({ checkpoint: dir, layers: [1], dtype: 'bf16', offload: { capacity: 2 }, cacheDir, threads: 2 });
  expect(again.expertStores).toEqual([{ layer: 1, file: expect.stringMatching(/layer1-bf16\.experts$/), reused: true }]);
  again.close();
  // Layer 1's cached file damaged on disk (its manifest still matches): that layer is converted
  // again, layer 0's file is reused, and the model computes the same output.
  const damaged = again.expertStores![0].file;
  const fd = fs.openSync(damaged, 'r+');
  fs.writeSync(fd, Buffer.from([0xff]), 0, 1, 40);
  fs.closeSync(fd);
  const rebuilt = await createMoeModel({ checkpoint: dir, layers: 'all', dtype: 'bf16', offload: { capacity: { fraction: 0.5 } }, cacheDir, threads: 2 });
  expect(rebuilt.expertStores!.map((s) => [s.layer, s.reused])).toEqual([
    [0, true],
    [1, false],
  ]);
  expect(Buffer.from((await rebuilt.forward(x)).output.buffer).equals(Buffer.from(got.buffer))).toBe(true);
  rebuilt.close();
  await expect(createMoeModel({ checkpoint: dir, layers: [0], experts: 8 })).rejects.toThrow(/option experts 8 contradicts .* has experts 6/);
});

describe('checkpoint options', () => {
  test('an option that contradicts the checkpoint names both values', async () => {
    const dir = path.join(tmp, 'opts');
    buildSafetensors(dir, S, mixtralCfg(S, 1), [0], () => 'F32', rng(14));
    await expect(createMoeLayer({ checkpoint: dir, layer: 0, experts: 8 })).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTION',
      message: expect.stringMatching(/option experts 8 contradicts the checkpoint .*, whose layer 0 has experts 6/),
    });
    await expect(createMoeLayer({ checkpoint: dir, layer: 0, offload: { capacity: 1 }, cacheDir: '' })).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' });
  });
});

describe('gpt-oss and Llama 4 stream expert by expert (transposed, interleaved or halved gate_up)', () => {
  /** Source bytes of one expert: gate_up [H, 2F] and down [F, H], BF16 or F32. */
  const expertSourceBytes = (s: RefSpec, bytes: number) => 3 * s.H * s.F * bytes;
  const cases: { name: string; s: RefSpec; cfg: object; layer: number; dtypeOf: (n: string) => 'F32' | 'BF16'; elementBytes: number }[] = [
    {
      name: 'gpt-oss BF16 (interleaved gate/up columns)',
      s: { family: 'gpt_oss', H: 40, F: 24, E: 6, k: 3, swigluLimit: 0.3 },
      cfg: {
        architectures: ['GptOssForCausalLM'],
        hidden_size: 40,
        num_hidden_layers: 1,
        num_experts_per_tok: 3,
        hidden_act: 'silu',
        intermediate_size: 24,
        num_local_experts: 6,
        swiglu_limit: 0.3,
      },
      layer: 0,
      dtypeOf: (n) => (n.endsWith('bias') ? 'F32' : 'BF16'),
      elementBytes: 2,
    },
    {
      name: 'Llama 4 F32 (gate | up halves)',
      s: { family: 'llama4', H: 32, F: 20, E: 5, k: 2 },
      cfg: {
        architectures: ['Llama4ForCausalLM'],
        hidden_size: 32,
        num_hidden_layers: 1,
        num_experts_per_tok: 2,
        hidden_act: 'silu',
        intermediate_size: 20,
        intermediate_size_mlp: 48,
        num_local_experts: 5,
      },
      layer: 0,
      dtypeOf: () => 'F32',
      elementBytes: 4,
    },
  ];
  for (const c of cases)
    test(`${c.name}: bitwise the whole-read layer, resident and offloaded; staging holds a few experts`, async () => {
      const dir = path.join(tmp, c.s.family + '-stream');
      buildSafetensors(dir, c.s, c.cfg, [c.layer], c.dtypeOf, rng(41));
      const x = Float32Array.from(randomArray(rng(42), 7 * c.s.H, 1));
      // The whole-read path (readLayer: the transposition done in TypeScript) is the reference.
      const whole = await createMoeLayer({ ...readLayer(openCheckpoint(dir), c.layer), dtype: 'f32', threads: 2 });
      const want = (await whole.forward(x)).output;
      whole.close();
      for (const offload of [undefined, { capacity: 2 }]) {
        checkpointReadCounters(true);
        const before = checkpointReadCounters();
        const moe = await createMoeLayer({
          checkpoint: dir,
          layer: c.layer,
          dtype: 'f32',
          threads: 2,
          poison: true,
          offload,
          cacheDir: path.join(tmp, `cache-${c.s.family}`),
        });
        const after = checkpointReadCounters();
        const got = (await moe.forward(x)).output;
        moe.close();
        expect(Buffer.from(got.buffer).equals(Buffer.from(want.buffer))).toBe(true);
        // Each expert's slab read once (gate and up share it), the router, biases, shared expert
        // besides: never the layer twice; the staging held at most three experts' bytes at once.
        const layerExpertBytes = c.s.E * expertSourceBytes(c.s, c.elementBytes);
        expect(after.bytes - before.bytes).toBeGreaterThanOrEqual(layerExpertBytes);
        expect(after.bytes - before.bytes).toBeLessThan(layerExpertBytes * 1.5);
        expect(after.stagedPeakBytes).toBeGreaterThanOrEqual(expertSourceBytes(c.s, c.elementBytes));
        expect(after.stagedPeakBytes).toBeLessThanOrEqual(3 * expertSourceBytes(c.s, c.elementBytes));
      }
    });
});

test('gpt-oss: a file truncated after it was opened is one error naming it and the tensor; no expert file', async () => {
  const s: RefSpec = { family: 'gpt_oss', H: 32, F: 16, E: 4, k: 2 };
  const dir = path.join(tmp, 'gpt-oss-trunc');
  const cfg = {
    architectures: ['GptOssForCausalLM'],
    hidden_size: 32,
    num_hidden_layers: 1,
    num_experts_per_tok: 2,
    hidden_act: 'silu',
    intermediate_size: 16,
    num_local_experts: 4,
  };
  buildSafetensors(dir, s, cfg, [0], (n) => (n.endsWith('bias') ? 'F32' : 'BF16'), rng(43));
  const ck = openCheckpoint(dir);
  // Cut inside the last expert's down slab (the expert tensor last in the file: the experts before
  // it convert, then the read of the last one comes up short).
  const dn = ck.tensors.get('model.layers.0.mlp.experts.down_proj')!;
  expect(dn.offset).toBeGreaterThan(ck.tensors.get('model.layers.0.mlp.experts.gate_up_proj')!.offset);
  const { prepareCheckpointLayer } = await import('../../lib/checkpoint/checkpoint');
  const { options } = prepareCheckpointLayer({
    checkpoint: dir,
    layer: 0,
    offload: { capacity: 1 },
    cacheDir: path.join(tmp, 'cache-gpt-oss-trunc'),
    threads: 2,
  });
  const f = dn.file;
  const keep = fs.readFileSync(f).subarray(0, dn.offset + dn.byteLength - 100);
  fs.writeFileSync(f, keep);
  await expect(createMoeLayer(options)).rejects.toMatchObject({
    code: 'ERR_CORRUPT_FILE',
    message: expect.stringMatching(/model\.safetensors ends inside tensor model\.layers\.0\.mlp\.experts\.down_proj \(truncated\)/),
  });
  expect(fs.existsSync(options.offload!.path!)).toBe(false);
  expect(fs.readdirSync(path.dirname(options.offload!.path!)).filter((n) => n.includes('.tmp-'))).toEqual([]);
});
