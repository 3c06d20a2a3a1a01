// `moecap run --model PATH`: a checkpoint's layers through the CAP run pipeline (shapes and
// routing from the file, inputs scaled by each layer's own post-attention norm weight, or
// captured activations), and the errors a user meets: a contradicting option, bad activations.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { readActivations } from '../../lib/checkpoint/inputs';
import { buildSafetensors } from './build';
import type { RefSpec } from './family_reference';
import { encode, npyBytes, randomArray, rng, safetensorsBytes, type StTensor } from './writers';

const BIN = path.join(__dirname, '..', '..', 'bin', 'moecap.js');
let tmp: string, dir: string;
const S: RefSpec = { family: 'qwen3_moe', H: 64, F: 32, E: 8, k: 2, normTopkProb: true };

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-runmodel-'));
  dir = path.join(tmp, 'qwen3');
  const cfg = {
    architectures: ['Qwen3MoeForCausalLM'],
    hidden_size: S.H,
    num_hidden_layers: 3,
    num_experts_per_tok: S.k,
    hidden_act: 'silu',
    moe_intermediate_size: S.F,
    num_experts: S.E,
    norm_topk_prob: true,
    decoder_sparse_step: 1,
    mlp_only_layers: [1],
  };
  buildSafetensors(dir, S, cfg, [0, 2], () => 'BF16', rng(21), 2);
  // The post-attention norm weights live beside the experts (an extra shard, listed in the index).
  const norms: StTensor[] = [0, 2].map((l) => ({
    name: `model.layers.${l}.post_attention_layernorm.weight`,
    dtype: 'F32',
    shape: [S.H],
    bytes: encode(
      randomArray(rng(30 + l), S.H, 0.5).map((v) => 1 + v),
      'F32',
    ).bytes,
  }));
  fs.writeFileSync(path.join(dir, 'norms.safetensors'), safetensorsBytes(norms));
  const idx = path.join(dir, 'model.safetensors.index.json');
  const index = JSON.parse(fs.readFileSync(idx, 'utf8'));
  for (const t of norms) index.weight_map[t.name] = 'norms.safetensors';
  fs.writeFileSync(idx, JSON.stringify(index));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const run = (...args: string[]) =>
  spawnSync(
    process.execPath,
    [BIN, 'run', '--model', dir, '--phase', 'decode', '--steps', '2', '--repeats', '1', '--warmup', '0', '--skip-calibration', '--no-bandwidth-check', ...args],
    {
      encoding: 'utf8',
      env: { ...process.env, MOECAP_CACHE_DIR: path.join(tmp, 'cache') },
    },
  );

test('layers, dtypes, offload and batches from the command line; shapes and inputs from the checkpoint', () => {
  const out = path.join(tmp, 'out');
  const r = run('--layers', '0,2', '--dtype', 'bf16,int8', '--offload', '0.25', '--batch', '1,3', '--out', out);
  expect(r.stderr).toMatch(/model: Qwen3MoeForCausalLM checkpoint .*qwen3, layers 0,2/);
  expect(r.stderr).toMatch(/inputs of layer 0: RMS-normalised N\(0,1\) vectors × layer 0's model\.layers\.0\.post_attention_layernorm\.weight/);
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/checkpoint:qwen3/);
  const res = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
  expect(res.configs).toHaveLength(4);
  for (const c of res.configs) {
    expect(c.options).toMatchObject({ preset: 'checkpoint:qwen3', layers: 2, residentFraction: 0.25 });
    expect(c.fidelity).toBeDefined();
  }
  // The second run reuses the converted expert files (one per layer and dtype).
  const files = fs.readdirSync(path.join(tmp, 'cache', 'experts', fs.readdirSync(path.join(tmp, 'cache', 'experts'))[0])).sort();
  expect(files).toEqual([
    'layer0-bf16.experts',
    'layer0-bf16.experts.json',
    'layer0-int8.experts',
    'layer0-int8.experts.json',
    'layer2-bf16.experts',
    'layer2-bf16.experts.json',
    'layer2-int8.experts',
    'layer2-int8.experts.json',
  ]);
});

test('--dtype native (the default with --model): the precision the checkpoint stores its experts in (BF16 → bf16), named in the results; without --model an error', () => {
  const out = path.join(tmp, 'out-native');
  const r = run('--dtype', 'native,int8', '--out', out);
  expect(r.stderr).not.toMatch(/Error/);
  expect(r.status).toBe(0);
  const res = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
  expect(res.configs.map((c: { options: { dtype: string } }) => c.options.dtype).sort()).toEqual(['bf16', 'int8']);
  // The default with --model.
  const def = run('--out', path.join(tmp, 'out-default'));
  expect(def.status).toBe(0);
  expect(JSON.parse(fs.readFileSync(path.join(tmp, 'out-default', 'results.json'), 'utf8')).configs[0].options.dtype).toBe('bf16');
  const bare = spawnSync(process.execPath, [BIN, 'run', '--preset', 'tiny', '--dtype', 'native', '--out', path.join(tmp, 'out-bare')], { encoding: 'utf8' });
  expect(bare.status).not.toBe(0);
  expect(bare.stderr).toMatch(/dtype native needs --model/);
});

test('a layer that is not in the checkpoint, --preset with --model, designed routing: one clear line, exit 2', () => {
  let r = run('--layers', '1');
  expect(r.status).not.toBe(0);
  expect(r.stderr).toMatch(/layer 1 .*(dense|missing)/);
  r = run('--preset', 'tiny');
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(/drop --preset/);
  r = run('--skew', '1.2');
  expect(r.stderr).toMatch(/own router: drop --skew/);
});

describe('--activations', () => {
  const npy = npyBytes;
  test('.npy f32 and safetensors bf16 are read; shape, dtype and truncation errors name the file', () => {
    const vals = randomArray(rng(5), 3 * S.H, 1);
    const f = path.join(tmp, 'acts.npy');
    fs.writeFileSync(f, npy('<f4', [3, S.H], encode(vals, 'F32').bytes));
    expect(Array.from(readActivations(f, S.H))).toEqual(Array.from(encode(vals, 'F32').decoded));
    const st = path.join(tmp, 'acts.safetensors');
    const bf = encode(vals, 'BF16');
    fs.writeFileSync(st, safetensorsBytes([{ name: 'hidden_states', dtype: 'BF16', shape: [1, 3, S.H], bytes: bf.bytes }]));
    expect(Array.from(readActivations(st, S.H))).toEqual(Array.from(bf.decoded));
    const wrongH = path.join(tmp, 'wrong.npy');
    fs.writeFileSync(wrongH, npy('<f4', [2, 10], Buffer.alloc(80)));
    expect(() => readActivations(wrongH, S.H)).toThrow(/activations .*wrong\.npy: shape \[2, 10\], the layer needs \[T, 64\]/);
    const f64 = path.join(tmp, 'f64.npy');
    fs.writeFileSync(f64, npy('<f8', [1, S.H], Buffer.alloc(8 * S.H)));
    expect(() => readActivations(f64, S.H)).toThrow(/f64\.npy: dtype <f8; f32, f16 or bf16/);
    const cut = path.join(tmp, 'cut.npy');
    fs.writeFileSync(cut, npy('<f4', [3, S.H], encode(vals, 'F32').bytes).subarray(0, 200));
    expect(() => readActivations(cut, S.H)).toThrow(/activations .*cut\.npy: .*truncated/);
    const cutSt = path.join(tmp, 'cut.safetensors');
    fs.writeFileSync(cutSt, fs.readFileSync(st).subarray(0, 120));
    expect(() => readActivations(cutSt, S.H)).toThrow(/cut\.safetensors/);
    // On the command line: the run uses them and says so.
    const r = run('--activations', f, '--out', path.join(tmp, 'out-acts'));
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/inputs of layer 0: captured activations from .*acts\.npy \(3 rows, cycled\)/);
    const bad = run('--activations', wrongH, '--out', path.join(tmp, 'out-bad'));
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/wrong\.npy: shape \[2, 10\]/);
  });
});

test('an option that contradicts the checkpoint is an error naming both values', async () => {
  const { createMoeLayer } = await import('../../lib');
  await expect(createMoeLayer({ checkpoint: dir, layer: 0, experts: 64 })).rejects.toThrow(
    /option experts 64 contradicts the checkpoint .*, whose layer 0 has experts 8/,
  );
  await expect(createMoeLayer({ checkpoint: dir, layer: 0, topK: 4 })).rejects.toThrow(/option topK 4 contradicts .* has topK 2/);
});
