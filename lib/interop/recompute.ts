// MoE-CAP's per-pass S-MBU and S-MFU (its default path, moe_cap/utils/basic_utils.py) beside ours
// (lib/cap/metrics.ts definitions). Differences, each named in the output:
//   S-MFU: it counts one expert per token (2·3HF) where k are computed, and divides by half its
//          table's peak (a sparse figure for bf16, but not for fp32); we use k and the dense peak.
//   Shared experts: its DeepSeek path assumes 2; we read the model config.
import { findDatasheet, type DatasheetEntry } from '../cap/hardware';
import type { ModelShape } from './model_shape';
import type { MoecapPass } from './moecap_folder';

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
    const q = m.mla.qLoraRank ? m.hidden * m.mla.qLoraRank + m.mla.qLoraRank * m.heads * (m.mla.nopeDim + m.mla.ropeDim) : m.hidden * m.heads * (m.mla.nopeDim + m.mla.ropeDim);
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
export function oursForPass(p: MoecapPass, m: ModelShape, precision: string, d: DatasheetEntry, gpus: number): PassFigures {
  const b = bytesPerParam(precision);
  const att = attentionParams(m);
  const expert = 3 * m.hidden * m.intermediate;
  const shared = 3 * m.hidden * m.sharedIntermediate;
  const dense = m.denseLayers * 3 * m.hidden * m.denseIntermediate;
  const params = m.moeLayers * (p.expertActivation * expert + shared + m.hidden * m.experts) + m.layers * att.weights + dense;
  const bytes = params * b + p.seqLensSum * m.layers * att.kvPerToken * b;
  const tokens = p.phase === 'prefill' ? p.seqLensSum : p.batchSize;
  const tps = tokens / p.seconds;
  const flopsPerTok = 2 * (m.moeLayers * (m.topK * expert + shared + m.hidden * m.experts) + m.layers * att.weights + dense);
  const peak = densePeak(d, precision) ?? NaN;
  return { smbu: bytes / p.seconds / (gpus * d.memoryBandwidth), smfu: (tps * flopsPerTok) / (gpus * peak), tokensPerSecond: tps };
}

/**
 * MoE-CAP's default path, re-derived: S-MBU = (L·(A·S_e + attn) + kv)·precision / t / (n·BW),
 * S-MFU = (L·(attn + S_e) + attn_score)·2·tokens/s / (n·peak/2), sizes in parameters, L = all layers.
 * `theirPeak`: the FLOP figure of its table for this GPU and dtype.
 */
export function theirsForPass(p: MoecapPass, m: ModelShape, precision: string, bw: number, theirPeak: number, gpus: number): PassFigures {
  const b = bytesPerParam(precision);
  const attn = m.hidden * (m.heads * m.headDim + m.kvHeads * m.headDim * 2) + m.heads * m.headDim * m.hidden;
  const expert = m.intermediate * 3 * m.hidden;
  const kvPerTok = 2 * m.layers * m.headDim * m.kvHeads;
  const kv = p.seqLensSum * kvPerTok;
  const score = (p.seqLensSum * m.layers * m.heads * m.headDim) * 2;
  const tokens = p.phase === 'prefill' ? p.seqLensSum : p.batchSize;
  const tps = tokens / p.seconds;
  const smbu = ((m.layers * (p.expertActivation * expert + attn) + kv) * b) / p.seconds / (gpus * bw);
  const smfu = ((m.layers * (attn + expert) + score) * 2 * tps) / ((gpus * theirPeak) / 2);
  return { smbu, smfu, tokensPerSecond: tps };
}
