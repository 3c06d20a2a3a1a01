// Each supported family, written as a tiny checkpoint in its exact on-disk layout (safetensors
// single or sharded, GGUF v3), run by the engine and compared with an independent fp64 reference
// of that family; `moecap inspect` on the same files.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createMoeLayer } from '../../lib';
import { inspectCommand } from '../../lib/cli/commands/inspect';
import { buildGguf, buildSafetensors, deepseekV3Gguf } from './build';
import { referenceForward, type RefOut, type RefSpec, type Weights } from './family_reference';
import { randomArray, rng, type DiskDType, type GgufKv } from './writers';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-ckpt-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function checkAgainstReference(checkpoint: string, layer: number, spec: RefSpec, W: Weights, seed: number, T = 7): Promise<RefOut> {
  const x = Float32Array.from(randomArray(rng(seed), T * spec.H, 1));
  const ref = referenceForward(spec, W, layer, x);
  // f32 storage: the family's semantics at fp32 accuracy (the default, 'native', is tested on its own).
  const moe = await createMoeLayer({ checkpoint, layer, threads: 2, poison: true, dtype: 'f32' });
  try {
    const res = await moe.forward(x);
    for (let t = 0; t < T; t++) {
      const got = Array.from(res.expertIds.subarray(t * spec.k, (t + 1) * spec.k)).sort((a, b) => a - b);
      expect(got).toEqual(ref.ids[t]);
    }
    let maxRef = 0,
      maxErr = 0;
    for (let i = 0; i < ref.out.length; i++) {
      maxRef = Math.max(maxRef, Math.abs(ref.out[i]));
      maxErr = Math.max(maxErr, Math.abs(res.output[i] - ref.out[i]));
    }
    expect(maxRef).toBeGreaterThan(1e-3);
    expect(maxErr / maxRef).toBeLessThan(2e-5);
    // The engine's own fp64 reference (moe_layer_reference.cc) agrees with this independent one, up
    // to its options held in fp32 (gpt-oss's swiglu_limit 0.3 is 0.30000001 there: ~1e-8).
    const own = await moe.reference(x);
    let refErr = 0;
    for (let i = 0; i < ref.out.length; i++) refErr = Math.max(refErr, Math.abs(own.output[i] - ref.out[i]));
    expect(refErr / maxRef).toBeLessThan(1e-7);
  } finally {
    moe.close();
  }
  return ref;
}

async function inspectJson(p: string): Promise<Record<string, any>> {
  let text = '';
  const rc = await inspectCommand.run({ options: { json: true }, positional: [p], given: new Set(['json']) }, { out: (s) => (text += s), err: () => {} });
  expect(rc).toBe(0);
  return JSON.parse(text);
}

const hfBase = (arch: string, s: RefSpec, L: number) => ({
  architectures: [arch],
  hidden_size: s.H,
  num_hidden_layers: L,
  num_experts_per_tok: s.k,
  hidden_act: 'silu',
});

describe('safetensors checkpoints against each family reference', () => {
  test('Mixtral, one F32 file', async () => {
    const s: RefSpec = { family: 'mixtral', H: 24, F: 20, E: 6, k: 2 };
    const dir = path.join(tmp, 'mixtral');
    const W = buildSafetensors(dir, s, { ...hfBase('MixtralForCausalLM', s, 2), intermediate_size: 20, num_local_experts: 6 }, [0, 1], () => 'F32', rng(1));
    await checkAgainstReference(dir, 1, s, W, 11);
    const d = await inspectJson(dir);
    expect(d).toMatchObject({
      architecture: 'MixtralForCausalLM',
      experts: 6,
      topK: 2,
      intermediate: 20,
      hidden: 24,
      moeLayers: [0, 1],
      denseLayers: [],
      bytesPerExpert: 3 * 20 * 24 * 4,
    });
  });

  test('OLMoE, BF16, no renormalisation', async () => {
    const s: RefSpec = { family: 'olmoe', H: 24, F: 12, E: 7, k: 3, normTopkProb: false };
    const dir = path.join(tmp, 'olmoe');
    const W = buildSafetensors(
      dir,
      s,
      { ...hfBase('OlmoeForCausalLM', s, 1), intermediate_size: 12, num_experts: 7, norm_topk_prob: false },
      [0],
      () => 'BF16',
      rng(2),
    );
    await checkAgainstReference(dir, 0, s, W, 12);
    const d = await inspectJson(path.join(dir, 'model.safetensors'));
    expect(d.tensors[0]).toMatchObject({ name: 'model.layers.0.mlp.gate.weight', dtype: 'BF16', shape: [7, 24] });
    expect(d.bytesPerExpert).toBe(3 * 12 * 24 * 2);
  });

  test('Qwen3-MoE, F16, norm_topk_prob, mlp_only_layers dense and refused', async () => {
    const s: RefSpec = { family: 'qwen3_moe', H: 20, F: 12, E: 8, k: 2, normTopkProb: true };
    const dir = path.join(tmp, 'qwen3');
    const cfg = {
      ...hfBase('Qwen3MoeForCausalLM', s, 3),
      moe_intermediate_size: 12,
      num_experts: 8,
      norm_topk_prob: true,
      mlp_only_layers: [0],
      decoder_sparse_step: 1,
    };
    const W = buildSafetensors(dir, s, cfg, [1, 2], () => 'F16', rng(3));
    await checkAgainstReference(dir, 2, s, W, 13);
    await expect(createMoeLayer({ checkpoint: dir, layer: 0 })).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTION',
      message: expect.stringMatching(/layer 0 .* dense/),
    });
    expect((await inspectJson(dir)).denseLayers).toEqual([0]);
  });

  test('Qwen2-MoE, three shards with an index, sigmoid-gated shared expert', async () => {
    const s: RefSpec = { family: 'qwen2_moe', H: 24, F: 10, E: 6, k: 2, normTopkProb: false, sharedF: 16 };
    const dir = path.join(tmp, 'qwen2');
    const cfg = {
      ...hfBase('Qwen2MoeForCausalLM', s, 1),
      moe_intermediate_size: 10,
      num_experts: 6,
      shared_expert_intermediate_size: 16,
      norm_topk_prob: false,
    };
    const W = buildSafetensors(dir, s, cfg, [0], (n) => (n.includes('shared') ? 'F32' : 'BF16'), rng(4), 3);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.safetensors'))).toHaveLength(3);
    await checkAgainstReference(dir, 0, s, W, 14);
    expect((await inspectJson(dir)).sharedExperts).toEqual({ intermediate: 16, gated: true });
  });

  test('DeepSeek-V2, greedy, softmax, scaled (no renormalisation), two shared experts, first layer dense', async () => {
    const s: RefSpec = { family: 'deepseek_v2', H: 24, F: 8, E: 6, k: 2, normTopkProb: false, routedScalingFactor: 1.5, sharedF: 16 };
    const dir = path.join(tmp, 'dsv2');
    const cfg = {
      ...hfBase('DeepseekV2ForCausalLM', s, 2),
      moe_intermediate_size: 8,
      n_routed_experts: 6,
      n_shared_experts: 2,
      first_k_dense_replace: 1,
      moe_layer_freq: 1,
      norm_topk_prob: false,
      routed_scaling_factor: 1.5,
      scoring_func: 'softmax',
      topk_method: 'greedy',
      n_group: 1,
      topk_group: 1,
    };
    const W = buildSafetensors(dir, s, cfg, [1], () => 'BF16', rng(5), 2);
    await checkAgainstReference(dir, 1, s, W, 15);
  });

  test('DeepSeek-V3, sigmoid, bias for selection, top-2-sum groups, renormalised × 2.5, shared, dense layer 0', async () => {
    const s: RefSpec = { family: 'deepseek_v3', H: 24, F: 8, E: 8, k: 3, normTopkProb: true, routedScalingFactor: 2.5, nGroup: 4, topkGroup: 2, sharedF: 8 };
    const dir = path.join(tmp, 'dsv3');
    const cfg = {
      ...hfBase('DeepseekV3ForCausalLM', s, 3),
      moe_intermediate_size: 8,
      n_routed_experts: 8,
      n_shared_experts: 1,
      first_k_dense_replace: 1,
      norm_topk_prob: true,
      routed_scaling_factor: 2.5,
      scoring_func: 'sigmoid',
      topk_method: 'noaux_tc',
      n_group: 4,
      topk_group: 2,
    };
    const W = buildSafetensors(dir, s, cfg, [1, 2], (n) => (n.endsWith('bias') ? 'F32' : 'BF16'), rng(6), 2);
    await checkAgainstReference(dir, 2, s, W, 16);
    const d = await inspectJson(dir);
    expect(d).toMatchObject({
      moeLayers: [1, 2],
      denseLayers: [0],
      routing: { scoring: 'sigmoid', groups: { count: 4, keep: 2 }, selectionBias: true, routedScalingFactor: 2.5 },
    });
  });

  test('DeepSeek-V2 group_limited_greedy: groups scored by their best expert, dropped ones masked with 0.0', async () => {
    const s: RefSpec = {
      family: 'deepseek_v2',
      H: 24,
      F: 8,
      E: 12,
      k: 3,
      normTopkProb: true,
      nGroup: 4,
      topkGroup: 2,
      topkMethod: 'group_limited_greedy',
      sharedF: 8,
    };
    const dir = path.join(tmp, 'dsv2-glg');
    const cfg = {
      ...hfBase('DeepseekV2ForCausalLM', s, 1),
      moe_intermediate_size: 8,
      n_routed_experts: 12,
      n_shared_experts: 1,
      norm_topk_prob: true,
      routed_scaling_factor: 1,
      scoring_func: 'softmax',
      topk_method: 'group_limited_greedy',
      n_group: 4,
      topk_group: 2,
    };
    const W = buildSafetensors(dir, s, cfg, [0], () => 'F32', rng(8));
    await checkAgainstReference(dir, 0, s, W, 18, 19);
    expect((await inspectJson(dir)).routing).toMatchObject({ scoring: 'softmax', groups: { count: 4, keep: 2, score: 'max' } });
    // The groups option may be given with or without the score it implies, not with another one.
    (await createMoeLayer({ checkpoint: dir, layer: 0, groups: { count: 4, keep: 2, score: 'max' } })).close();
    await expect(createMoeLayer({ checkpoint: dir, layer: 0, groups: { count: 4, keep: 2 } })).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTION',
      message: expect.stringMatching(/option groups .* contradicts/),
    });
  });

  test('DeepSeek-V3 with negative e_score_correction_bias: dropped groups at 0.0 outrank negative kept scores', async () => {
    const s: RefSpec = {
      family: 'deepseek_v3',
      H: 24,
      F: 8,
      E: 8,
      k: 3,
      normTopkProb: true,
      routedScalingFactor: 2.5,
      nGroup: 4,
      topkGroup: 2,
      biasShift: -0.6,
    };
    const dir = path.join(tmp, 'dsv3-negbias');
    const cfg = {
      ...hfBase('DeepseekV3ForCausalLM', s, 1),
      moe_intermediate_size: 8,
      n_routed_experts: 8,
      norm_topk_prob: true,
      routed_scaling_factor: 2.5,
      scoring_func: 'sigmoid',
      topk_method: 'noaux_tc',
      n_group: 4,
      topk_group: 2,
    };
    const W = buildSafetensors(dir, s, cfg, [0], (n) => (n.endsWith('bias') ? 'F32' : 'BF16'), rng(9));
    expect(Math.max(...W.get('model.layers.0.mlp.gate.e_score_correction_bias')!)).toBeLessThan(0);
    const ref = await checkAgainstReference(dir, 0, s, W, 19, 23);
    expect(ref.maskedPicks).toBeGreaterThan(0); // the case the old -inf masking got wrong occurs
    (await createMoeLayer({ checkpoint: dir, layer: 0, groups: { count: 4, keep: 2 } })).close();
    (await createMoeLayer({ checkpoint: dir, layer: 0, groups: { count: 4, keep: 2, score: 'top2-sum' } })).close();
  });

  test('Granite MoE, BF16, fused input_linear (gate rows first)', async () => {
    const s: RefSpec = { family: 'granitemoe', H: 16, F: 12, E: 5, k: 2 };
    const dir = path.join(tmp, 'granite');
    const W = buildSafetensors(dir, s, { ...hfBase('GraniteMoeForCausalLM', s, 1), intermediate_size: 12, num_local_experts: 5 }, [0], () => 'BF16', rng(7));
    await checkAgainstReference(dir, 0, s, W, 17);
  });

  test('gpt-oss, BF16: router bias, softmax over the top-k logits, interleaved transposed gate_up, biases, clamped SwiGLU', async () => {
    // swiglu_limit 0.3 (the release has 7.0) so the clamps act on these small random values.
    const s: RefSpec = { family: 'gpt_oss', H: 40, F: 24, E: 6, k: 3, swigluLimit: 0.3 };
    const dir = path.join(tmp, 'gpt-oss');
    const cfg = { ...hfBase('GptOssForCausalLM', s, 2), intermediate_size: 24, num_local_experts: 6, swiglu_limit: 0.3 };
    const W = buildSafetensors(dir, s, cfg, [0, 1], (n) => (n.endsWith('bias') ? 'F32' : 'BF16'), rng(21));
    const r = await checkAgainstReference(dir, 1, s, W, 31, 9);
    // The clamps engaged: some gate/up pre-activations of the chosen experts lie beyond ±limit.
    expect(r.clamped).toBeGreaterThan(0);
    const d = await inspectJson(dir);
    expect(d).toMatchObject({ architecture: 'GptOssForCausalLM', family: 'gpt_oss', experts: 6, topK: 3, moeLayers: [0, 1] });
    // Every ISA of this CPU agrees with the reference (the epilogues are per ISA).
    const x = Float32Array.from(randomArray(rng(3), 5 * s.H, 1));
    const ref = referenceForward(s, W, 0, x);
    for (const isa of (await import('../../lib')).systemInfo().supportedIsas) {
      const moe = await createMoeLayer({ checkpoint: dir, layer: 0, threads: 2, isa, poison: true, dtype: 'f32' });
      const res = await moe.forward(x);
      const one = await moe.forward(x.subarray(2 * s.H, 3 * s.H));
      moe.close();
      let maxRef = 0,
        maxErr = 0;
      for (let i = 0; i < ref.out.length; i++) {
        maxRef = Math.max(maxRef, Math.abs(ref.out[i]));
        maxErr = Math.max(maxErr, Math.abs(res.output[i] - ref.out[i]));
      }
      expect(maxErr / maxRef).toBeLessThan(2e-5);
      // A token alone equals it in a batch, bitwise.
      expect(Array.from(one.output)).toEqual(Array.from(res.output.subarray(2 * s.H, 3 * s.H)));
    }
    // Offloaded experts keep their biases (held by the layer): the same output, bitwise.
    const resident = await createMoeLayer({ checkpoint: dir, layer: 0, threads: 1 });
    const offloaded = await createMoeLayer({ checkpoint: dir, layer: 0, threads: 1, offload: { capacity: 2, path: path.join(tmp, 'gpt-oss-l0.bin') } });
    expect(Array.from((await offloaded.forward(x)).output)).toEqual(Array.from((await resident.forward(x)).output));
    resident.close();
    offloaded.close();
    await expect(createMoeLayer({ checkpoint: dir, layer: 0, clampedSwiglu: { limit: 7, alpha: 1.702 } })).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTION',
      message: expect.stringMatching(/clampedSwiglu .*limit":7.*limit":0.3/),
    });
    // The checkpoint's own values, fields in another order, are no contradiction.
    const same = await createMoeLayer({ checkpoint: dir, layer: 0, threads: 1, clampedSwiglu: { alpha: 1.702, limit: s.swigluLimit! } });
    const plain = await createMoeLayer({ checkpoint: dir, layer: 0, threads: 1 });
    expect(Array.from((await same.forward(x)).output)).toEqual(Array.from((await plain.forward(x)).output));
    same.close();
    plain.close();
  });

  test('Llama 4 (ConditionalGeneration, text_config), F32: sigmoid of the top-k logits scales the expert input, shared expert, dense layers refused', async () => {
    const s: RefSpec = { family: 'llama4', H: 32, F: 20, E: 5, k: 2, llama4Nested: true };
    const dir = path.join(tmp, 'llama4');
    const text = { ...hfBase('x', s, 4), intermediate_size: 20, intermediate_size_mlp: 48, num_local_experts: 5, interleave_moe_layer_step: 2 };
    delete (text as { architectures?: unknown }).architectures;
    const cfg = { architectures: ['Llama4ForConditionalGeneration'], text_config: text };
    const W = buildSafetensors(dir, s, cfg, [1, 3], (n) => (n.includes('shared') ? 'BF16' : 'F32'), rng(23));
    await checkAgainstReference(dir, 3, s, W, 33, 8);
    const d = await inspectJson(dir);
    expect(d).toMatchObject({ family: 'llama4', moeLayers: [1, 3], denseLayers: [0, 2], topK: 2 });
    await expect(createMoeLayer({ checkpoint: dir, layer: 2 })).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTION',
      message: expect.stringMatching(/dense layer/),
    });
    // int8 and bf16 experts: the same routing; error against the fp64 reference measured.
    const x = Float32Array.from(randomArray(rng(4), 4 * s.H, 1));
    const ref = referenceForward(s, W, 1, x);
    for (const dtype of ['bf16', 'int8'] as const) {
      const moe = await createMoeLayer({ checkpoint: dir, layer: 1, threads: 2, dtype });
      const res = await moe.forward(x);
      moe.close();
      let maxRef = 0,
        maxErr = 0;
      for (let i = 0; i < ref.out.length; i++) {
        maxRef = Math.max(maxRef, Math.abs(ref.out[i]));
        maxErr = Math.max(maxErr, Math.abs(res.output[i] - ref.out[i]));
      }
      expect(maxErr / maxRef).toBeLessThan(dtype === 'bf16' ? 2e-2 : 4e-2);
    }
    // Routed experts in the offload tier: the same output, bitwise (the score still goes into the input).
    const resident = await createMoeLayer({ checkpoint: dir, layer: 1, threads: 1 });
    const offloaded = await createMoeLayer({ checkpoint: dir, layer: 1, threads: 1, offload: { capacity: 2, path: path.join(tmp, 'llama4-l1.bin') } });
    const viaTier = await offloaded.forward(x);
    expect(viaTier.stats.offload!.loads).toBeGreaterThan(0);
    expect(Array.from(viaTier.output)).toEqual(Array.from((await resident.forward(x)).output));
    resident.close();
    offloaded.close();
  });

  test('Phi-3.5-MoE, BF16: sparsemixer top-2 (masked softmax at each pick), Mixtral tensors', async () => {
    // router_jitter_noise 0.3 (the release has 0.01) so that the masks keep some candidates and drop others.
    const s: RefSpec = { family: 'phimoe', H: 32, F: 24, E: 8, k: 2, jitterEps: 0.3 };
    const dir = path.join(tmp, 'phimoe');
    const cfg = { ...hfBase('PhimoeForCausalLM', s, 1), intermediate_size: 24, num_local_experts: 8, router_jitter_noise: 0.3 };
    const W = buildSafetensors(dir, s, cfg, [0], () => 'BF16', rng(41));
    const r = await checkAgainstReference(dir, 0, s, W, 43, 24);
    expect(r.partialMasks).toBeGreaterThan(0);
    const d = await inspectJson(dir);
    expect(d).toMatchObject({ family: 'phimoe', topK: 2, routing: { scoring: 'sparsemixer' } });
    await expect(createMoeLayer({ checkpoint: dir, layer: 0, jitterEps: 0.01 })).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' });
  });

  test('options that agree pass; one that contradicts names both values', async () => {
    const s: RefSpec = { family: 'mixtral', H: 24, F: 20, E: 6, k: 2 };
    const dir = path.join(tmp, 'mixtral-options');
    buildSafetensors(dir, s, { ...hfBase('MixtralForCausalLM', s, 2), intermediate_size: 20, num_local_experts: 6 }, [0, 1], () => 'BF16', rng(10));
    const ok = await createMoeLayer({ checkpoint: dir, layer: 0, topK: 2, hidden: 24, dtype: 'bf16' });
    expect(ok.info()).toMatchObject({ topK: 2, hidden: 24, experts: 6, dtype: 'bf16' });
    ok.close();
    // The same layer with its routed experts in the offload tier gives the same output.
    const x = Float32Array.from(randomArray(rng(5), 5 * 24, 1));
    const resident = await createMoeLayer({ checkpoint: dir, layer: 1, threads: 1 });
    const offloaded = await createMoeLayer({ checkpoint: dir, layer: 1, threads: 1, offload: { capacity: 2, path: path.join(tmp, 'mixtral-l1.bin') } });
    const viaTier = await offloaded.forward(x);
    expect(offloaded.info().offload).toMatchObject({ capacity: 2 });
    expect(viaTier.stats.offload!.loads).toBeGreaterThan(0);
    expect(Array.from(viaTier.output)).toEqual(Array.from((await resident.forward(x)).output));
    resident.close();
    offloaded.close();
    await expect(createMoeLayer({ checkpoint: dir, layer: 0, topK: 3 })).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTION',
      message: expect.stringMatching(/topK 3 .* topK 2/),
    });
    await expect(createMoeLayer({ checkpoint: dir, layer: 0, scoring: 'sigmoid' })).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTION',
      message: expect.stringMatching(/"sigmoid".*"softmax"/),
    });
    await expect(createMoeLayer({ checkpoint: dir, layer: 5 })).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' });
  });
});

describe('GGUF v3 checkpoints against each family reference', () => {
  const H = 64,
    F = 32;
  const cases: Array<{
    name: string;
    arch: string;
    spec: RefSpec;
    dt: DiskDType;
    kv: GgufKv[];
    blocks: number;
    layers: number[];
    layer: number;
    alignment?: number;
  }> = [
    {
      name: 'llama (Mixtral), F16 experts',
      arch: 'llama',
      spec: { family: 'mixtral', H, F, E: 4, k: 2 },
      dt: 'F16',
      kv: [['llama.feed_forward_length', 'u32', F]],
      blocks: 1,
      layers: [0],
      layer: 0,
    },
    {
      name: 'qwen3moe, Q8_0 experts',
      arch: 'qwen3moe',
      spec: { family: 'qwen3_moe', H, F, E: 6, k: 2, normTopkProb: true },
      dt: 'Q8_0',
      kv: [['qwen3moe.expert_feed_forward_length', 'u32', F]],
      blocks: 2,
      layers: [0, 1],
      layer: 1,
      alignment: 64,
    },
    {
      name: 'qwen3moe, Q4_0 experts',
      arch: 'qwen3moe',
      spec: { family: 'qwen3_moe', H, F, E: 5, k: 2, normTopkProb: true },
      dt: 'Q4_0',
      kv: [['qwen3moe.expert_feed_forward_length', 'u32', F]],
      blocks: 1,
      layers: [0],
      layer: 0,
    },
    {
      name: 'olmoe, BF16 experts',
      arch: 'olmoe',
      spec: { family: 'olmoe', H, F, E: 5, k: 2, normTopkProb: false },
      dt: 'BF16',
      kv: [],
      blocks: 1,
      layers: [0],
      layer: 0,
    },
    {
      name: 'qwen2moe, Q8_0 experts, gated shared expert',
      arch: 'qwen2moe',
      spec: { family: 'qwen2_moe', H, F, E: 4, k: 2, normTopkProb: false, sharedF: 32 },
      dt: 'Q8_0',
      kv: [
        ['qwen2moe.expert_feed_forward_length', 'u32', F],
        ['qwen2moe.expert_shared_feed_forward_length', 'u32', 32],
      ],
      blocks: 1,
      layers: [0],
      layer: 0,
    },
    {
      name: 'deepseek2 (V3 rules), Q8_0, exp_probs_b, groups, shared, leading dense block',
      arch: 'deepseek2',
      ...deepseekV3Gguf(H, F),
      dt: 'Q8_0',
      blocks: 2,
      layers: [1],
      layer: 1,
    },
    {
      name: 'deepseek2 (V2 rules), softmax, scaled, two shared experts, leading dense block',
      arch: 'deepseek2',
      spec: { family: 'deepseek_v2', H, F, E: 6, k: 2, normTopkProb: false, routedScalingFactor: 1.5, sharedF: 2 * F },
      dt: 'BF16',
      kv: [
        ['deepseek2.expert_feed_forward_length', 'u32', F],
        ['deepseek2.expert_shared_count', 'u32', 2],
        ['deepseek2.leading_dense_block_count', 'u32', 1],
        ['deepseek2.expert_gating_func', 'u32', 1],
        ['deepseek2.expert_weights_norm', 'bool', false],
        ['deepseek2.expert_weights_scale', 'f32', 1.5],
      ],
      blocks: 2,
      layers: [1],
      layer: 1,
    },
    {
      name: 'deepseek2 (V2 rules), softmax with groups = group_limited_greedy, renormalised',
      arch: 'deepseek2',
      spec: { family: 'deepseek_v2', H, F, E: 8, k: 2, normTopkProb: true, nGroup: 4, topkGroup: 2, topkMethod: 'group_limited_greedy' },
      dt: 'F16',
      kv: [
        ['deepseek2.expert_feed_forward_length', 'u32', F],
        ['deepseek2.expert_gating_func', 'u32', 1],
        ['deepseek2.expert_weights_norm', 'bool', true],
        ['deepseek2.expert_group_count', 'u32', 4],
        ['deepseek2.expert_group_used_count', 'u32', 2],
      ],
      blocks: 1,
      layers: [0],
      layer: 0,
    },
    {
      name: "phimoe, BF16 experts: sparsemixer top-2 with the release's router_jitter_noise 0.01",
      arch: 'phimoe',
      spec: { family: 'phimoe', H, F, E: 8, k: 2, jitterEps: 0.01 },
      dt: 'BF16',
      kv: [['phimoe.expert_feed_forward_length', 'u32', F]],
      blocks: 1,
      layers: [0],
      layer: 0,
    },
    {
      name: 'llama4, Q8_0 experts: sigmoid of the top-k logits scales the expert input, ungated shared expert, dense blocks between',
      arch: 'llama4',
      spec: { family: 'llama4', H, F, E: 5, k: 2 },
      dt: 'Q8_0',
      kv: [
        ['llama4.expert_feed_forward_length', 'u32', F],
        ['llama4.interleave_moe_layer_step', 'u32', 2],
      ],
      blocks: 4,
      layers: [1, 3],
      layer: 3,
    },
  ];
  for (const c of cases)
    test(c.name, async () => {
      const file = path.join(tmp, `${c.arch}.gguf`);
      const W = buildGguf(file, c.spec, c.arch, c.blocks, c.layers, c.kv, c.dt, rng(c.layer + 40), c.alignment);
      await checkAgainstReference(file, c.layer, c.spec, W, 21);
      const d = await inspectJson(file);
      expect(d).toMatchObject({ format: 'gguf', experts: c.spec.E, topK: c.spec.k, intermediate: F, hidden: H, moeLayers: c.layers });
      const perExpert = c.dt === 'Q8_0' ? ((3 * F * H) / 32) * 34 : c.dt === 'Q4_0' ? ((3 * F * H) / 32) * 18 : 3 * F * H * (c.dt === 'F32' ? 4 : 2);
      expect(d.bytesPerExpert).toBe(perExpert);
      expect(d.tensors.find((t: { name: string }) => t.name.endsWith('ffn_down_exps.weight'))).toMatchObject({ shape: [c.spec.E, H, F], dtype: c.dt });
    });
});

test("GGUF fused blk.N.ffn_gate_up_exps {H, 2F, E} (gate = each expert's first F rows, up = the last F), Q8_0: against the reference, bitwise the separate-tensor file", async () => {
  const F = 32,
    H = 64;
  const spec: RefSpec = { family: 'qwen3_moe', H, F, E: 6, k: 2, normTopkProb: true };
  const kv: GgufKv[] = [['qwen3moe.expert_feed_forward_length', 'u32', F]];
  const fused = path.join(tmp, 'fused-gate-up.gguf'),
    separate = path.join(tmp, 'separate-gate-up.gguf');
  const W = buildGguf(fused, spec, 'qwen3moe', 1, [0], kv, 'Q8_0', rng(61), 32, true);
  const W2 = buildGguf(separate, spec, 'qwen3moe', 1, [0], kv, 'Q8_0', rng(61));
  expect(Array.from(W.get('model.layers.0.mlp.experts.4.up_proj.weight')!)).toEqual(Array.from(W2.get('model.layers.0.mlp.experts.4.up_proj.weight')!));
  const d = await inspectJson(fused);
  expect(d.tensors.find((t: { name: string }) => t.name === 'blk.0.ffn_gate_up_exps.weight')).toMatchObject({ shape: [6, 2 * F, H], dtype: 'Q8_0' });
  expect(d).toMatchObject({ intermediate: F, experts: 6 });
  await checkAgainstReference(fused, 0, spec, W, 62);
  // The same values in separate ffn_gate_exps / ffn_up_exps tensors: the same output, bitwise, also offloaded.
  const x = Float32Array.from(randomArray(rng(63), 5 * H, 1));
  const run = async (file: string, offload?: { capacity: number; path: string }) => {
    const moe = await createMoeLayer({ checkpoint: file, layer: 0, dtype: 'int8', threads: 2, offload });
    const out = (await moe.forward(x)).output;
    moe.close();
    return Buffer.from(out.buffer);
  };
  const want = await run(separate);
  expect((await run(fused)).equals(want)).toBe(true);
  expect((await run(fused, { capacity: 2, path: path.join(tmp, 'fused.experts') })).equals(want)).toBe(true);
});

describe('moecap inspect on the command line', () => {
  const BIN = path.join(__dirname, '..', '..', 'bin', 'moecap.js');
  test('text output names the family, layers, shapes and dtypes; a corrupt file exits 1 with its name', () => {
    const { execFileSync, spawnSync } = require('child_process') as typeof import('child_process');
    const s: RefSpec = { family: 'deepseek_v3', H: 16, F: 8, E: 8, k: 2, nGroup: 4, topkGroup: 2, sharedF: 8 };
    const dir = path.join(tmp, 'cli-dsv3');
    const cfg = {
      ...hfBase('DeepseekV3ForCausalLM', s, 3),
      moe_intermediate_size: 8,
      n_routed_experts: 8,
      n_shared_experts: 1,
      first_k_dense_replace: 1,
      n_group: 4,
      topk_group: 2,
    };
    buildSafetensors(dir, s, cfg, [1, 2], () => 'BF16', rng(8));
    const out = execFileSync(process.execPath, [BIN, 'inspect', dir], { encoding: 'utf8' });
    expect(out).toMatch(/architecture\s+DeepseekV3ForCausalLM \(family deepseek_v3\)/);
    expect(out).toMatch(/layers\s+3: MoE 1-2; dense \(skipped\) 0/);
    expect(out).toMatch(/H 16, F 8, E 8, k 2/);
    expect(out).toMatch(/model\.layers\.1\.mlp\.experts\.0\.down_proj\.weight\s+\[16, 8\] BF16/);
    expect(out).not.toMatch(/experts\.1\.down_proj/);
    expect(out).toMatch(/bytes\/expert\s+768 B/);
    fs.writeFileSync(path.join(dir, 'model.safetensors'), Buffer.alloc(4));
    const r = spawnSync(process.execPath, [BIN, 'inspect', dir], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/model\.safetensors: 4 bytes: too short/);
    expect(spawnSync(process.execPath, [BIN, 'inspect'], { encoding: 'utf8' }).status).toBe(2);
  });
});

test('GGUF Q3_K experts (a k-quant not read yet): inspect describes them, loading refuses the dtype by name', async () => {
  const { ggufBytes } = await import('./writers');
  const H = 256,
    F = 256,
    E = 2;
  const q3k = (dims: number[]) => Buffer.alloc((dims.reduce((a, b) => a * b, 1) / 256) * 110, 0x11);
  const f = path.join(tmp, 'q3k.gguf');
  const router = { name: 'blk.0.ffn_gate_inp.weight', dims: [H, E], type: 'F32' as const, bytes: Buffer.alloc(H * E * 4) };
  const exps = (n: string, dims: number[]) => ({ name: `blk.0.${n}.weight`, dims, type: 'F32' as const, typeId: 11, bytes: q3k(dims) });
  fs.writeFileSync(
    f,
    ggufBytes(
      [
        ['general.architecture', 'string', 'qwen3moe'],
        ['qwen3moe.block_count', 'u32', 1],
        ['qwen3moe.embedding_length', 'u32', H],
        ['qwen3moe.expert_count', 'u32', E],
        ['qwen3moe.expert_used_count', 'u32', 1],
      ],
      [router, exps('ffn_gate_exps', [H, F, E]), exps('ffn_up_exps', [H, F, E]), exps('ffn_down_exps', [F, H, E])],
    ),
  );
  const d = await inspectJson(f);
  expect(d.bytesPerExpert).toBe(((3 * F * H) / 256) * 110);
  expect(d.tensors.find((t: { name: string }) => t.name === 'blk.0.ffn_up_exps.weight')).toMatchObject({ dtype: 'Q3_K', shape: [E, F, H] });
  await expect(createMoeLayer({ checkpoint: f, layer: 0, dtype: 'f32' })).rejects.toMatchObject({
    code: 'ERR_INVALID_OPTION',
    message: expect.stringMatching(/not yet supported: .*q3k\.gguf: tensor blk\.0\.ffn_gate_exps\.weight is Q3_K/),
  });
});
