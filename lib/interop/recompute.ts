// MoE-CAP's per-pass S-MBU and S-MFU (its default path, moe_cap/utils/basic_utils.py) beside ours
// (lib/cap/metrics.ts definitions). Differences, each named in the output:
//   S-MFU: it counts one expert per token (2·3HF) where k are computed, and divides by half its
//          table's peak (a sparse figure for bf16, but not for fp32); we use k and the dense peak.
//   Shared experts: its DeepSeek path assumes 2; we read the model config.
import { findDatasheet, type DatasheetEntry } from '../cap/hardware';
import type { ModelShape } from './model_shape';
import { passTokens, type MoecapPass } from './moecap_folder';

/** MoE-CAP's GPU names (get_gpu_details: "NVIDIA-H100-HBM3-80GB") → our datasheet. */
export function datasheetForGpu(name: string): DatasheetEntry | null {
  const n = name.toUpperCase();
  const pick = (k: string) => findDatasheet(k);
  if (n.includes('H200')) return pick('h200');
  if (n.includes('H100')) return n.includes('PCIE') ? pick('h100-pcie') : pick('h100-sxm');
  if (n.includes('A100')) return n.includes('PCIE') ? pick('a100-pcie') : pick('a100-sxm');
  if (n.includes('4090')) return pick('rtx-4090');
  if (n.includes('A6000')) return pick('a6000');
  if (n.includes('L40S')) return pick('l40s');
  return null;
}

export function bytesPerParam(precision: string): number {
  const p = precision.toLowerCase();
  if (/float32|fp32|f32/.test(p)) return 4;
  if (/bfloat16|float16|bf16|fp16/.test(p)) return 2;
  if (/int8|fp8|w8/.test(p)) return 1;
  if (/int4|fp4|mxfp4|w4|awq|gptq/.test(p)) return 0.5;
  return 2;
}

export function densePeak(d: DatasheetEntry, precision: string): number | null {
  const b = bytesPerParam(precision);
  return b === 4 ? d.peakFlops.f32 : b === 2 ? d.peakFlops.bf16 : d.peakFlops.int8;
}

/** Attention weights per layer (params) and KV cache per token per layer (values). */
export function attentionParams(m: ModelShape): { weights: number; kvPerToken: number } {
  if (m.mla) {
    const q = m.mla.qLoraRank
      ? m.hidden * m.mla.qLoraRank + m.mla.qLoraRank * m.heads * (m.mla.nopeDim + m.mla.ropeDim)
      : m.hidden * m.heads * (m.mla.nopeDim + m.mla.ropeDim);
    const kv = m.hidden * (m.mla.kvLoraRank + m.mla.ropeDim) + m.mla.kvLoraRank * m.heads * (m.mla.nopeDim + m.mla.vHeadDim);
    return { weights: q + kv + m.heads * m.mla.vHeadDim * m.hidden, kvPerToken: m.mla.kvLoraRank + m.mla.ropeDim };
  }
  return { weights: m.hidden * (m.heads * m.headDim + 2 * m.kvHeads * m.headDim) + m.heads * m.headDim * m.hidden, kvPerToken: 2 * m.kvHeads * m.headDim };
}

export interface PassFigures {
  smbu: number;
  smfu: number;
  tokensPerSecond: number;
}

/** Ours: bytes = L_moe·(A·S_e + shared + router) + L·attention + dense FFN + KV of seq_lens_sum; FLOPs with k experts; dense peak. */
export interface OurFigures extends PassFigures {
  /** Bytes the pass reads (weights of the experts it touched, dense weights, KV of seq_lens_sum). */
  bytes: number;
  flopsPerToken: number;
  /** Dense peak of one GPU for this precision (NaN where the datasheet has none). */
  peakFlops: number;
}

export function oursForPass(p: MoecapPass, m: ModelShape, precision: string, d: DatasheetEntry, gpus: number): OurFigures {
  const b = bytesPerParam(precision);
  const att = attentionParams(m);
  const expert = 3 * m.hidden * m.intermediate;
  const shared = 3 * m.hidden * m.sharedIntermediate;
  const dense = m.denseLayers * 3 * m.hidden * m.denseIntermediate;
  const params = m.moeLayers * (p.expertActivation * expert + shared + m.hidden * m.experts) + m.layers * att.weights + dense;
  const bytes = params * b + p.seqLensSum * m.layers * att.kvPerToken * b;
  const tps = passTokens(p) / p.seconds;
  const flopsPerTok = 2 * (m.moeLayers * (m.topK * expert + shared + m.hidden * m.experts) + m.layers * att.weights + dense);
  const peak = densePeak(d, precision) ?? NaN;
  return {
    smbu: bytes / p.seconds / (gpus * d.memoryBandwidth),
    smfu: (tps * flopsPerTok) / (gpus * peak),
    tokensPerSecond: tps,
    bytes,
    flopsPerToken: flopsPerTok,
    peakFlops: peak,
  };
}

/** Which of MoE-CAP's model paths (basic_utils.py dispatch on the HF model name) applies. */
export type TheirPath = 'qwen' | 'qwen3' | 'deepseek' | 'default';

export function theirPathFor(modelName: string): TheirPath {
  if (modelName.includes('Qwen3')) return 'qwen3';
  if (modelName.includes('Qwen')) return 'qwen';
  if (modelName.includes('DeepSeek')) return 'deepseek';
  return 'default';
}

export interface TheirFigures extends PassFigures {
  path: TheirPath;
}

/**
 * MoE-CAP's per-pass S-MBU/S-MFU (continuous batching: kv and attention score of seq_lens_sum with
 * output_len 1), re-derived per model path; sizes in parameters, `theirPeak` the FLOP figure of its
 * table for this GPU and dtype (it divides by half of it). Paths, as in its qwen_utils/deepseek_utils:
 *   default:  L·(A·S_e + attn)                                   | L·(attn + S_e)
 *   qwen:     L·(A·S_e + S_shared + attn)                        | L·(attn + S_e + S_shared)
 *   qwen3:    L_moe·A·S_e + L_dense·S_ffn + L·attn               | L_moe·S_e + L_dense·S_ffn + L·attn
 *   deepseek: L·attn_mla + L_moe·(A·S_e + 2·S_e) + L_dense·S_ffn | L·attn_mla + L_moe·(S_e + 2·S_e) + L_dense·S_ffn
 * (the DeepSeek path always counts 2 shared experts of the routed width), plus kv (bytes) or the
 * attention score (FLOPs) of the pass.
 */
export function theirsForPass(p: MoecapPass, m: ModelShape, modelName: string, precision: string, bw: number, theirPeak: number, gpus: number): TheirFigures {
  const path = theirPathFor(modelName);
  const b = bytesPerParam(precision);
  const H = m.hidden;
  const isDeepseekMla = path === 'deepseek' && m.mla !== null;
  const attn = isDeepseekMla ? attentionParams(m).weights : H * (m.heads * m.headDim + m.kvHeads * m.headDim * 2) + m.heads * m.headDim * H;
  const kvPerTok = isDeepseekMla ? m.layers * (m.mla!.kvLoraRank + m.mla!.ropeDim) : 2 * m.layers * m.headDim * m.kvHeads;
  const score = isDeepseekMla
    ? p.seqLensSum * m.layers * m.heads * (m.mla!.nopeDim + m.mla!.ropeDim) + p.seqLensSum * m.layers * m.heads * m.mla!.vHeadDim
    : p.seqLensSum * m.layers * m.heads * m.headDim * 2;
  const expert = m.intermediate * 3 * H;
  const denseFfn = m.denseIntermediate * 3 * H;
  const L = m.layers;
  let weightsRead: number, weightsComputed: number;
  if (path === 'qwen') {
    const shared = m.sharedIntermediate * 3 * H;
    weightsRead = L * (p.expertActivation * expert + shared + attn);
    weightsComputed = L * (attn + expert + shared);
  } else if (path === 'qwen3') {
    weightsRead = m.moeLayers * p.expertActivation * expert + m.denseLayers * denseFfn + L * attn;
    weightsComputed = m.moeLayers * expert + m.denseLayers * denseFfn + L * attn;
  } else if (path === 'deepseek') {
    const shared = 2 * expert;
    weightsRead = L * attn + m.moeLayers * (p.expertActivation * expert + shared) + m.denseLayers * denseFfn;
    weightsComputed = L * attn + m.moeLayers * (expert + shared) + m.denseLayers * denseFfn;
  } else {
    weightsRead = L * (p.expertActivation * expert + attn);
    weightsComputed = L * (attn + expert);
  }
  const tokens = p.phase === 'prefill' ? p.seqLensSum : p.batchSize;
  const tps = tokens / p.seconds;
  const smbu = ((weightsRead + p.seqLensSum * kvPerTok) * b) / p.seconds / (gpus * bw);
  const smfu = ((weightsComputed + score) * 2 * tps) / ((gpus * theirPeak) / 2);
  return { smbu, smfu, tokensPerSecond: tps, path };
}

/** Why ours differs from theirs on this path (printed beside the figures). */
export function differenceReasons(path: TheirPath, m: ModelShape): { smbu: string; smfu: string } {
  const shared =
    m.sharedCount === 0 && path !== 'deepseek'
      ? 'no shared experts in either'
      : path === 'deepseek'
        ? `shared experts: theirs hard-codes 2 of the routed width (${2 * m.intermediate}), ours reads the config (${m.sharedCount}, width ${m.sharedIntermediate})`
        : path === 'qwen3' || path === 'default'
          ? `shared experts: theirs none on this path, ours ${m.sharedCount} (width ${m.sharedIntermediate})`
          : `shared experts: both count width ${m.sharedIntermediate}`;
  const layers = path === 'qwen' || path === 'default' ? `; theirs treats all ${m.layers} layers as MoE, ours ${m.moeLayers} MoE + ${m.denseLayers} dense` : '';
  return {
    smbu: `${shared}; ours adds the router (H·E per MoE layer)${layers}`,
    smfu: `k = ${m.topK} routed experts per token computed (theirs counts 1); ${shared}; no attention-score term (activation work, not weights); dense peak (theirs: half its table's figure)`,
  };
}
