// Tiny checkpoints of each family, with random weights, in the exact on-disk layouts; returns the
// decoded fp32 values (by Hugging Face tensor name) the reference computes with.
import * as fs from 'fs';
import { encode, ggufBytes, randomArray, writeSafetensorsCheckpoint, type DiskDType, type GgufKv, type GgufTensor, type StTensor } from './writers';
import { blockPrefix, type RefSpec, type Weights } from './family_reference';

export interface Logical {
  name: string;
  shape: number[];
  values: Float64Array;
}

/** The HF tensors of one MoE layer of `s` (random, not zeros). */
export function logicalTensors(s: RefSpec, layer: number, r: () => number): Logical[] {
  const { H, F, E } = s;
  const out: Logical[] = [];
  const add = (name: string, shape: number[], scale: number) =>
    out.push({
      name,
      shape,
      values: randomArray(
        r,
        shape.reduce((a, b) => a * b, 1),
        scale,
      ),
    });
  const ws = 1 / Math.sqrt(H),
    router = 3 / Math.sqrt(H);
  if (s.family === 'gpt_oss' || s.family === 'llama4') {
    // The modelling code's transposed, fused layout: gate_up_proj [E, H, 2F], down_proj [E, F, H].
    const p = blockPrefix(s, layer);
    add(`${p}router.weight`, [E, H], router);
    add(`${p}experts.gate_up_proj`, [E, H, 2 * F], ws);
    add(`${p}experts.down_proj`, [E, F, H], 1 / Math.sqrt(F));
    if (s.family === 'gpt_oss') {
      add(`${p}router.bias`, [E], 0.5);
      add(`${p}experts.gate_up_proj_bias`, [E, 2 * F], 0.3);
      add(`${p}experts.down_proj_bias`, [E, H], 0.3);
    } else {
      add(`${p}shared_expert.gate_proj.weight`, [F, H], ws);
      add(`${p}shared_expert.up_proj.weight`, [F, H], ws);
      add(`${p}shared_expert.down_proj.weight`, [H, F], 1 / Math.sqrt(F));
    }
    return out;
  }
  if (s.family === 'granitemoe') {
    const p = `model.layers.${layer}.block_sparse_moe.`;
    add(`${p}router.layer.weight`, [E, H], router);
    add(`${p}input_linear.weight`, [E, 2 * F, H], ws);
    add(`${p}output_linear.weight`, [E, H, F], 1 / Math.sqrt(F));
    return out;
  }
  const mixtral = s.family === 'mixtral' || s.family === 'phimoe';
  const p = mixtral ? `model.layers.${layer}.block_sparse_moe.` : `model.layers.${layer}.mlp.`;
  add(`${p}gate.weight`, [E, H], router);
  if (s.family === 'deepseek_v3') {
    out.push({ name: `${p}gate.e_score_correction_bias`, shape: [E], values: randomArray(r, E, 0.05).map((v) => v + 0.05 + (s.biasShift ?? 0)) });
  }
  const [g, u, d] = mixtral ? ['w1', 'w3', 'w2'] : ['gate_proj', 'up_proj', 'down_proj'];
  for (let e = 0; e < E; e++) {
    add(`${p}experts.${e}.${g}.weight`, [F, H], ws);
    add(`${p}experts.${e}.${u}.weight`, [F, H], ws);
    add(`${p}experts.${e}.${d}.weight`, [H, F], 1 / Math.sqrt(F));
  }
  if (s.sharedF) {
    const sp = s.family === 'qwen2_moe' ? `${p}shared_expert.` : `${p}shared_experts.`;
    add(`${sp}gate_proj.weight`, [s.sharedF, H], ws);
    add(`${sp}up_proj.weight`, [s.sharedF, H], ws);
    add(`${sp}down_proj.weight`, [H, s.sharedF], 1 / Math.sqrt(s.sharedF));
    if (s.family === 'qwen2_moe') add(`${p}shared_expert_gate.weight`, [1, H], ws);
  }
  return out;
}

/** Writes a safetensors checkpoint (single file or shards); `dtypeOf` picks each tensor's dtype. */
export function buildSafetensors(
  dir: string,
  s: RefSpec,
  config: object,
  layers: number[],
  dtypeOf: (name: string) => DiskDType,
  r: () => number,
  shards = 1,
): Weights {
  const W: Weights = new Map();
  const tensors: StTensor[] = [];
  for (const l of layers)
    for (const t of logicalTensors(s, l, r)) {
      const dt = dtypeOf(t.name);
      const { bytes, decoded } = encode(t.values, dt);
      tensors.push({ name: t.name, dtype: dt, shape: t.shape, bytes });
      W.set(t.name, decoded);
    }
  writeSafetensorsCheckpoint(dir, config, tensors, shards);
  return W;
}

function concat(arrays: Float64Array[]): Float64Array {
  const out = new Float64Array(arrays.reduce((a, b) => a + b.length, 0));
  let at = 0;
  for (const a of arrays) {
    out.set(a, at);
    at += a.length;
  }
  return out;
}

/**
 * Writes a GGUF v3 file of llama.cpp's layout: experts stacked into blk.N.ffn_{gate,up,down}_exps with
 * ggml dims {H, F, E} / {F, H, E} (fastest first), router ffn_gate_inp {H, E}, and so on.
 * `fusedGateUp`: gate and up stacked as blk.N.ffn_gate_up_exps {H, 2F, E} instead.
 */
export function buildGguf(
  file: string,
  s: RefSpec,
  arch: string,
  blockCount: number,
  layers: number[],
  kv: GgufKv[],
  expertDType: DiskDType | ((kind: 'gate' | 'up' | 'down') => DiskDType),
  r: () => number,
  alignment = 32,
  fusedGateUp = false,
): Weights {
  const dtOf = typeof expertDType === 'function' ? expertDType : () => expertDType;
  const { H, F, E } = s;
  const W: Weights = new Map();
  const tensors: GgufTensor[] = [];
  const put = (name: string, dims: number[], values: Float64Array, dt: DiskDType, split: (decoded: Float32Array) => void) => {
    const { bytes, decoded } = encode(values, dt);
    tensors.push({ name, dims, type: dt, bytes });
    split(decoded);
  };
  for (const l of layers) {
    if (s.family === 'llama4') {
      putLlama4Layer(s, l, r, put, W, dtOf);
      continue;
    }
    const byName = new Map(logicalTensors(s, l, r).map((t) => [t.name, t]));
    const mixtral = s.family === 'mixtral' || s.family === 'phimoe';
    const p = mixtral ? `model.layers.${l}.block_sparse_moe.` : `model.layers.${l}.mlp.`;
    const [g, u, d] = mixtral ? ['w1', 'w3', 'w2'] : ['gate_proj', 'up_proj', 'down_proj'];
    const one = (hf: string, gg: string, dims: number[], dt: DiskDType) => put(gg, dims, byName.get(hf)!.values, dt, (dec) => W.set(hf, dec));
    one(`${p}gate.weight`, `blk.${l}.ffn_gate_inp.weight`, [H, E], 'F32');
    if (fusedGateUp) {
      // blk.N.ffn_gate_up_exps {H, 2F, E}: per expert its F gate rows, then its F up rows.
      const names = Array.from({ length: E }, (_, e) => [`${p}experts.${e}.${g}.weight`, `${p}experts.${e}.${u}.weight`]);
      put(`blk.${l}.ffn_gate_up_exps.weight`, [H, 2 * F, E], concat(names.flat().map((n) => byName.get(n)!.values)), dtOf('gate'), (dec) => {
        names.flat().forEach((n, i) => W.set(n, dec.slice(i * F * H, (i + 1) * F * H)));
      });
    }
    for (const [hfName, gg, dims, kind] of [
      [g, 'ffn_gate_exps', [H, F, E], 'gate'],
      [u, 'ffn_up_exps', [H, F, E], 'up'],
      [d, 'ffn_down_exps', [F, H, E], 'down'],
    ] as const) {
      if (fusedGateUp && kind !== 'down') continue;
      const names = Array.from({ length: E }, (_, e) => `${p}experts.${e}.${hfName}.weight`);
      put(`blk.${l}.${gg}.weight`, [...dims], concat(names.map((n) => byName.get(n)!.values)), dtOf(kind), (dec) => {
        const per = dec.length / E;
        names.forEach((n, e) => W.set(n, dec.slice(e * per, (e + 1) * per)));
      });
    }
    if (s.family === 'deepseek_v3') one(`${p}gate.e_score_correction_bias`, `blk.${l}.exp_probs_b.bias`, [E], 'F32');
    if (s.sharedF) {
      const sp = s.family === 'qwen2_moe' ? `${p}shared_expert.` : `${p}shared_experts.`;
      one(`${sp}gate_proj.weight`, `blk.${l}.ffn_gate_shexp.weight`, [H, s.sharedF], 'F16');
      one(`${sp}up_proj.weight`, `blk.${l}.ffn_up_shexp.weight`, [H, s.sharedF], 'F16');
      one(`${sp}down_proj.weight`, `blk.${l}.ffn_down_shexp.weight`, [s.sharedF, H], 'F16');
      if (s.family === 'qwen2_moe') one(`${p}shared_expert_gate.weight`, `blk.${l}.ffn_gate_inp_shexp.weight`, [H], 'F32');
    }
  }
  const meta: GgufKv[] = [
    ['general.architecture', 'string', arch],
    ['general.alignment', 'u32', alignment],
    [`${arch}.block_count`, 'u32', blockCount],
    [`${arch}.embedding_length`, 'u32', H],
    [`${arch}.expert_count`, 'u32', E],
    [`${arch}.expert_used_count`, 'u32', s.k],
    ['tokenizer.ggml.tokens', 'strings', ['<s>', '</s>', 'a', 'b']],
    ...kv,
  ];
  fs.writeFileSync(file, ggufBytes(meta, tensors, alignment));
  return W;
}

/**
 * One Llama 4 MoE layer as llama.cpp's converter stores it: the HF transposed experts (gate_up_proj
 * [E, H, 2F], down_proj [E, F, H]) become ffn_{gate,up}_exps {H, F, E} (row-major [E, F, H]) and
 * ffn_down_exps {F, H, E} ([E, H, F]); the shared expert ffn_{gate,up}_shexp {H, F}, ffn_down_shexp
 * {F, H}. The decoded values go back into W under the HF names and layouts the reference reads.
 */
function putLlama4Layer(
  s: RefSpec,
  l: number,
  r: () => number,
  put: (name: string, dims: number[], values: Float64Array, dt: DiskDType, split: (decoded: Float32Array) => void) => void,
  W: Weights,
  dtOf: (kind: 'gate' | 'up' | 'down') => DiskDType,
): void {
  const { H, F, E } = s;
  const byName = new Map(logicalTensors(s, l, r).map((t) => [t.name, t.values]));
  const p = blockPrefix(s, l);
  const gu = byName.get(`${p}experts.gate_up_proj`)!,
    dn = byName.get(`${p}experts.down_proj`)!;
  // [E, F, H] of one half of gate_up_proj (half 0: gate, the first F columns; 1: up).
  const half = (which: number) => {
    const v = new Float64Array(E * F * H);
    for (let e = 0; e < E; e++) for (let f = 0; f < F; f++) for (let h = 0; h < H; h++) v[(e * F + f) * H + h] = gu[(e * H + h) * 2 * F + which * F + f];
    return v;
  };
  const guDecoded = new Float32Array(E * H * 2 * F);
  const unhalf = (which: number) => (dec: Float32Array) => {
    for (let e = 0; e < E; e++)
      for (let f = 0; f < F; f++) for (let h = 0; h < H; h++) guDecoded[(e * H + h) * 2 * F + which * F + f] = dec[(e * F + f) * H + h];
  };
  const same = (name: string) => (dec: Float32Array) => W.set(name, dec);
  put(`blk.${l}.ffn_gate_inp.weight`, [H, E], byName.get(`${p}router.weight`)!, 'F32', same(`${p}router.weight`));
  put(`blk.${l}.ffn_gate_exps.weight`, [H, F, E], half(0), dtOf('gate'), unhalf(0));
  put(`blk.${l}.ffn_up_exps.weight`, [H, F, E], half(1), dtOf('up'), unhalf(1));
  W.set(`${p}experts.gate_up_proj`, guDecoded);
  const down = new Float64Array(E * H * F);
  for (let e = 0; e < E; e++) for (let f = 0; f < F; f++) for (let h = 0; h < H; h++) down[(e * H + h) * F + f] = dn[(e * F + f) * H + h];
  put(`blk.${l}.ffn_down_exps.weight`, [F, H, E], down, dtOf('down'), (dec) => {
    const back = new Float32Array(E * F * H);
    for (let e = 0; e < E; e++) for (let f = 0; f < F; f++) for (let h = 0; h < H; h++) back[(e * F + f) * H + h] = dec[(e * H + h) * F + f];
    W.set(`${p}experts.down_proj`, back);
  });
  for (const [hf, gg, dims] of [
    ['gate_proj', 'ffn_gate_shexp', [H, F]],
    ['up_proj', 'ffn_up_shexp', [H, F]],
    ['down_proj', 'ffn_down_shexp', [F, H]],
  ] as const)
    put(`blk.${l}.${gg}.weight`, [...dims], byName.get(`${p}shared_expert.${hf}.weight`)!, 'F16', same(`${p}shared_expert.${hf}.weight`));
}

/** DeepSeek-V3's routing as a deepseek2 GGUF states it (sigmoid gating, 4 groups keeping 2, one shared
 * expert, weights renormalised and scaled by 2.5, one leading dense block), with 8 experts of width F. */
export function deepseekV3Gguf(H: number, F: number): { spec: RefSpec; kv: GgufKv[] } {
  return {
    spec: { family: 'deepseek_v3', H, F, E: 8, k: 3, normTopkProb: true, routedScalingFactor: 2.5, nGroup: 4, topkGroup: 2, sharedF: F },
    kv: [
      ['deepseek2.expert_feed_forward_length', 'u32', F],
      ['deepseek2.expert_shared_count', 'u32', 1],
      ['deepseek2.leading_dense_block_count', 'u32', 1],
      ['deepseek2.expert_gating_func', 'u32', 2],
      ['deepseek2.expert_weights_norm', 'bool', true],
      ['deepseek2.expert_weights_scale', 'f32', 2.5],
      ['deepseek2.expert_group_count', 'u32', 4],
      ['deepseek2.expert_group_used_count', 'u32', 2],
    ],
  };
}
