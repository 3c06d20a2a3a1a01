// Model presets: the MoE layer shape and router semantics of public MoE models
// (taken from each model's public config.json), plus a tiny
// preset for tests. One preset describes ONE MoE layer; `moeLayers` says how many the model has.
import { MoecapRangeError, PlanError } from '../errors';
import type { MoeLayerOptions, Scoring } from '../moe_layer';
import type { DType } from '../types';

export interface RouterSemantics {
  scoring: Scoring;
  /** w /= Σw over the selected experts. */
  renormalize: boolean;
  /** Multiplies the routed weights after renormalisation (DeepSeek-V3: 2.5). */
  routedScalingFactor: number;
  /** Grouped top-k ("noaux_tc"): E experts in `count` groups, keep the best `keep`. */
  groups?: { count: number; keep: number };
  /** The model has a learned per-expert selection bias (DeepSeek-V3 e_score_correction_bias). */
  selectionBias: boolean;
}

export interface AttentionShape {
  heads: number;
  kvHeads: number;
  headDim: number;
  /** MLA (DeepSeek): compressed KV per token per layer = kvLoraRank + ropeDim values. */
  mla?: { kvLoraRank: number; ropeDim: number };
  note?: string;
}

export interface ModelPreset {
  name: string;
  /** Decoder layers in the model. */
  layers: number;
  /** Layers with an MoE block (layers minus leading dense ones). */
  moeLayers: number;
  hidden: number;
  experts: number;
  topK: number;
  /** Expert intermediate size F. */
  intermediate: number;
  /** Shared expert(s) folded into one SwiGLU of this intermediate size (n × F_shared). */
  shared?: { intermediate: number; count: number; gated: boolean };
  router: RouterSemantics;
  attention?: AttentionShape;
  /** Dense FFN intermediate size of the leading dense layers, when any. */
  denseIntermediate?: number;
  notes: string;
  /** Hugging Face id of the model (MoE-CAP's model_name), or moecap/<name> for test shapes. */
  modelId: string;
  source: string;
}

const SOFTMAX_RENORM: RouterSemantics = { scoring: 'softmax', renormalize: true, routedScalingFactor: 1, selectionBias: false };
const SOFTMAX_NO_RENORM: RouterSemantics = { scoring: 'softmax', renormalize: false, routedScalingFactor: 1, selectionBias: false };

export const PRESETS: readonly ModelPreset[] = [
  {
    name: 'tiny',
    layers: 2,
    moeLayers: 2,
    hidden: 64,
    experts: 8,
    topK: 2,
    intermediate: 32,
    router: SOFTMAX_RENORM,
    notes: 'test shape, not a real model',
    modelId: 'moecap/tiny',
    source: 'moecap',
  },
  {
    name: 'mixtral-8x7b',
    layers: 32,
    moeLayers: 32,
    hidden: 4096,
    experts: 8,
    topK: 2,
    intermediate: 14336,
    router: SOFTMAX_RENORM,
    attention: { heads: 32, kvHeads: 8, headDim: 128 },
    notes: 'softmax, top-2, renormalised',
    modelId: 'mistralai/Mixtral-8x7B-v0.1',
    source: 'mistralai/Mixtral-8x7B-v0.1 config.json',
  },
  {
    name: 'mixtral-8x22b',
    layers: 56,
    moeLayers: 56,
    hidden: 6144,
    experts: 8,
    topK: 2,
    intermediate: 16384,
    router: SOFTMAX_RENORM,
    attention: { heads: 48, kvHeads: 8, headDim: 128 },
    notes: 'softmax, top-2, renormalised',
    modelId: 'mistralai/Mixtral-8x22B-v0.1',
    source: 'mistralai/Mixtral-8x22B-v0.1 config.json',
  },
  {
    name: 'dbrx',
    layers: 40,
    moeLayers: 40,
    hidden: 6144,
    experts: 16,
    topK: 4,
    intermediate: 10752,
    router: SOFTMAX_RENORM,
    attention: { heads: 48, kvHeads: 8, headDim: 128 },
    notes: 'softmax, top-4, weights L1-normalised (moe_normalize_expert_weights=1)',
    modelId: 'databricks/dbrx-base',
    source: 'databricks/dbrx-base config.json',
  },
  {
    name: 'qwen1.5-moe-a2.7b',
    layers: 24,
    moeLayers: 24,
    hidden: 2048,
    experts: 60,
    topK: 4,
    intermediate: 1408,
    shared: { intermediate: 5632, count: 1, gated: true },
    router: SOFTMAX_NO_RENORM,
    attention: { heads: 16, kvHeads: 16, headDim: 128 },
    notes: 'softmax, top-4, no renormalisation; shared expert 5632 with a sigmoid gate',
    modelId: 'Qwen/Qwen1.5-MoE-A2.7B',
    source: 'Qwen/Qwen1.5-MoE-A2.7B config.json',
  },
  {
    name: 'qwen3-30b-a3b',
    layers: 48,
    moeLayers: 48,
    hidden: 2048,
    experts: 128,
    topK: 8,
    intermediate: 768,
    router: SOFTMAX_RENORM,
    attention: { heads: 32, kvHeads: 4, headDim: 128 },
    notes: 'softmax, top-8, renormalised (norm_topk_prob)',
    modelId: 'Qwen/Qwen3-30B-A3B',
    source: 'Qwen/Qwen3-30B-A3B config.json',
  },
  {
    name: 'qwen3-235b-a22b',
    layers: 94,
    moeLayers: 94,
    hidden: 4096,
    experts: 128,
    topK: 8,
    intermediate: 1536,
    router: SOFTMAX_RENORM,
    attention: { heads: 64, kvHeads: 4, headDim: 128 },
    notes: 'softmax, top-8, renormalised',
    modelId: 'Qwen/Qwen3-235B-A22B',
    source: 'Qwen/Qwen3-235B-A22B config.json',
  },
  {
    name: 'deepseek-v2-lite',
    layers: 27,
    moeLayers: 26,
    hidden: 2048,
    experts: 64,
    topK: 6,
    intermediate: 1408,
    shared: { intermediate: 2 * 1408, count: 2, gated: false },
    router: SOFTMAX_NO_RENORM,
    denseIntermediate: 10944,
    attention: { heads: 16, kvHeads: 16, headDim: 128, mla: { kvLoraRank: 512, ropeDim: 64 }, note: 'MLA' },
    notes: 'softmax, top-6, no renormalisation; 2 shared experts × 1408 run as one SwiGLU of 2816; first layer dense (FFN 10944)',
    modelId: 'deepseek-ai/DeepSeek-V2-Lite',
    source: 'deepseek-ai/DeepSeek-V2-Lite config.json',
  },
  {
    name: 'deepseek-v3',
    layers: 61,
    moeLayers: 58,
    hidden: 7168,
    experts: 256,
    topK: 8,
    intermediate: 2048,
    denseIntermediate: 18432,
    shared: { intermediate: 2048, count: 1, gated: false },
    router: { scoring: 'sigmoid', renormalize: true, routedScalingFactor: 2.5, groups: { count: 8, keep: 4 }, selectionBias: true },
    attention: { heads: 128, kvHeads: 128, headDim: 128, mla: { kvLoraRank: 512, ropeDim: 64 }, note: 'MLA' },
    notes:
      'sigmoid, selection bias, 8 groups keep 4, top-8, renormalised, scale 2.5; first 3 layers dense (FFN 18432). ' +
      'The learned bias is not public in a config: runs use a zero bias unless skew is asked for',
    modelId: 'deepseek-ai/DeepSeek-V3',
    source: 'deepseek-ai/DeepSeek-V3 config.json',
  },
  {
    name: 'olmoe-1b-7b',
    layers: 16,
    moeLayers: 16,
    hidden: 2048,
    experts: 64,
    topK: 8,
    intermediate: 1024,
    router: SOFTMAX_NO_RENORM,
    attention: { heads: 16, kvHeads: 16, headDim: 128 },
    notes: 'softmax, top-8, no renormalisation',
    modelId: 'allenai/OLMoE-1B-7B-0924',
    source: 'allenai/OLMoE-1B-7B-0924 config.json',
  },
  {
    name: 'gpt-oss-120b',
    layers: 36,
    moeLayers: 36,
    hidden: 2880,
    experts: 128,
    topK: 4,
    intermediate: 2880,
    router: SOFTMAX_RENORM,
    attention: { heads: 64, kvHeads: 8, headDim: 64 },
    notes: "softmax over the top-k logits (= softmax then renormalise); the model's clamped SwiGLU and expert biases are not modelled",
    modelId: 'openai/gpt-oss-120b',
    source: 'openai/gpt-oss-120b config.json',
  },
];

/** Shapes registered at run time (a checkpoint run: `moecap run --model PATH`), found by name like the built-in presets. */
const REGISTERED: ModelPreset[] = [];

export function registerPreset(p: ModelPreset): void {
  const i = REGISTERED.findIndex((q) => q.name === p.name);
  if (i >= 0) REGISTERED[i] = p;
  else REGISTERED.push(p);
}

export function findPreset(name: string): ModelPreset {
  const p = PRESETS.find((q) => q.name === name.toLowerCase()) ?? REGISTERED.find((q) => q.name === name);
  if (!p) throw new PlanError(`unknown preset '${name}' (known: ${PRESETS.map((q) => q.name).join(', ')})`);
  return p;
}

/** Bytes of one routed expert: S_e = 3·H·F·b. */
export function expertBytes(p: Pick<ModelPreset, 'hidden' | 'intermediate'>, bytesPerWeight: number): number {
  return 3 * p.hidden * p.intermediate * bytesPerWeight;
}

/**
 * Bytes of weight storage per dtype as the engine packs them, for sizes that are multiples of 32.
 * int8/int4 store each block of 32 inputs × 32 outputs with 32 fp16 scales (64 bytes) after its
 * values: int8 (1024 + 64) / 1024, int4 (512 + 64) / 1024. mxfp4: two blocks of 32 × 32 nibbles
 * then their 2 × 32 E8M0 bytes, (1024 + 64) / 2048 = 4.25 bits; fp8: 128 × 32 E4M3 bytes then 32
 * fp32 scales, (4096 + 128) / 4096 = 8.25 bits (packed_matrix.h).
 */
export function bytesPerWeight(dtype: string): number {
  switch (dtype) {
    case 'f32':
      return 4;
    case 'bf16':
      return 2;
    case 'int8':
      return 1088 / 1024;
    case 'int4':
      return 576 / 1024;
    case 'mxfp4':
      return 1088 / 2048;
    case 'fp8':
      return 4224 / 4096;
    default:
      throw new MoecapRangeError('ERR_INVALID_ARGUMENT', `unknown dtype '${dtype}' (known: f32, bf16, int8, int4, mxfp4, fp8)`);
  }
}

/** The layer options of one MoE layer of a preset (seeded weights): its shape and router semantics. */
export function presetLayerOptions(p: ModelPreset, o: { dtype: DType; seed: number; threads?: number | null; capacityFactor?: number }): MoeLayerOptions {
  return {
    hidden: p.hidden,
    intermediate: p.intermediate,
    experts: p.experts,
    topK: p.topK,
    scoring: p.router.scoring,
    renormalize: p.router.renormalize,
    routedScalingFactor: p.router.routedScalingFactor,
    groups: p.router.groups,
    sharedExperts: p.shared ? { intermediate: p.shared.intermediate, gated: p.shared.gated } : undefined,
    capacityFactor: o.capacityFactor !== undefined && o.capacityFactor > 0 ? o.capacityFactor : undefined,
    threads: o.threads ?? undefined,
    dtype: o.dtype,
    weights: { seed: o.seed },
  };
}
