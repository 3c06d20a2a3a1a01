// MoE-CAP-compatible output files, for people who already use its dashboards
// (field names from the public MoE-CAP repository, Auto-CAP/MoE-CAP, moe_cap/runner/openai_api_profile.py
// and moe_cap/utils/continuous_batching_utils.py):
//   legacy flat  cap_metrics_<dataset>_<ts>.json: prefill_smbu, prefill_smfu, decoding_smbu,
//                decoding_smfu, kv_size, decoding_throughput, prefill_tp, ttft, tpot, cost,
//                model_name, method, precision, gpu_type, dataset, batch_size, …
//   current      metrics_<dataset>_<ts>.json  {performance, expert_activation, batch_token_profile, quality?}
//                metadata_<dataset>_<ts>.json {hardware, model_config, system_environment}
// Differences, stated in the files (`moecap_notes`): times cover the MoE layers run (no attention),
// `cost` is USD per 1M tokens (MoE-CAP's is the run's hardware cost), and a figure moecap could not
// measure is null rather than 0.
import * as path from 'path';
import * as fs from 'fs';
import { writeJsonAtomic } from '../io/atomic_write';
import { findPreset } from './presets';
import type { ConfigResult, Results } from './results';
import { matchTaskAccuracy } from './task_accuracy';

const PRECISION: Record<string, string> = { f32: 'float32', bf16: 'bfloat16', int8: 'int8', int4: 'int4' };

/** Configs that differ only in phase (and the phase's own length) share one MoE-CAP record. */
export function groupKey(c: ConfigResult): string {
  const o = c.options;
  const r = o.routing;
  return [o.preset, o.layers, o.dtype, o.batch, o.threads ?? 'all', o.capacityFactor, r.kind, r.skew ?? '', r.trace ?? '', o.seed].join('|');
}

function val<T extends object>(x: T | { available: false }, k: keyof T): number | null {
  return 'available' in x && (x as { available: boolean }).available === false ? null : ((x as T)[k] as unknown as number);
}

export function datasetName(c: ConfigResult): string {
  const r = c.options.routing;
  const routing = r.kind === 'skewed' ? `skew${r.skew}` : r.kind;
  return `moecap-${routing}-${c.options.dtype}-b${c.options.batch}`;
}

export function gpuType(results: Results): string {
  const p = results.peaks;
  if ('kind' in p && p.kind === 'datasheet') return `1x${p.name}`;
  const cpu = String((results.machine as { cpuModel?: string }).cpuModel ?? 'cpu');
  return `cpu:${cpu}`;
}

export interface MoeCapRecords {
  dataset: string;
  modelSimpleName: string;
  legacy: Record<string, unknown>;
  metrics: Record<string, unknown>;
  metadata: Record<string, unknown>;
}

export function moecapRecords(results: Results): MoeCapRecords[] {
  const groups = new Map<string, ConfigResult[]>();
  for (const c of results.configs) {
    const k = groupKey(c);
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k)!.push(c);
  }
  const out: MoeCapRecords[] = [];
  for (const cs of groups.values()) {
    const pre = cs.find((c) => c.options.phase === 'prefill');
    const dec = cs.find((c) => c.options.phase === 'decode');
    const any = (pre ?? dec)!;
    const preset = findPreset(any.options.preset);
    const modelName = preset.modelId;
    const dataset = datasetName(any);
    const cost = (c?: ConfigResult) => (c ? val(c.cost, 'usdPer1MTokens' as never) : null);
    const meanA = (c?: ConfigResult) => (c ? c.routing.meanDistinctExperts : null);
    const notes = [
      `moecap ${results.tool.version}: ${any.options.layers} MoE layer(s) of ${preset.name} run in sequence, no attention; ` +
        `ttft/tpot cover those layers only (median of the timed samples, seconds)`,
      'cost: USD per 1M tokens of the phase (decode when present, else prefill), see results.json for inputs',
      'null: not measured/computable in this run (e.g. no peaks for S-MBU/S-MFU), never a stand-in zero',
    ];
    const legacy: Record<string, unknown> = {
      prefill_smbu: pre ? val(pre.smbu, 'value' as never) : null,
      prefill_smfu: pre ? val(pre.smfu, 'value' as never) : null,
      decoding_smbu: dec ? val(dec.smbu, 'value' as never) : null,
      decoding_smfu: dec ? val(dec.smfu, 'value' as never) : null,
      kv_size: null,
      decoding_throughput: dec ? dec.tokensPerSecond : null,
      prefill_tp: pre ? pre.tokensPerSecond : null,
      ttft: pre?.timing.ttftSeconds?.median ?? null,
      tpot: dec?.timing.tpotSeconds?.median ?? null,
      cost: cost(dec) ?? cost(pre),
      cost_unit: 'USD per 1M tokens',
      model_name: modelName,
      method: 'moecap',
      precision: PRECISION[any.options.dtype] ?? any.options.dtype,
      gpu_type: gpuType(results),
      dataset,
      batch_size: any.options.batch,
      server_batch_size: null,
      moecap_config_ids: cs.map((c) => c.id),
      moecap_notes: notes,
    };
    const metrics: Record<string, unknown> = {
      performance: {
        ttft: legacy.ttft,
        tpot: legacy.tpot,
        prefill_tp: legacy.prefill_tp,
        decoding_throughput: legacy.decoding_throughput,
      },
      expert_activation: {
        avg_expert_activation_prefill: meanA(pre),
        avg_expert_activation_decode: meanA(dec),
      },
      batch_token_profile: {
        prefill_tokens: pre ? pre.tokensPerPass * pre.samples : 0,
        prefill_tokens_per_request: pre ? pre.options.seqLen : 0,
        prefill_avg_batch_size: pre ? pre.options.batch : 0,
        decode_generated_tokens: dec ? dec.tokensPerPass * dec.samples : 0,
        decode_generated_tokens_per_request: dec ? dec.samples : 0,
        decode_avg_batch_size: dec ? dec.options.batch : 0,
      },
      moecap_notes: notes,
    };
    const ta = matchTaskAccuracy(results.taskAccuracy, any.options.preset, any.options.dtype);
    if (ta) metrics.quality = { acc: ta.accuracy, total: null, task: ta.task, source: ta.source };
    const metadata = {
      hardware: { gpu_type: gpuType(results), num_gpus: 'kind' in results.peaks && results.peaks.kind === 'datasheet' ? 1 : 0 },
      model_config: { model_name: modelName, precision: legacy.precision },
      system_environment: {
        inference_engine: 'moecap',
        inference_engine_version: results.tool.version,
        batch_size: any.options.batch,
        avg_batch_size_prefill: pre ? pre.options.batch : 0,
        avg_batch_size_decode: dec ? dec.options.batch : 0,
      },
    };
    out.push({ dataset, modelSimpleName: modelName.split('/').pop()!, legacy, metrics, metadata });
  }
  return out;
}

/** MoE-CAP's timestamp format: %Y%m%d_%H%M%S. */
export function moecapTimestamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}_${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/** Writes the MoE-CAP files under outDir/<model simple name>/ (as MoE-CAP does); returns their paths. */
export function writeMoecapFiles(outDir: string, results: Results, when = new Date(results.createdAt)): string[] {
  const ts = moecapTimestamp(when);
  const written: string[] = [];
  for (const r of moecapRecords(results)) {
    const dir = path.join(outDir, r.modelSimpleName);
    fs.mkdirSync(dir, { recursive: true });
    for (const [prefix, body] of [['cap_metrics', r.legacy], ['metrics', r.metrics], ['metadata', r.metadata]] as const) {
      const f = path.join(dir, `${prefix}_${r.dataset}_${ts}.json`);
      writeJsonAtomic(f, body);
      written.push(f);
    }
  }
  return written;
}
