// Malformed checkpoints: each is refused with one clear error naming the file and, where there is
// one, the tensor (ERR_CORRUPT_FILE / ERR_INVALID_OPTION), before any tensor data is read.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createMoeLayer, MoecapError } from '../../lib';
import { readSafetensorsFile, readSafetensorsCheckpoint } from '../../lib/checkpoint/safetensors';
import { readGgufFile } from '../../lib/checkpoint/gguf';
import { checkLayer, openCheckpoint } from '../../lib/checkpoint/checkpoint';
import { buildGguf, buildSafetensors } from './build';
import type { RefSpec } from './family_reference';
import { encode, ggufBytes, rng, safetensorsBytes, writeSafetensorsCheckpoint, type GgufKv } from './writers';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-bad-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function expectError(fn: () => unknown, code: string, ...parts: Array<string | RegExp>): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(MoecapError);
  expect((err as MoecapError).code).toBe(code);
  for (const p of parts) expect((err as Error).message).toMatch(p);
}

function file(name: string, bytes: Buffer): string {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, bytes);
  return f;
}

function headerFile(name: string, header: object | string, dataBytes: number): string {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return file(name, Buffer.concat([len, json, Buffer.alloc(dataBytes, 1)]));
}

describe('safetensors headers', () => {
  test('header length past the end of the file, over the limit, or no room for it', () => {
    const b = Buffer.alloc(20);
    b.writeBigUInt64LE(1000n);
    expectError(() => readSafetensorsFile(file('long.safetensors', b)), 'ERR_CORRUPT_FILE', /long\.safetensors/, /header length 1000 runs past the end/);
    b.writeBigUInt64LE(2n ** 62n);
    expectError(() => readSafetensorsFile(file('huge.safetensors', b)), 'ERR_CORRUPT_FILE', /exceeds the 100000000-byte limit/);
    expectError(() => readSafetensorsFile(file('tiny.safetensors', Buffer.alloc(5))), 'ERR_CORRUPT_FILE', /too short/);
  });

  test('not JSON, not an object, bad entries', () => {
    expectError(() => readSafetensorsFile(headerFile('nojson.safetensors', '{"a": ', 0)), 'ERR_CORRUPT_FILE', /not valid JSON/);
    expectError(() => readSafetensorsFile(headerFile('arr.safetensors', '[1,2]', 0)), 'ERR_CORRUPT_FILE', /not a JSON object/);
    expectError(
      () => readSafetensorsFile(headerFile('dt.safetensors', { w: { dtype: 'F33', shape: [1], data_offsets: [0, 4] } }, 4)),
      'ERR_CORRUPT_FILE',
      /tensor w: unknown dtype "F33"/,
    );
    expectError(
      () => readSafetensorsFile(headerFile('shape.safetensors', { w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4)),
      'ERR_CORRUPT_FILE',
      /tensor w: shape/,
    );
    expectError(
      () => readSafetensorsFile(headerFile('rev.safetensors', { w: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, 4)),
      'ERR_CORRUPT_FILE',
      /tensor w: data_offsets/,
    );
    expectError(() => readSafetensorsFile(headerFile('meta.safetensors', { __metadata__: { a: 1 } }, 0)), 'ERR_CORRUPT_FILE', /__metadata__/);
  });

  test('offsets out of range, overlapping, or not matching shape × dtype size', () => {
    expectError(
      () => readSafetensorsFile(headerFile('oob.safetensors', { w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, 8)),
      'ERR_CORRUPT_FILE',
      /oob\.safetensors/,
      /tensor w: data_offsets \[0, 16\] run past the end/,
    );
    expectError(
      () =>
        readSafetensorsFile(
          headerFile(
            'overlap.safetensors',
            { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } },
            12,
          ),
        ),
      'ERR_CORRUPT_FILE',
      /tensor b overlaps tensor a/,
    );
    expectError(
      () => readSafetensorsFile(headerFile('size.safetensors', { w: { dtype: 'BF16', shape: [3], data_offsets: [0, 8] } }, 8)),
      'ERR_CORRUPT_FILE',
      /tensor w: 8 bytes do not match shape \[3\] of BF16 \(6 bytes\)/,
    );
  });

  test('a truncated shard is refused by name', () => {
    const dir = path.join(tmp, 'trunc');
    const t = { name: 'x', dtype: 'F32', shape: [2, 8], bytes: encode(new Float64Array(16).fill(0.5), 'F32').bytes };
    writeSafetensorsCheckpoint(dir, {}, [t, { ...t, name: 'y' }], 2);
    const shard = path.join(dir, 'model-00002-of-00002.safetensors');
    fs.truncateSync(shard, fs.statSync(shard).size - 3);
    expectError(() => readSafetensorsCheckpoint(dir), 'ERR_CORRUPT_FILE', /model-00002-of-00002\.safetensors/, /tensor y/, /truncated/);
  });

  test('index entries missing, or naming tensors the shard lacks', () => {
    const dir = path.join(tmp, 'index');
    const t = { name: 'x', dtype: 'F32', shape: [4], bytes: encode([1, 2, 3, 4], 'F32').bytes };
    // Shard 1 holds x and z, shard 2 holds y.
    writeSafetensorsCheckpoint(dir, {}, [t, { ...t, name: 'y' }, { ...t, name: 'z' }], 2);
    const indexPath = path.join(dir, 'model.safetensors.index.json');
    const index = JSON.parse(fs.readFileSync(indexPath, 'utf8'));
    fs.writeFileSync(indexPath, JSON.stringify({ ...index, weight_map: { x: index.weight_map.x, y: index.weight_map.y } }));
    expectError(
      () => readSafetensorsCheckpoint(dir),
      'ERR_CORRUPT_FILE',
      /model\.safetensors\.index\.json/,
      /tensor z is in model-00001-of-00002\.safetensors but the weight_map has no entry/,
    );
    fs.writeFileSync(indexPath, JSON.stringify({ ...index, weight_map: { ...index.weight_map, w: index.weight_map.x } }));
    expectError(() => readSafetensorsCheckpoint(dir), 'ERR_CORRUPT_FILE', /tensor w listed in model\.safetensors\.index\.json is missing/);
    fs.writeFileSync(indexPath, JSON.stringify({ weight_map: { x: '../etc/passwd' } }));
    expectError(() => readSafetensorsCheckpoint(dir), 'ERR_CORRUPT_FILE', /weight_map\[x\] must be a file name/);
  });
});

describe('checkpoints against their config', () => {
  const s: RefSpec = { family: 'qwen3_moe', H: 16, F: 8, E: 4, k: 2, normTopkProb: true };
  const cfg = {
    architectures: ['Qwen3MoeForCausalLM'],
    hidden_size: 16,
    num_hidden_layers: 1,
    num_experts_per_tok: 2,
    moe_intermediate_size: 8,
    num_experts: 4,
    norm_topk_prob: true,
  };
  const build = (name: string, config: object = cfg, dtype: 'F32' | 'BF16' = 'F32') => {
    const dir = path.join(tmp, name);
    buildSafetensors(dir, s, config, [0], () => dtype, rng(9));
    return dir;
  };
  const rewrite = (dir: string, edit: (tensors: Array<{ name: string; dtype: string; shape: number[]; bytes: Buffer }>) => void) => {
    const f = path.join(dir, 'model.safetensors');
    const parsed = readSafetensorsFile(f);
    const buf = fs.readFileSync(f);
    const tensors = parsed.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, bytes: buf.subarray(t.offset, t.offset + t.byteLength) }));
    edit(tensors);
    fs.writeFileSync(f, safetensorsBytes(tensors));
  };

  test('a missing tensor', async () => {
    const dir = build('missing');
    rewrite(dir, (ts) =>
      ts.splice(
        ts.findIndex((t) => t.name === 'model.layers.0.mlp.experts.3.up_proj.weight'),
        1,
      ),
    );
    await expect(createMoeLayer({ checkpoint: dir, layer: 0 })).rejects.toMatchObject({
      code: 'ERR_CORRUPT_FILE',
      message: expect.stringMatching(/tensor model\.layers\.0\.mlp\.experts\.3\.up_proj\.weight \(layer 0\) is missing/),
    });
  });

  test('a shape that contradicts config.json', async () => {
    const dir = build('shape', { ...cfg, moe_intermediate_size: 6 });
    await expect(createMoeLayer({ checkpoint: dir, layer: 0 })).rejects.toMatchObject({
      code: 'ERR_CORRUPT_FILE',
      message: expect.stringMatching(
        /model\.safetensors: tensor model\.layers\.0\.mlp\.experts\.0\.gate_proj\.weight has shape \[8, 16\] but config\.json implies \[6, 16\]/,
      ),
    });
  });

  test('NaN or Inf in the weights names the file and the tensor', async () => {
    const dir = build('nan');
    rewrite(dir, (ts) => ts.find((t) => t.name.endsWith('experts.2.down_proj.weight'))!.bytes.writeFloatLE(NaN, 12));
    await expect(createMoeLayer({ checkpoint: dir, layer: 0 })).rejects.toMatchObject({
      code: 'ERR_CORRUPT_FILE',
      message: expect.stringMatching(/experts\.2\.down_proj\.weight in .*model\.safetensors holds NaN/),
    });
    const dir2 = build('inf', cfg, 'BF16');
    rewrite(dir2, (ts) => ts.find((t) => t.name.endsWith('gate.weight'))!.bytes.writeUInt16LE(0x7f80, 2));
    await expect(createMoeLayer({ checkpoint: dir2, layer: 0 })).rejects.toMatchObject({
      code: 'ERR_CORRUPT_FILE',
      message: expect.stringMatching(/mlp\.gate\.weight in .* holds Inf/),
    });
  });

  test('an on-disk dtype the reader cannot convert yet', async () => {
    const dir = build('fp8');
    rewrite(dir, (ts) => {
      const t = ts.find((x) => x.name.endsWith('experts.0.gate_proj.weight'))!;
      t.dtype = 'F8_E5M2';
      t.bytes = Buffer.alloc(8 * 16, 0x30);
    });
    await expect(createMoeLayer({ checkpoint: dir, layer: 0 })).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTION',
      message: expect.stringMatching(/not yet supported: .* is F8_E5M2/),
    });
  });

  test('config.json missing or unreadable; weights with a checkpoint', async () => {
    const dir = build('nocfg');
    await expect(createMoeLayer({ checkpoint: dir, layer: 0, weights: { seed: 1 } } as never)).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTION',
      message: expect.stringMatching(/weights cannot be given with checkpoint/),
    });
    fs.writeFileSync(path.join(dir, 'config.json'), '{');
    expectError(() => openCheckpoint(dir), 'ERR_CORRUPT_FILE', /config\.json: not valid JSON/);
    fs.rmSync(path.join(dir, 'config.json'));
    expectError(() => openCheckpoint(path.join(dir, 'model.safetensors')), 'ERR_INVALID_OPTION', /config\.json: missing/);
    expectError(() => openCheckpoint(path.join(tmp, 'nope')), 'ERR_INVALID_OPTION', /does not exist/);
  });
});

describe('families refused, with what differs', () => {
  const base = { hidden_size: 16, num_hidden_layers: 1, num_experts_per_tok: 2 };
  const refuse = (arch: string, extra: object, ...parts: RegExp[]) => {
    const dir = path.join(tmp, `refuse-${arch}-${parts.length}-${Object.keys(extra).length}`);
    writeSafetensorsCheckpoint(dir, { architectures: [arch], ...base, ...extra }, []);
    expectError(() => openCheckpoint(dir), 'ERR_INVALID_OPTION', ...parts);
  };
  test('an unknown architecture names the known ones', () => {
    refuse(
      'FooForCausalLM',
      {},
      /unknown architecture FooForCausalLM/,
      /known: MixtralForCausalLM, OlmoeForCausalLM/,
      /GptOssForCausalLM/,
      /PhimoeForCausalLM/,
    );
  });
  test('a non-SiLU activation', () => {
    refuse('MixtralForCausalLM', { num_local_experts: 4, intermediate_size: 8, hidden_act: 'gelu' }, /hidden_act "gelu"/);
  });
});

describe('DeepSeek groups that the family code could not run', () => {
  const base = { hidden_size: 16, num_hidden_layers: 1, num_experts_per_tok: 3, moe_intermediate_size: 8 };
  const corrupt = (name: string, cfg: object, ...parts: RegExp[]) => {
    const dir = path.join(tmp, `groups-${name}`);
    writeSafetensorsCheckpoint(dir, { ...base, ...cfg }, []);
    expectError(() => openCheckpoint(dir), 'ERR_CORRUPT_FILE', ...parts);
  };
  test('group_limited_greedy / noaux_tc groups that do not divide the experts or leave fewer than k', () => {
    corrupt(
      'v2-divide',
      { architectures: ['DeepseekV2ForCausalLM'], n_routed_experts: 8, topk_method: 'group_limited_greedy', n_group: 3, topk_group: 2 },
      /n_routed_experts 8 must split into n_group 3/,
    );
    corrupt(
      'v2-few',
      { architectures: ['DeepseekV2ForCausalLM'], n_routed_experts: 8, topk_method: 'group_limited_greedy', n_group: 4, topk_group: 1 },
      /topk_group 1 of 4 groups leaves fewer than num_experts_per_tok 3/,
    );
    corrupt(
      'v3-few',
      { architectures: ['DeepseekV3ForCausalLM'], n_routed_experts: 8, n_group: 4, topk_group: 1 },
      /topk_group 1 of 4 groups leaves fewer than num_experts_per_tok 3/,
    );
  });
});

describe('GGUF headers', () => {
  const kv: GgufKv[] = [
    ['general.architecture', 'string', 'qwen3moe'],
    ['tokenizer.ggml.tokens', 'strings', ['a', 'bc']],
  ];
  const t = (name: string, extra: object = {}) => ({
    name,
    dims: [32, 2],
    type: 'F32' as const,
    bytes: encode(new Float64Array(64).fill(0.25), 'F32').bytes,
    ...extra,
  });
  const gg = (name: string, bytes: Buffer) => file(name, bytes);

  test('a valid file parses: metadata of every kind, alignment, dims reversed', () => {
    const f = gg(
      'ok.gguf',
      ggufBytes(
        [
          ...kv,
          ['general.alignment', 'u32', 64],
          ['x.count', 'u64', 7],
          ['x.flag', 'bool', true],
          ['x.ids', 'u32s', [1, 2, 3]],
          ['x.f', 'f32', 0.5],
          ['x.i', 'i32', -3],
        ],
        [t('a'), t('b')],
        64,
      ),
    );
    const g = readGgufFile(f);
    expect(g.alignment).toBe(64);
    expect(g.dataStart % 64).toBe(0);
    expect(g.metadata.get('tokenizer.ggml.tokens')).toEqual(['a', 'bc']);
    expect(g.metadata.get('x.count')).toBe(7n);
    expect(g.metadata.get('x.ids')).toEqual([1, 2, 3]);
    expect(g.metadata.get('x.i')).toBe(-3);
    expect(g.tensors[1]).toMatchObject({ name: 'b', shape: [2, 32], dtype: 'F32', byteLength: 256, offset: g.dataStart + 256 });
  });

  test('magic, version, truncation, counts and lengths past the end', () => {
    const good = ggufBytes(kv, [t('a')]);
    expectError(
      () => readGgufFile(gg('magic.gguf', Buffer.concat([Buffer.from('GGUX'), good.subarray(4)]))),
      'ERR_CORRUPT_FILE',
      /magic\.gguf/,
      /not a GGUF file/,
    );
    const v2 = Buffer.from(good);
    v2.writeUInt32LE(2, 4);
    expectError(() => readGgufFile(gg('v2.gguf', v2)), 'ERR_CORRUPT_FILE', /version 2 is not supported/);
    expectError(() => readGgufFile(gg('cut.gguf', good.subarray(0, 60))), 'ERR_CORRUPT_FILE', /cut\.gguf/, /file ends inside|runs past the end/);
    expectError(() => readGgufFile(gg('cutdata.gguf', good.subarray(0, good.length - 4))), 'ERR_CORRUPT_FILE', /tensor a: 256 bytes .* run past the end/);
    const many = Buffer.from(good);
    many.writeBigUInt64LE(2n ** 40n, 16);
    expectError(() => readGgufFile(gg('many.gguf', many)), 'ERR_CORRUPT_FILE', /cannot fit/);
    // The tokens array: key length 8 + key + type 4 + elem type 4 + count 8.
    const arr = Buffer.from(good);
    const countAt = good.indexOf('tokenizer.ggml.tokens') + 'tokenizer.ggml.tokens'.length + 8;
    arr.writeBigUInt64LE(2n ** 50n, countAt);
    expectError(() => readGgufFile(gg('arr.gguf', arr)), 'ERR_CORRUPT_FILE', /tokenizer\.ggml\.tokens: array of \d+ elements runs past the end/);
    const str = Buffer.from(good);
    str.writeBigUInt64LE(2n ** 45n, 24);
    expectError(() => readGgufFile(gg('str.gguf', str)), 'ERR_CORRUPT_FILE', /string length/);
  });

  test('tensor infos: misaligned, overlapping, unknown type, bad dims, bad alignment, duplicate keys', () => {
    expectError(
      () => readGgufFile(gg('mis.gguf', ggufBytes(kv, [t('a', { offset: 4 })]))),
      'ERR_CORRUPT_FILE',
      /tensor a: offset 4 is not a multiple of the alignment 32/,
    );
    expectError(() => readGgufFile(gg('ovl.gguf', ggufBytes(kv, [t('a'), t('b', { offset: 128 })]))), 'ERR_CORRUPT_FILE', /tensor b overlaps tensor a/);
    expectError(() => readGgufFile(gg('type.gguf', ggufBytes(kv, [t('a', { typeId: 77 })]))), 'ERR_CORRUPT_FILE', /tensor a: unknown ggml type 77/);
    expectError(() => readGgufFile(gg('dims.gguf', ggufBytes(kv, [t('a', { dims: [2, 2, 2, 2, 2, 2] })]))), 'ERR_CORRUPT_FILE', /tensor a: 6 dimensions/);
    expectError(
      () => readGgufFile(gg('q8.gguf', ggufBytes(kv, [t('a', { dims: [20, 2], typeId: 8 })]))),
      'ERR_CORRUPT_FILE',
      /not a whole number of Q8_0 blocks/,
    );
    expectError(
      () => readGgufFile(gg('align.gguf', ggufBytes([...kv, ['general.alignment', 'u32', 24]], [t('a')]))),
      'ERR_CORRUPT_FILE',
      /general\.alignment must be a power of two/,
    );
    expectError(
      () => readGgufFile(gg('dup.gguf', ggufBytes([...kv, ['general.architecture', 'string', 'x']], [t('a')]))),
      'ERR_CORRUPT_FILE',
      /key general\.architecture appears twice/,
    );
    expectError(() => readGgufFile(gg('duptensor.gguf', ggufBytes(kv, [t('a'), t('a')]))), 'ERR_CORRUPT_FILE', /tensor a appears twice/);
  });

  test('GGUF families: unknown architecture, metadata vs tensor shape, missing tensor', () => {
    const s: RefSpec = { family: 'qwen3_moe', H: 32, F: 32, E: 4, k: 2, normTopkProb: true };
    const f = path.join(tmp, 'arch.gguf');
    buildGguf(f, s, 'qwen3moe', 1, [0], [['qwen3moe.expert_feed_forward_length', 'u32', 64]], 'F32', rng(1));
    expectError(
      () => openCheckpoint(f),
      'ERR_CORRUPT_FILE',
      /qwen3moe\.expert_feed_forward_length 64 does not match blk\.0\.ffn_gate_exps\.weight \[4, 32, 32\]/,
    );
    // phimoe is known; its sparsemixer picks 2, so another k is refused naming the key.
    buildGguf(f, { ...s, family: 'phimoe', k: 3 }, 'phimoe', 1, [0], [], 'F32', rng(1));
    expectError(() => openCheckpoint(f), 'ERR_CORRUPT_FILE', /sparsemixer selects 2 experts, phimoe\.expert_used_count is 3/);
    // gpt-oss is known; a file without its biases is refused naming the missing tensor.
    buildGguf(f, s, 'gpt-oss', 1, [0], [], 'F32', rng(1));
    expectError(() => checkLayer(openCheckpoint(f), 0), 'ERR_CORRUPT_FILE', /blk\.0\.ffn_gate_inp\.bias \(layer 0\) is missing/);
    buildGguf(f, s, 'mamba', 1, [0], [], 'F32', rng(1));
    expectError(() => openCheckpoint(f), 'ERR_INVALID_OPTION', /unknown or non-MoE GGUF architecture mamba \(known: llama, olmoe/);
    buildGguf(f, s, 'qwen3moe', 2, [0, 1], [], 'F32', rng(1));
    const g = readGgufFile(f);
    // Drop blk.1.ffn_up_exps from the tensor infos by renaming it.
    const buf = fs.readFileSync(f);
    const at = buf.indexOf('blk.1.ffn_up_exps.weight');
    buf.write('blk.1.ffn_up_exps.wei9ht', at);
    fs.writeFileSync(f, buf);
    expect(g.tensors.length).toBeGreaterThan(0);
    return expect(createMoeLayer({ checkpoint: f, layer: 1 })).rejects.toMatchObject({
      code: 'ERR_CORRUPT_FILE',
      message: expect.stringMatching(/tensor blk\.1\.ffn_up_exps\.weight \(layer 1\) is missing/),
    });
  });
});
