// The shape of a whole MoE model, from a checkpoint folder's config.json (Hugging Face keys) or a
// preset: what S-MBU, S-MFU and cache planning need (experts, attention, KV, shared experts).
import * as fs from 'fs';
import * as path from 'path';
import { findPreset, type ModelPreset } from '../cap/presets';
import { MoecapError, shown } from '../errors';

export interface ModelShape {
  name: string;
  source: string;
  layers: number;
  moeLayers: number;
  /** Leading dense layers and their FFN width. */
  denseLayers: number;
  denseIntermediate: number;
  hidden: number;
  experts: number;
  topK: number;
  intermediate: number;
  /** All shared experts together (count × width), 0 without. */
  sharedIntermediate: number;
  sharedCount: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** MLA (DeepSeek): compressed KV per token per layer = kvLoraRank + ropeDim. */
  mla: { kvLoraRank: number; ropeDim: number; nopeDim: number; vHeadDim: number; qLoraRank: number } | null;
}

export function shapeFromPreset(p: ModelPreset): ModelShape {
  const a = p.attention;
  return {
    name: p.modelId,
    source: `preset ${p.name} (${p.source})`,
    layers: p.layers,
    moeLayers: p.moeLayers,
    denseLayers: p.layers - p.moeLayers,
    denseIntermediate: p.denseIntermediate ?? 0,
    hidden: p.hidden,
    experts: p.experts,
    topK: p.topK,
    intermediate: p.intermediate,
    sharedIntermediate: p.shared?.intermediate ?? 0,
    sharedCount: p.shared?.count ?? 0,
    heads: a?.heads ?? 0,
    kvHeads: a?.kvHeads ?? 0,
    headDim: a?.headDim ?? 0,
    mla: a?.mla ? { kvLoraRank: a.mla.kvLoraRank, ropeDim: a.mla.ropeDim, nopeDim: 128, vHeadDim: 128, qLoraRank: p.name === 'deepseek-v3' ? 1536 : 0 } : null,
  };
}

function num(cfg: Record<string, unknown>, file: string, keys: string[], def?: number): number {
  for (const k of keys) {
    const v = cfg[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
      throw new MoecapError('ERR_CORRUPT_FILE', `model config '${file}' field '${k}': must be a number >= 0, got ${shown(v)}`);
    return v;
  }
  if (def !== undefined) return def;
  throw new MoecapError('ERR_CORRUPT_FILE', `model config '${file}': none of ${keys.map((k) => `'${k}'`).join(', ')} is present`);
}

/** config.json of a checkpoint folder (or the file itself). Multimodal configs: text_config is used. */
export function shapeFromConfig(p: string): ModelShape {
  const file = fs.existsSync(p) && fs.statSync(p).isDirectory() ? path.join(p, 'config.json') : p;
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ? 'ERR_IO' : 'ERR_CORRUPT_FILE';
    throw new MoecapError(code, `cannot read model config '${file}': ${(e as Error).message}`);
  }
  if (raw === null || typeof raw !== 'object') throw new MoecapError('ERR_CORRUPT_FILE', `model config '${file}': not a JSON object`);
  let cfg = raw as Record<string, unknown>;
  if (cfg.text_config && typeof cfg.text_config === 'object') cfg = { ...cfg, ...(cfg.text_config as object) };
  const hidden = num(cfg, file, ['hidden_size', 'd_model']);
  const layers = num(cfg, file, ['num_hidden_layers', 'n_layers']);
  const experts = num(cfg, file, ['n_routed_experts', 'num_experts', 'num_local_experts']);
  const topK = num(cfg, file, ['num_experts_per_tok', 'moe_topk', 'top_k']);
  const moeF = num(cfg, file, ['moe_intermediate_size', 'intermediate_size']);
  const denseF = num(cfg, file, ['intermediate_size'], 0);
  const dense = num(cfg, file, ['first_k_dense_replace'], 0);
  const nShared = num(cfg, file, ['n_shared_experts'], 0);
  const qwenShared = num(cfg, file, ['shared_expert_intermediate_size'], 0);
  const heads = num(cfg, file, ['num_attention_heads', 'n_heads'], 0);
  const kvHeads = num(cfg, file, ['num_key_value_heads'], heads);
  const headDim = num(cfg, file, ['head_dim'], heads ? hidden / heads : 0);
  if (!(experts >= 1 && topK >= 1 && topK <= experts))
    throw new MoecapError('ERR_CORRUPT_FILE', `model config '${file}': needs 1 <= num_experts_per_tok (${topK}) <= experts (${experts})`);
  const kvLora = num(cfg, file, ['kv_lora_rank'], 0);
  return {
    name: String(cfg._name_or_path ?? path.basename(path.dirname(path.resolve(file)))),
    source: file,
    layers,
    moeLayers: layers - dense,
    denseLayers: dense,
    denseIntermediate: dense ? denseF : 0,
    hidden,
    experts,
    topK,
    intermediate: moeF,
    sharedIntermediate: nShared ? nShared * moeF : qwenShared,
    sharedCount: nShared || (qwenShared ? 1 : 0),
    heads,
    kvHeads,
    headDim,
    mla: kvLora
      ? {
          kvLoraRank: kvLora,
          ropeDim: num(cfg, file, ['qk_rope_head_dim'], 64),
          nopeDim: num(cfg, file, ['qk_nope_head_dim'], 128),
          vHeadDim: num(cfg, file, ['v_head_dim'], 128),
          qLoraRank: num(cfg, file, ['q_lora_rank'], 0),
        }
      : null,
  };
}

/** --model PATH or --preset NAME (one of them). */
export function resolveModel(model: string | undefined, preset: string | undefined): ModelShape {
  if (model && preset) throw new MoecapError('ERR_USAGE', 'give --model PATH or --preset NAME, not both');
  if (model) return shapeFromConfig(model);
  if (preset) {
    try {
      return shapeFromPreset(findPreset(preset));
    } catch (e) {
      throw new MoecapError('ERR_INVALID_OPTION', (e as Error).message);
    }
  }
  throw new MoecapError('ERR_USAGE', 'the model is needed: --model PATH (a checkpoint folder with config.json) or --preset NAME');
}
