// Routing families: a checkpoint's configuration (Hugging Face config.json, or GGUF metadata) →
// the engine's layer shape and routing options, which layers are MoE, and where each engine
// matrix lies in the checkpoint's tensors. Semantics follow each family's modelling code
// (huggingface/transformers models/*/modeling_*.py; llama.cpp for the GGUF spellings). A family
// whose rule the engine's router does not implement exactly is refused, naming the difference.
import { MoecapError, shown } from '../errors';
import type { RouterGroups, Scoring } from '../types';
import type { GgufValue } from './gguf';

/** `rows` consecutive rows (of the tensor's last dimension) starting at row `rowStart`. */
export interface TensorSlice {
  tensor: string;
  rowStart: number;
  rows: number;
}

/** A tensor a layer needs, with the shape the configuration implies (row-major, slowest first). */
export interface ExpectedTensor {
  tensor: string;
  shape: number[];
}

/** Where each engine matrix of one layer comes from, in the engine's explicit-weight order. */
export interface LayerSources {
  router: TensorSlice[]; // [E, H]
  gate: TensorSlice[]; // [E, F, H]
  up: TensorSlice[]; // [E, F, H]
  down: TensorSlice[]; // [E, H, F]
  selectionBias?: TensorSlice[]; // [E]
  /** gpt-oss: router bias [E]. */
  routerBias?: TensorSlice[];
  /**
   * Experts stored transposed, as the modelling code multiplies them (x @ W): gateUp [E, H, 2F]
   * and down [E, F, H]. `interleaved`: gate = even, up = odd columns (gpt-oss); else the first
   * half is the gate and the second the up projection (Llama 4). When set, gate/up/down are empty.
   */
  transposed?: { gateUp: TensorSlice[]; down: TensorSlice[]; interleaved: boolean };
  /**
   * gpt-oss's MXFP4 release: `${name}_blocks` U8 [E, rows, cols/32, 16] + `${name}_scales` U8
   * [E, rows, cols/32], stored [out, in] (the modelling code's parameter is their transpose):
   * gateUp rows = 2F interleaved (gate even, up odd) of H; down rows = H of F. Replaces `transposed`.
   */
  mxfp4?: { gateUp: string; down: string };
  /** gpt-oss per-expert biases: gateUp [E, 2F] (interleaved as the weights; safetensors) or gate and up [E, F] (GGUF), down [E, H]. */
  expertBiases?: { gateUp?: TensorSlice[]; gate?: TensorSlice[]; up?: TensorSlice[]; down: TensorSlice[] };
  shared?: { gate: TensorSlice[]; up: TensorSlice[]; down: TensorSlice[]; gateWeight?: TensorSlice[] };
  expected: ExpectedTensor[];
}

export interface FamilyPlan {
  /** Family name (e.g. 'qwen3_moe'). */
  family: string;
  /** The checkpoint's own architecture string (config.json architectures[0] or general.architecture). */
  architecture: string;
  layers: number;
  moeLayers: number[];
  denseLayers: number[];
  hidden: number;
  intermediate: number;
  experts: number;
  topK: number;
  scoring: Scoring;
  renormalize: boolean;
  routedScalingFactor: number;
  groups?: RouterGroups;
  sharedExperts?: { intermediate: number; gated: boolean };
  /** The layer carries a selection bias (DeepSeek-V3 e_score_correction_bias). */
  selectionBias: boolean;
  /** scoring 'sparsemixer': its mask threshold (router_jitter_noise). */
  jitterEps?: number;
  /** Expert variants beyond the plain SwiGLU expert (layer_config.h in the core). */
  clampedSwiglu?: { limit: number; alpha: number };
  scoreOnInput?: boolean;
  /** The layer carries a router bias and per-expert biases (gpt-oss). */
  biases?: boolean;
  /** The routing rule in words. */
  routingRule: string;
  sources(layer: number): LayerSources;
}

export const SUPPORTED_HF_ARCHITECTURES = [
  'MixtralForCausalLM',
  'OlmoeForCausalLM',
  'Qwen2MoeForCausalLM',
  'Qwen3MoeForCausalLM',
  'DeepseekV2ForCausalLM',
  'DeepseekV3ForCausalLM',
  'GraniteMoeForCausalLM',
  'GptOssForCausalLM',
  'Llama4ForCausalLM',
  'Llama4ForConditionalGeneration',
  'PhimoeForCausalLM',
] as const;

export const SUPPORTED_GGUF_ARCHITECTURES = ['llama', 'olmoe', 'qwen2moe', 'qwen3moe', 'deepseek2', 'granitemoe', 'gpt-oss', 'llama4', 'phimoe'] as const;

/** Known MoE architectures the engine cannot run yet, and what is missing. */
const NOT_YET: Record<string, string> = {
  GraniteMoeSharedForCausalLM: 'Granite MoE with a shared MLP (shared_mlp input_linear) is not mapped yet',
  GraniteMoeHybridForCausalLM: 'Granite MoE hybrid (Mamba layers) is not mapped yet',
};

/** Phi-3.5-MoE's router_jitter_noise (its config.json), the sparsemixer threshold a GGUF file does not carry. */
const PHIMOE_JITTER_EPS = 0.01;

function notSupported(what: string): MoecapError {
  return new MoecapError('ERR_INVALID_OPTION', `not yet supported: ${what}`);
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

// ---------------------------------------------------------------- Hugging Face config.json

type Json = Record<string, unknown>;

// Bounds of the counts a plan enumerates (its layer and expert lists): far above any released model,
// low enough that a corrupt value is refused before a list of that length is built.
const MAX_LAYERS = 4096;
const MAX_EXPERTS = 1 << 16;

function cfgInt(cfg: Json, key: string, file: string, def?: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = cfg[key] ?? def;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max)
    throw new MoecapError(
      'ERR_CORRUPT_FILE',
      `${file}: ${key} must be a non-negative integer${max < Number.MAX_SAFE_INTEGER ? ` up to ${max}` : ''}, got ${shown(cfg[key])}`,
    );
  return v;
}
function cfgNum(cfg: Json, key: string, file: string, def: number): number {
  const v = cfg[key] ?? def;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new MoecapError('ERR_CORRUPT_FILE', `${file}: ${key} must be a number, got ${shown(cfg[key])}`);
  return v;
}
function cfgBool(cfg: Json, key: string, file: string, def: boolean): boolean {
  const v = cfg[key] ?? def;
  if (typeof v !== 'boolean') throw new MoecapError('ERR_CORRUPT_FILE', `${file}: ${key} must be a boolean, got ${shown(cfg[key])}`);
  return v;
}
function cfgStr(cfg: Json, key: string, file: string, def: string): string {
  const v = cfg[key] ?? def;
  if (typeof v !== 'string') throw new MoecapError('ERR_CORRUPT_FILE', `${file}: ${key} must be a string, got ${shown(cfg[key])}`);
  return v;
}

/** Per-expert HF tensors `${p}experts.{e}.{g,u,d}.weight` ([F,H], [F,H], [H,F]). */
function perExpert(p: string, E: number, F: number, H: number, names: [string, string, string]) {
  const gate: TensorSlice[] = [],
    up: TensorSlice[] = [],
    down: TensorSlice[] = [],
    expected: ExpectedTensor[] = [];
  for (let e = 0; e < E; e++) {
    const [g, u, d] = names.map((n) => `${p}experts.${e}.${n}.weight`);
    gate.push({ tensor: g, rowStart: 0, rows: F });
    up.push({ tensor: u, rowStart: 0, rows: F });
    down.push({ tensor: d, rowStart: 0, rows: H });
    expected.push({ tensor: g, shape: [F, H] }, { tensor: u, shape: [F, H] }, { tensor: d, shape: [H, F] });
  }
  return { gate, up, down, expected };
}

/** A SwiGLU MLP `${p}{gate,up,down}_proj.weight` of width Fs. */
function denseMlp(p: string, Fs: number, H: number) {
  return {
    gate: [{ tensor: `${p}gate_proj.weight`, rowStart: 0, rows: Fs }],
    up: [{ tensor: `${p}up_proj.weight`, rowStart: 0, rows: Fs }],
    down: [{ tensor: `${p}down_proj.weight`, rowStart: 0, rows: H }],
    expected: [
      { tensor: `${p}gate_proj.weight`, shape: [Fs, H] },
      { tensor: `${p}up_proj.weight`, shape: [Fs, H] },
      { tensor: `${p}down_proj.weight`, shape: [H, Fs] },
    ],
  };
}

function checkSilu(cfg: Json, file: string): void {
  const act = cfg.hidden_act ?? 'silu';
  if (act !== 'silu' && act !== 'swish') throw notSupported(`${file}: hidden_act ${shown(act)} (the engine's experts are SwiGLU with SiLU)`);
}

function architectureOf(cfg: Json): string {
  const a = cfg.architectures;
  if (Array.isArray(a) && typeof a[0] === 'string') return a[0];
  return typeof cfg.model_type === 'string' ? cfg.model_type : '(none)';
}

/** The plan for a Hugging Face checkpoint from its parsed config.json (`file` names it in errors). */
export function planFromHfConfig(cfg: Json, file: string): FamilyPlan {
  const arch = architectureOf(cfg);
  if (NOT_YET[arch]) throw notSupported(`${arch}: ${NOT_YET[arch]}`);
  if (!(SUPPORTED_HF_ARCHITECTURES as readonly string[]).includes(arch))
    throw new MoecapError('ERR_INVALID_OPTION', `${file}: unknown architecture ${arch} (known: ${SUPPORTED_HF_ARCHITECTURES.join(', ')})`);
  if (arch.startsWith('Llama4')) return planLlama4(cfg, file, arch);
  checkSilu(cfg, file);
  const H = cfgInt(cfg, 'hidden_size', file);
  const L = cfgInt(cfg, 'num_hidden_layers', file, undefined, MAX_LAYERS);
  const k = cfgInt(cfg, 'num_experts_per_tok', file);
  const pre = (l: number, block: string) => `model.layers.${l}.${block}.`;
  switch (arch) {
    case 'PhimoeForCausalLM': {
      // Phi-3.5-MoE (transformers models/phimoe): Mixtral's tensors (block_sparse_moe.gate,
      // experts.N.w1/w3/w2, SiLU), routed by sparsemixer with jitter_eps = router_jitter_noise;
      // the jitter noises themselves act only in training.
      if (k !== 2) throw new MoecapError('ERR_CORRUPT_FILE', `${file}: Phi-3.5-MoE's sparsemixer selects 2 experts, num_experts_per_tok is ${k}`);
      const E = cfgInt(cfg, 'num_local_experts', file, undefined, MAX_EXPERTS);
      const F = cfgInt(cfg, 'intermediate_size', file);
      const eps = cfgNum(cfg, 'router_jitter_noise', file, PHIMOE_JITTER_EPS);
      if (!(eps >= 0)) throw new MoecapError('ERR_CORRUPT_FILE', `${file}: router_jitter_noise must be >= 0, got ${eps}`);
      return {
        family: 'phimoe',
        architecture: arch,
        layers: L,
        moeLayers: range(L),
        denseLayers: [],
        hidden: H,
        intermediate: F,
        experts: E,
        topK: 2,
        scoring: 'sparsemixer',
        renormalize: false,
        routedScalingFactor: 1,
        selectionBias: false,
        jitterEps: eps,
        routingRule: `sparsemixer (inference): expert 1 = argmax logit, expert 2 = argmax of the rest; each weight = softmax at its pick over the logits within relative distance 2·${eps} of that pick`,
        sources(l) {
          const p = pre(l, 'block_sparse_moe');
          const ex = perExpert(p, E, F, H, ['w1', 'w3', 'w2']);
          return {
            router: [{ tensor: `${p}gate.weight`, rowStart: 0, rows: E }],
            ...ex,
            expected: [{ tensor: `${p}gate.weight`, shape: [E, H] }, ...ex.expected],
          };
        },
      };
    }
    case 'MixtralForCausalLM':
    case 'GraniteMoeForCausalLM': {
      const E = cfgInt(cfg, 'num_local_experts', file, undefined, MAX_EXPERTS);
      const F = cfgInt(cfg, 'intermediate_size', file);
      const granite = arch === 'GraniteMoeForCausalLM';
      return {
        family: granite ? 'granitemoe' : 'mixtral',
        architecture: arch,
        layers: L,
        moeLayers: range(L),
        denseLayers: [],
        hidden: H,
        intermediate: F,
        experts: E,
        topK: k,
        scoring: 'softmax',
        renormalize: true,
        routedScalingFactor: 1,
        selectionBias: false,
        routingRule: granite ? 'softmax over the top-k router logits (= softmax, top-k, renormalise)' : 'softmax, top-k, renormalise',
        sources(l) {
          const p = pre(l, 'block_sparse_moe');
          if (!granite) {
            const ex = perExpert(p, E, F, H, ['w1', 'w3', 'w2']);
            return {
              router: [{ tensor: `${p}gate.weight`, rowStart: 0, rows: E }],
              ...ex,
              expected: [{ tensor: `${p}gate.weight`, shape: [E, H] }, ...ex.expected],
            };
          }
          // input_linear [E, 2F, H]: rows [0, F) of each expert are the gate, [F, 2F) the up projection.
          const inp = `${p}input_linear.weight`,
            out = `${p}output_linear.weight`,
            router = `${p}router.layer.weight`;
          return {
            router: [{ tensor: router, rowStart: 0, rows: E }],
            gate: range(E).map((e) => ({ tensor: inp, rowStart: e * 2 * F, rows: F })),
            up: range(E).map((e) => ({ tensor: inp, rowStart: e * 2 * F + F, rows: F })),
            down: [{ tensor: out, rowStart: 0, rows: E * H }],
            expected: [
              { tensor: router, shape: [E, H] },
              { tensor: inp, shape: [E, 2 * F, H] },
              { tensor: out, shape: [E, H, F] },
            ],
          };
        },
      };
    }
    case 'OlmoeForCausalLM':
    case 'Qwen2MoeForCausalLM':
    case 'Qwen3MoeForCausalLM': {
      const E = cfgInt(cfg, 'num_experts', file, undefined, MAX_EXPERTS);
      const olmoe = arch === 'OlmoeForCausalLM';
      const F = cfgInt(cfg, olmoe ? 'intermediate_size' : 'moe_intermediate_size', file);
      const norm = cfgBool(cfg, 'norm_topk_prob', file, false);
      const qwen2 = arch === 'Qwen2MoeForCausalLM';
      const Fs = qwen2 ? cfgInt(cfg, 'shared_expert_intermediate_size', file, 0) : 0;
      let moeLayers = range(L);
      if (!olmoe) {
        const step = cfgInt(cfg, 'decoder_sparse_step', file, 1);
        const mlpOnly = cfg.mlp_only_layers ?? [];
        if (!Array.isArray(mlpOnly) || !mlpOnly.every((x) => Number.isInteger(x)))
          throw new MoecapError('ERR_CORRUPT_FILE', `${file}: mlp_only_layers must be a list of layer indices`);
        moeLayers = moeLayers.filter((l) => !mlpOnly.includes(l) && E > 0 && step > 0 && (l + 1) % step === 0);
      }
      return {
        family: olmoe ? 'olmoe' : qwen2 ? 'qwen2_moe' : 'qwen3_moe',
        architecture: arch,
        layers: L,
        moeLayers,
        denseLayers: range(L).filter((l) => !moeLayers.includes(l)),
        hidden: H,
        intermediate: F,
        experts: E,
        topK: k,
        scoring: 'softmax',
        renormalize: norm,
        routedScalingFactor: 1,
        selectionBias: false,
        sharedExperts: Fs > 0 ? { intermediate: Fs, gated: true } : undefined,
        routingRule: `softmax, top-k${norm ? ', renormalise (norm_topk_prob)' : ' (no renormalisation: norm_topk_prob false)'}${Fs > 0 ? '; shared expert × sigmoid(shared_expert_gate · x)' : ''}`,
        sources(l) {
          const p = pre(l, 'mlp');
          const ex = perExpert(p, E, F, H, ['gate_proj', 'up_proj', 'down_proj']);
          const s: LayerSources = {
            router: [{ tensor: `${p}gate.weight`, rowStart: 0, rows: E }],
            ...ex,
            expected: [{ tensor: `${p}gate.weight`, shape: [E, H] }, ...ex.expected],
          };
          if (Fs > 0) {
            const sh = denseMlp(`${p}shared_expert.`, Fs, H);
            const g = `${p}shared_expert_gate.weight`;
            s.shared = { ...sh, gateWeight: [{ tensor: g, rowStart: 0, rows: 1 }] };
            s.expected.push(...sh.expected, { tensor: g, shape: [1, H] });
          }
          return s;
        },
      };
    }
    case 'GptOssForCausalLM':
      return planGptOss(cfg, file, arch, H, L, k);
    default:
      return planDeepseek(cfg, file, arch, H, L, k);
  }
}

/** The modelling code's GLU constant for gpt-oss (GptOssExperts.alpha; not in config.json). */
const GPT_OSS_ALPHA = 1.702;

// gpt-oss (transformers models/gpt_oss): router = linear with bias; top-k on the logits, softmax
// over the k (= softmax, top-k, renormalise); experts x @ gate_up_proj [E, H, 2F] + bias, gate =
// even and up = odd columns, gate ≤ limit, |up| ≤ limit, h = (up + 1)·gate·σ(1.702·gate), out =
// h @ down_proj [E, F, H] + bias, times the routing weight. Every layer is MoE.
function planGptOss(cfg: Json, file: string, arch: string, H: number, L: number, k: number): FamilyPlan {
  const E = cfgInt(cfg, 'num_local_experts', file, undefined, MAX_EXPERTS);
  const F = cfgInt(cfg, 'intermediate_size', file);
  const limit = cfgNum(cfg, 'swiglu_limit', file, 7.0);
  if (!(limit > 0)) throw new MoecapError('ERR_CORRUPT_FILE', `${file}: swiglu_limit must be > 0, got ${limit}`);
  const q = cfg.quantization_config as Json | undefined;
  const method = q && typeof q === 'object' ? q.quant_method : undefined;
  if (method !== undefined && method !== 'mxfp4') throw notSupported(`${file}: gpt-oss quantization_config.quant_method ${shown(method)} (mxfp4 is known)`);
  const mx = method === 'mxfp4';
  if (mx && (H % 32 !== 0 || F % 32 !== 0))
    throw new MoecapError('ERR_CORRUPT_FILE', `${file}: MXFP4 experts need hidden_size (${H}) and intermediate_size (${F}) multiples of 32`);
  return {
    family: 'gpt_oss',
    architecture: arch,
    layers: L,
    moeLayers: range(L),
    denseLayers: [],
    hidden: H,
    intermediate: F,
    experts: E,
    topK: k,
    scoring: 'softmax',
    renormalize: true,
    routedScalingFactor: 1,
    selectionBias: false,
    biases: true,
    clampedSwiglu: { limit, alpha: GPT_OSS_ALPHA },
    routingRule: `router logits + bias; top-k on the logits, softmax over the k; experts with biases, clamped SwiGLU (limit ${limit}, α ${GPT_OSS_ALPHA}, (up + 1)·glu)`,
    sources(l) {
      const p = `model.layers.${l}.mlp.`;
      const gu = `${p}experts.gate_up_proj`,
        dn = `${p}experts.down_proj`;
      const experts: ExpectedTensor[] = mx
        ? [
            { tensor: `${gu}_blocks`, shape: [E, 2 * F, H / 32, 16] },
            { tensor: `${gu}_scales`, shape: [E, 2 * F, H / 32] },
            { tensor: `${dn}_blocks`, shape: [E, H, F / 32, 16] },
            { tensor: `${dn}_scales`, shape: [E, H, F / 32] },
          ]
        : [
            { tensor: gu, shape: [E, H, 2 * F] },
            { tensor: dn, shape: [E, F, H] },
          ];
      return {
        router: [{ tensor: `${p}router.weight`, rowStart: 0, rows: E }],
        routerBias: [{ tensor: `${p}router.bias`, rowStart: 0, rows: 1 }],
        gate: [],
        up: [],
        down: [],
        ...(mx
          ? { mxfp4: { gateUp: gu, down: dn } }
          : { transposed: { gateUp: [{ tensor: gu, rowStart: 0, rows: E * H }], down: [{ tensor: dn, rowStart: 0, rows: E * F }], interleaved: true } }),
        expertBiases: { gateUp: [{ tensor: `${gu}_bias`, rowStart: 0, rows: E }], down: [{ tensor: `${dn}_bias`, rowStart: 0, rows: E }] },
        expected: [
          { tensor: `${p}router.weight`, shape: [E, H] },
          { tensor: `${p}router.bias`, shape: [E] },
          ...experts,
          { tensor: `${gu}_bias`, shape: [E, 2 * F] },
          { tensor: `${dn}_bias`, shape: [E, H] },
        ],
      };
    },
  };
}

// Llama 4 (transformers models/llama4): text settings under text_config; router = linear without
// bias; top-k on the logits, score = sigmoid of those k logits; the routed expert's *input* is
// x·score (its output is not scaled); experts x @ gate_up_proj [E, H, 2F] (first half gate, second
// half up, SiLU), @ down_proj [E, F, H]; a shared SwiGLU expert (width intermediate_size) always
// added. MoE layers: config moe_layers, else every interleave_moe_layer_step-th layer (from step-1).
function planLlama4(outer: Json, file: string, arch: string): FamilyPlan {
  const nested = arch === 'Llama4ForConditionalGeneration';
  const tc = outer.text_config;
  const cfg: Json = tc && typeof tc === 'object' && !Array.isArray(tc) ? (tc as Json) : nested ? {} : outer;
  if (nested && cfg === outer) throw new MoecapError('ERR_CORRUPT_FILE', `${file}: ${arch} without text_config`);
  checkSilu(cfg, file);
  const H = cfgInt(cfg, 'hidden_size', file);
  const L = cfgInt(cfg, 'num_hidden_layers', file, undefined, MAX_LAYERS);
  const k = cfgInt(cfg, 'num_experts_per_tok', file, 1);
  const E = cfgInt(cfg, 'num_local_experts', file, undefined, MAX_EXPERTS);
  const F = cfgInt(cfg, 'intermediate_size', file);
  const step = cfgInt(cfg, 'interleave_moe_layer_step', file, 1);
  let moeLayers: number[];
  if (Array.isArray(cfg.moe_layers)) {
    if (!cfg.moe_layers.every((x) => Number.isInteger(x) && x >= 0 && x < L))
      throw new MoecapError('ERR_CORRUPT_FILE', `${file}: moe_layers must be a list of layer indices below ${L}`);
    moeLayers = [...new Set(cfg.moe_layers as number[])].sort((a, b) => a - b);
  } else moeLayers = step > 0 ? range(L).filter((l) => l % step === step - 1) : [];
  const root = nested ? 'language_model.model.layers.' : 'model.layers.';
  return {
    family: 'llama4',
    architecture: arch,
    layers: L,
    moeLayers,
    denseLayers: range(L).filter((l) => !moeLayers.includes(l)),
    hidden: H,
    intermediate: F,
    experts: E,
    topK: k,
    scoring: 'sigmoid',
    renormalize: false,
    routedScalingFactor: 1,
    selectionBias: false,
    scoreOnInput: true,
    sharedExperts: { intermediate: F, gated: false },
    routingRule: 'top-k on the router logits, score = sigmoid(logit); the expert input is x·score (output unscaled); shared expert always added',
    sources(l) {
      const p = `${root}${l}.feed_forward.`;
      const gu = `${p}experts.gate_up_proj`,
        dn = `${p}experts.down_proj`;
      const sh = denseMlp(`${p}shared_expert.`, F, H);
      return {
        router: [{ tensor: `${p}router.weight`, rowStart: 0, rows: E }],
        gate: [],
        up: [],
        down: [],
        transposed: { gateUp: [{ tensor: gu, rowStart: 0, rows: E * H }], down: [{ tensor: dn, rowStart: 0, rows: E * F }], interleaved: false },
        shared: { gate: sh.gate, up: sh.up, down: sh.down },
        expected: [{ tensor: `${p}router.weight`, shape: [E, H] }, { tensor: gu, shape: [E, H, 2 * F] }, { tensor: dn, shape: [E, F, H] }, ...sh.expected],
      };
    },
  };
}

/**
 * Experts stored transposed (LayerSources.transposed) → the engine's [E, F, H] gate and up and
 * [E, H, F] down. gateUp: [E, H, 2F]; down: [E, F, H].
 */
export function untransposeExperts(gateUp: Float32Array, down: Float32Array, E: number, F: number, H: number, interleaved: boolean) {
  const gate = new Float32Array(E * F * H),
    up = new Float32Array(E * F * H),
    dn = new Float32Array(E * H * F);
  for (let e = 0; e < E; e++)
    for (let h = 0; h < H; h++) {
      const row = (e * H + h) * 2 * F;
      for (let f = 0; f < F; f++) {
        const gi = interleaved ? 2 * f : f,
          ui = interleaved ? 2 * f + 1 : F + f;
        gate[(e * F + f) * H + h] = gateUp[row + gi];
        up[(e * F + f) * H + h] = gateUp[row + ui];
        dn[(e * H + h) * F + f] = down[(e * F + f) * H + h];
      }
    }
  return { gate, up, down: dn };
}

/** gpt-oss's MXFP4 gate_up [E, 2F, H] (rows interleaved: gate even, up odd) → gate and up [E, F, H]. */
export function splitInterleavedRows(gu: Float32Array, E: number, F: number, H: number) {
  const gate = new Float32Array(E * F * H),
    up = new Float32Array(E * F * H);
  for (let r = 0; r < E * F; r++) {
    gate.set(gu.subarray(2 * r * H, (2 * r + 1) * H), r * H);
    up.set(gu.subarray((2 * r + 1) * H, (2 * r + 2) * H), r * H);
  }
  return { gate, up };
}

/** gpt-oss's interleaved gate/up bias [E, 2F] → gate and up biases [E, F] each. */
export function splitInterleavedBias(b: Float32Array, E: number, F: number) {
  const gate = new Float32Array(E * F),
    up = new Float32Array(E * F);
  for (let i = 0; i < E * F; i++) {
    gate[i] = b[2 * i];
    up[i] = b[2 * i + 1];
  }
  return { gate, up };
}

/** DeepSeek's n_group / topk_group as the engine's groups, checked as the family's code needs them. */
function groupsOf(file: string, E: number, k: number, nGroup: number, topkGroup: number, minSize: number): RouterGroups {
  if (E % nGroup !== 0 || E / nGroup < minSize)
    throw new MoecapError('ERR_CORRUPT_FILE', `${file}: n_routed_experts ${E} must split into n_group ${nGroup} groups of at least ${minSize}`);
  if (topkGroup < 1 || topkGroup > nGroup || topkGroup * (E / nGroup) < k)
    throw new MoecapError('ERR_CORRUPT_FILE', `${file}: topk_group ${topkGroup} of ${nGroup} groups leaves fewer than num_experts_per_tok ${k} experts`);
  return { count: nGroup, keep: topkGroup };
}

function planDeepseek(cfg: Json, file: string, arch: string, H: number, L: number, k: number): FamilyPlan {
  const v3 = arch === 'DeepseekV3ForCausalLM';
  const E = cfgInt(cfg, 'n_routed_experts', file, undefined, MAX_EXPERTS);
  const F = cfgInt(cfg, 'moe_intermediate_size', file);
  const nShared = cfgInt(cfg, 'n_shared_experts', file, 0);
  const firstDense = cfgInt(cfg, 'first_k_dense_replace', file, 0);
  const freq = cfgInt(cfg, 'moe_layer_freq', file, 1);
  const norm = cfgBool(cfg, 'norm_topk_prob', file, v3);
  const rsf = cfgNum(cfg, 'routed_scaling_factor', file, v3 ? 2.5 : 1);
  const scoringFunc = cfgStr(cfg, 'scoring_func', file, v3 ? 'sigmoid' : 'softmax');
  const topkMethod = cfgStr(cfg, 'topk_method', file, v3 ? 'noaux_tc' : 'greedy');
  const nGroup = cfgInt(cfg, 'n_group', file, 1);
  const topkGroup = cfgInt(cfg, 'topk_group', file, nGroup);
  const renormalize = norm && k > 1;
  let scoring: Scoring, scaling: number, groups: RouterGroups | undefined, rule: string;
  if (v3) {
    if (scoringFunc !== 'sigmoid') throw notSupported(`${file}: DeepSeek-V3 scoring_func ${scoringFunc} (the family's code scores with sigmoid)`);
    if (topkMethod !== 'noaux_tc') throw notSupported(`${file}: DeepSeek-V3 topk_method ${topkMethod} (only noaux_tc)`);
    scoring = 'sigmoid';
    scaling = rsf;
    if (nGroup > 1) groups = groupsOf(file, E, k, nGroup, topkGroup, 2);
    rule = `sigmoid; selection on score + e_score_correction_bias${groups ? `, ${nGroup} groups scored by the sum of their top-2 biased scores, best ${topkGroup} kept` : ''}; top-k; weights = unbiased scores${renormalize ? ', renormalised' : ''} × ${rsf}`;
  } else {
    if (scoringFunc !== 'softmax') throw notSupported(`${file}: DeepSeek-V2 scoring_func ${scoringFunc} (the family's code scores with softmax)`);
    if (topkMethod !== 'greedy' && topkMethod !== 'gready' && topkMethod !== 'group_limited_greedy')
      throw notSupported(`${file}: DeepSeek-V2 topk_method ${topkMethod}`);
    scoring = 'softmax';
    // The V2 code normalises *or* scales: routed_scaling_factor applies only without renormalisation.
    scaling = renormalize ? 1 : rsf;
    if (topkMethod === 'group_limited_greedy' && nGroup > 1) groups = { ...groupsOf(file, E, k, nGroup, topkGroup, 1), score: 'max' };
    rule = `softmax, top-k (${topkMethod}${groups ? `: ${nGroup} groups scored by their best expert, best ${topkGroup} kept` : ''})${renormalize ? ', renormalise' : `, × ${rsf}`}`;
  }
  const moeLayers = range(L).filter((l) => E > 0 && l >= firstDense && freq > 0 && l % freq === 0);
  const Fs = nShared * F;
  return {
    family: v3 ? 'deepseek_v3' : 'deepseek_v2',
    architecture: arch,
    layers: L,
    moeLayers,
    denseLayers: range(L).filter((l) => !moeLayers.includes(l)),
    hidden: H,
    intermediate: F,
    experts: E,
    topK: k,
    scoring,
    renormalize,
    routedScalingFactor: scaling,
    groups,
    selectionBias: v3,
    sharedExperts: Fs > 0 ? { intermediate: Fs, gated: false } : undefined,
    routingRule: rule + (Fs > 0 ? `; ${nShared} shared expert(s) always added` : ''),
    sources(l) {
      const p = `model.layers.${l}.mlp.`;
      const ex = perExpert(p, E, F, H, ['gate_proj', 'up_proj', 'down_proj']);
      const s: LayerSources = {
        router: [{ tensor: `${p}gate.weight`, rowStart: 0, rows: E }],
        ...ex,
        expected: [{ tensor: `${p}gate.weight`, shape: [E, H] }, ...ex.expected],
      };
      if (v3) {
        const b = `${p}gate.e_score_correction_bias`;
        s.selectionBias = [{ tensor: b, rowStart: 0, rows: 1 }];
        s.expected.push({ tensor: b, shape: [E] });
      }
      if (Fs > 0) {
        const sh = denseMlp(`${p}shared_experts.`, Fs, H);
        s.shared = sh;
        s.expected.push(...sh.expected);
      }
      return s;
    },
  };
}

// ---------------------------------------------------------------- GGUF metadata

type Meta = Map<string, GgufValue>;

function metaInt(m: Meta, key: string, file: string, def?: number, max = Number.MAX_SAFE_INTEGER): number {
  let v = m.get(key);
  if (typeof v === 'bigint' && v <= BigInt(Number.MAX_SAFE_INTEGER)) v = Number(v);
  v = v ?? def;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max)
    throw new MoecapError(
      'ERR_CORRUPT_FILE',
      `${file}: metadata ${key} must be a non-negative integer${max < Number.MAX_SAFE_INTEGER ? ` up to ${max}` : ''}, got ${shown(m.get(key))}`,
    );
  return v;
}
function metaNum(m: Meta, key: string, file: string, def: number): number {
  const v = m.get(key) ?? def;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new MoecapError('ERR_CORRUPT_FILE', `${file}: metadata ${key} must be a number, got ${shown(v)}`);
  return v;
}

/** Shape of a GGUF tensor present in `shapes` (row-major), or undefined. */
export type ShapeLookup = (tensor: string) => number[] | undefined;

/**
 * The plan for a GGUF file. Expert tensors are stacked: ffn_{gate,up}_exps ggml {H, F, E} =
 * row-major [E, F, H], ffn_down_exps {F, H, E} = [E, H, F], ffn_gate_inp {H, E} = [E, H].
 */
export function planFromGguf(meta: Meta, file: string, shapeOf: ShapeLookup): FamilyPlan {
  const archV = meta.get('general.architecture');
  const arch = typeof archV === 'string' ? archV : '(none)';
  if (NOT_YET[arch]) throw notSupported(`${arch}: ${NOT_YET[arch]}`);
  if (!(SUPPORTED_GGUF_ARCHITECTURES as readonly string[]).includes(arch))
    throw new MoecapError('ERR_INVALID_OPTION', `${file}: unknown or non-MoE GGUF architecture ${arch} (known: ${SUPPORTED_GGUF_ARCHITECTURES.join(', ')})`);
  const key = (k: string) => `${arch}.${k}`;
  const E = metaInt(meta, key('expert_count'), file, 0, MAX_EXPERTS);
  if (E === 0)
    throw new MoecapError('ERR_INVALID_OPTION', `${file}: ${arch} file without experts (${key('expert_count')} missing or 0): not an MoE checkpoint`);
  const k = metaInt(meta, key('expert_used_count'), file);
  const H = metaInt(meta, key('embedding_length'), file);
  const L = metaInt(meta, key('block_count'), file, undefined, MAX_LAYERS);
  const moeLayers = range(L).filter((l) => shapeOf(`blk.${l}.ffn_gate_inp.weight`) !== undefined);
  if (moeLayers.length === 0) throw new MoecapError('ERR_CORRUPT_FILE', `${file}: no blk.N.ffn_gate_inp.weight tensor: no MoE layer found`);
  // Some conversions stack gate and up into one tensor, blk.N.ffn_gate_up_exps {H, 2F, E} =
  // [E, 2F, H]. llama.cpp's build_moe_ffn multiplies by it once and views the first n_ff = 2F/2
  // outputs as the gate and the next n_ff as the up projection: per expert, gate = its first F
  // rows, up = the last F.
  const fusedGateUp = (l: number) => shapeOf(`blk.${l}.ffn_gate_exps.weight`) === undefined && shapeOf(`blk.${l}.ffn_gate_up_exps.weight`) !== undefined;
  const gateName = `blk.${moeLayers[0]}.${fusedGateUp(moeLayers[0]) ? 'ffn_gate_up_exps' : 'ffn_gate_exps'}.weight`;
  const gateShape = shapeOf(gateName);
  if (!gateShape || gateShape.length !== 3) throw new MoecapError('ERR_CORRUPT_FILE', `${file}: ${gateName} missing or not 3-dimensional`);
  if (fusedGateUp(moeLayers[0]) && gateShape[1] % 2 !== 0)
    throw new MoecapError('ERR_CORRUPT_FILE', `${file}: ${gateName} [${gateShape.join(', ')}] has an odd number of gate|up rows per expert`);
  const F = fusedGateUp(moeLayers[0]) ? gateShape[1] / 2 : gateShape[1];
  const declaredF = meta.has(key('expert_feed_forward_length')) ? metaInt(meta, key('expert_feed_forward_length'), file) : undefined;
  if (declaredF !== undefined && declaredF !== F)
    throw new MoecapError(
      'ERR_CORRUPT_FILE',
      `${file}: ${key('expert_feed_forward_length')} ${declaredF} does not match ${gateName} [${gateShape.join(', ')}]`,
    );
  let scoring: Scoring = 'softmax',
    renormalize = true,
    scaling = 1,
    groups: RouterGroups | undefined;
  let rule = 'softmax, top-k, renormalise';
  let Fs = 0,
    sharedGated = false,
    bias = false,
    gptOss = false,
    scoreOnInput = false,
    jitterEps: number | undefined;
  switch (arch) {
    case 'phimoe':
      // Phi-3.5-MoE routes by sparsemixer in its modelling code (llama.cpp's graph approximates
      // it by a renormalised softmax top-2; the model's own rule is the one run here). Its mask
      // threshold, router_jitter_noise, is not in the GGUF metadata: the release's 0.01, said in
      // the rule.
      if (k !== 2) throw new MoecapError('ERR_CORRUPT_FILE', `${file}: Phi-3.5-MoE's sparsemixer selects 2 experts, ${key('expert_used_count')} is ${k}`);
      scoring = 'sparsemixer';
      renormalize = false;
      jitterEps = PHIMOE_JITTER_EPS;
      rule = `sparsemixer (inference): expert 1 = argmax logit, expert 2 = argmax of the rest; each weight = softmax at its pick over the logits within relative distance 2·${jitterEps} of that pick (router_jitter_noise ${jitterEps}: Phi-3.5-MoE's config value, not stored in GGUF)`;
      break;
    case 'llama4': {
      // llama.cpp's Llama 4 graph: sigmoid gating, no renormalisation, the chosen experts' weights
      // multiply their input (not their output), and the shared expert (ffn_*_shexp {H, Fs}) is
      // always added, ungated. MoE blocks are the ones with ffn_gate_inp (every
      // interleave_moe_layer_step-th); the others are dense.
      scoring = 'sigmoid';
      renormalize = false;
      scoreOnInput = true;
      Fs = shapeOf(`blk.${moeLayers[0]}.ffn_gate_shexp.weight`)?.[0] ?? 0;
      rule =
        'top-k on the router logits, score = sigmoid(logit); the expert input is x·score (output unscaled)' + (Fs > 0 ? '; shared expert always added' : '');
      break;
    }
    case 'gpt-oss':
      // llama.cpp's openai-moe graph: ffn_gate_inp with its bias, SOFTMAX_WEIGHT gating (softmax
      // over the top-k logits), biased ffn_{gate,up,down}_exps, swiglu_oai with α 1.702 and limit
      // 7.0 (constants in its graph code, not in the file).
      gptOss = true;
      rule = `router logits + bias; top-k on the logits, softmax over the k; experts with biases, clamped SwiGLU (limit 7, α ${GPT_OSS_ALPHA}, (up + 1)·glu)`;
      break;
    case 'qwen2moe':
      renormalize = false;
      Fs = metaInt(meta, key('expert_shared_feed_forward_length'), file, 0);
      sharedGated = true;
      rule = 'softmax, top-k (no renormalisation); shared expert × sigmoid(ffn_gate_inp_shexp · x)';
      break;
    case 'olmoe':
      renormalize = false;
      rule = 'softmax, top-k (no renormalisation)';
      break;
    case 'deepseek2': {
      const gating = metaInt(meta, key('expert_gating_func'), file, 1);
      renormalize = meta.get(key('expert_weights_norm')) === true && k > 1;
      scaling = metaNum(meta, key('expert_weights_scale'), file, 1) || 1;
      const nGroup = metaInt(meta, key('expert_group_count'), file, 1);
      const keep = metaInt(meta, key('expert_group_used_count'), file, nGroup);
      const nShared = metaInt(meta, key('expert_shared_count'), file, 0);
      Fs = nShared * F;
      if (gating === 2) {
        scoring = 'sigmoid';
        bias = shapeOf(`blk.${moeLayers[0]}.exp_probs_b.bias`) !== undefined;
        if (nGroup > 1) groups = { count: nGroup, keep };
        rule = `sigmoid${bias ? '; selection on score + exp_probs_b' : ''}${groups ? `; ${nGroup} groups by top-2 sum, best ${keep} kept` : ''}; top-k; unbiased scores${renormalize ? ', renormalised' : ''} × ${scaling}`;
      } else if (gating === 1) {
        // Softmax with groups is V2's group_limited_greedy: a group scores its best expert.
        if (nGroup > 1) groups = { ...groupsOf(file, E, k, nGroup, keep, 1), score: 'max' };
        // As the V2 modelling code: normalise *or* scale (llama.cpp would do both).
        if (renormalize) scaling = 1;
        rule = `softmax${groups ? `; ${nGroup} groups by their best expert, best ${keep} kept` : ''}; top-k${renormalize ? ', renormalise' : ''} × ${scaling}`;
      } else throw notSupported(`${file}: ${key('expert_gating_func')} ${gating} (1 softmax and 2 sigmoid are known)`);
      if (Fs > 0) rule += `; ${nShared} shared expert(s)`;
      break;
    }
    default:
      break;
  }
  return {
    family: arch === 'llama' ? 'mixtral' : arch,
    architecture: arch,
    layers: L,
    moeLayers,
    denseLayers: range(L).filter((l) => !moeLayers.includes(l)),
    hidden: H,
    intermediate: F,
    experts: E,
    topK: k,
    scoring,
    renormalize,
    routedScalingFactor: scaling,
    groups,
    selectionBias: bias,
    sharedExperts: Fs > 0 ? { intermediate: Fs, gated: sharedGated } : undefined,
    ...(gptOss ? { biases: true, clampedSwiglu: { limit: 7.0, alpha: GPT_OSS_ALPHA } } : {}),
    ...(scoreOnInput ? { scoreOnInput: true } : {}),
    ...(jitterEps !== undefined ? { jitterEps } : {}),
    routingRule: rule,
    sources(l) {
      const t = (n: string) => `blk.${l}.${n}.weight`;
      const b = (n: string) => `blk.${l}.${n}.bias`;
      const fused = fusedGateUp(l);
      const experts = range(E);
      const s: LayerSources = {
        router: [{ tensor: t('ffn_gate_inp'), rowStart: 0, rows: E }],
        gate: fused
          ? experts.map((e) => ({ tensor: t('ffn_gate_up_exps'), rowStart: 2 * F * e, rows: F }))
          : [{ tensor: t('ffn_gate_exps'), rowStart: 0, rows: E * F }],
        up: fused
          ? experts.map((e) => ({ tensor: t('ffn_gate_up_exps'), rowStart: 2 * F * e + F, rows: F }))
          : [{ tensor: t('ffn_up_exps'), rowStart: 0, rows: E * F }],
        down: [{ tensor: t('ffn_down_exps'), rowStart: 0, rows: E * H }],
        expected: [
          { tensor: t('ffn_gate_inp'), shape: [E, H] },
          ...(fused
            ? [{ tensor: t('ffn_gate_up_exps'), shape: [E, 2 * F, H] }]
            : [
                { tensor: t('ffn_gate_exps'), shape: [E, F, H] },
                { tensor: t('ffn_up_exps'), shape: [E, F, H] },
              ]),
          { tensor: t('ffn_down_exps'), shape: [E, H, F] },
        ],
      };
      // gpt-oss's fused form carries a fused bias [E, 2F] whose halves are not whole rows of it.
      if (gptOss && fused)
        throw notSupported(
          `${file}: gpt-oss with a fused blk.${l}.ffn_gate_up_exps tensor (its biases come in separate ffn_gate_exps/ffn_up_exps tensors only)`,
        );
      if (gptOss) {
        s.routerBias = [{ tensor: b('ffn_gate_inp'), rowStart: 0, rows: 1 }];
        s.expertBiases = {
          gate: [{ tensor: b('ffn_gate_exps'), rowStart: 0, rows: E }],
          up: [{ tensor: b('ffn_up_exps'), rowStart: 0, rows: E }],
          down: [{ tensor: b('ffn_down_exps'), rowStart: 0, rows: E }],
        };
        s.expected.push(
          { tensor: b('ffn_gate_inp'), shape: [E] },
          { tensor: b('ffn_gate_exps'), shape: [E, F] },
          { tensor: b('ffn_up_exps'), shape: [E, F] },
          { tensor: b('ffn_down_exps'), shape: [E, H] },
        );
      }
      if (bias) {
        s.selectionBias = [{ tensor: `blk.${l}.exp_probs_b.bias`, rowStart: 0, rows: 1 }];
        s.expected.push({ tensor: `blk.${l}.exp_probs_b.bias`, shape: [E] });
      }
      if (Fs > 0) {
        s.shared = {
          gate: [{ tensor: t('ffn_gate_shexp'), rowStart: 0, rows: Fs }],
          up: [{ tensor: t('ffn_up_shexp'), rowStart: 0, rows: Fs }],
          down: [{ tensor: t('ffn_down_shexp'), rowStart: 0, rows: H }],
        };
        s.expected.push(
          { tensor: t('ffn_gate_shexp'), shape: [Fs, H] },
          { tensor: t('ffn_up_shexp'), shape: [Fs, H] },
          { tensor: t('ffn_down_shexp'), shape: [H, Fs] },
        );
        if (sharedGated) {
          s.shared.gateWeight = [{ tensor: t('ffn_gate_inp_shexp'), rowStart: 0, rows: 1 }];
          s.expected.push({ tensor: t('ffn_gate_inp_shexp'), shape: [H] });
        }
      }
      return s;
    },
  };
}
