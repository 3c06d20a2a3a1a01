// MoE-CAP-compatible output files, for people who already use its dashboards
// (field names from the public MoE-CAP repository, Auto-CAP/MoE-CAP, moe_cap/runner/openai_api_profile.py
// and moe_cap/utils/continuous_batching_utils.py):
//   legacy flat  cap_metrics_<dataset>_<ts>.json: prefill_smbu, prefill_smfu, decoding_smbu,
//                decoding_smfu, kv_size, decoding_throughput, prefill_tp, ttft, tpot, cost,
//                model_name, method, precision, gpu_type, dataset, batch_size, …
//   current      <out>/<org>/<model>/ (MoE-CAP's get_model_simple_name: the last two parts of the HF id)
//                output_data_<dataset>_<ts>.jsonl     one record per request (here: per sequence of the batch)
//                metrics_<dataset>_<ts>.json          {performance, expert_activation, batch_token_profile, quality?}
//                metadata_<dataset>_<ts>.json         {hardware, model_config, system_environment}
//                detailed_results_<dataset>_<ts>.jsonl one record per forward pass (prefill pass or decode step)
// The hardware is the device the layers ran on (a CPU run is never filed as a GPU run, whatever
// peaks it was projected with); GPU names are in MoE-CAP's form ("NVIDIA-H100-HBM3-80GB");
// num_gpus is the device count, never 0.
// Differences, stated in the files (`moecap_notes`): times cover the MoE layers run (no attention),
// `cost` is USD per 1M tokens (MoE-CAP's is the run's hardware cost), and a figure moecap could not
// measure is null rather than 0.
import * as path from 'path';
import * as fs from 'fs';
import { writeFileAtomic as writeTextAtomic, writeJsonAtomic } from '../io/atomic_write';
import { findPreset } from './presets';
import type { ConfigResult, Results } from './results';
import { matchTaskAccuracy } from './task_accuracy';

const PRECISION: Record<string, string> = { f32: 'float32', bf16: 'bfloat16', int8: 'int8', int4: 'int4', mxfp4: 'mxfp4', fp8: 'fp8' };

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

/** Our datasheet names as MoE-CAP spells the device (moe_cap/utils/hardware_utils.py keys). */
export const MOECAP_GPU_NAMES: Record<string, string> = {
  'h100-sxm': 'NVIDIA-H100-HBM3-80GB',
  'h100-pcie': 'NVIDIA-H100-PCIe-80GB',
  h200: 'NVIDIA-H200-141GB',
  'a100-sxm': 'NVIDIA-A100-SXM4-80GB',
  'a100-pcie': 'NVIDIA-A100-PCIe-80GB',
  a6000: 'NVIDIA-RTX-A6000-48GB',
  'rtx-4090': 'NVIDIA-GeForce-RTX-4090-24GB',
  l40s: 'NVIDIA-L40S-48GB',
};

/** A device name as MoE-CAP forms it: spaces to '-', any "<n>GB" part dropped, the memory in GB appended. */
export function moecapDeviceName(name: string, memoryBytes: number): string {
  const dashed = name.trim().replace(/\s+/g, '-');
  const parts = dashed.split('-').filter((p) => !/^\d+GB$/.test(p) && p.length > 0);
  return `${parts.join('-')}-${Math.round(memoryBytes / 1024 ** 3)}GB`;
}

/** The device the layers ran on, in MoE-CAP's form, and how many: never a projection's device, never 0. */
export function moecapHardware(results: Results): { gpu_type: string; num_gpus: number } {
  const d = results.device ?? { kind: 'cpu', name: String((results.machine as { cpuModel?: string }).cpuModel ?? 'unknown'), count: 1 };
  const count = Math.max(1, d.count);
  if (d.kind === 'gpu') {
    const p = results.peaks;
    const known = !('available' in p) && p.kind === 'datasheet' ? MOECAP_GPU_NAMES[p.name] : undefined;
    return { gpu_type: known ?? d.name.trim().replace(/\s+/g, '-'), num_gpus: count };
  }
  const mem = Number((results.machine as { totalMemoryBytes?: number }).totalMemoryBytes ?? 0);
  return { gpu_type: `CPU-${moecapDeviceName(d.name, mem)}`, num_gpus: count };
}

export function gpuType(results: Results): string {
  const h = moecapHardware(results);
  return `${h.num_gpus}x${h.gpu_type}`;
}

export interface MoeCapRecords {
  dataset: string;
  /** "<org>/<model>", as MoE-CAP's get_model_simple_name. */
  modelSimpleName: string;
  legacy: Record<string, unknown>;
  metrics: Record<string, unknown>;
  metadata: Record<string, unknown>;
  outputData: Array<Record<string, unknown>>;
  detailedResults: Array<Record<string, unknown>>;
}

/** MoE-CAP's get_model_simple_name: the last two parts of the model id. */
export function modelSimpleName(modelId: string): string {
  const parts = modelId.split('/').filter((p) => p.length > 0);
  return parts.length >= 2 ? `${parts[parts.length - 2]}/${parts[parts.length - 1]}` : modelId;
}

/**
 * Requests: each sequence of the batch is one request (a prefill of seqLen tokens, then the decode
 * steps); latency = TTFT + steps × TPOT from the medians.
 */
function outputData(pre: ConfigResult | undefined, dec: ConfigResult | undefined): Array<Record<string, unknown>> {
  const any = (pre ?? dec)!;
  const inTok = pre ? pre.options.seqLen : 0;
  const steps = dec ? dec.samples : 0;
  const ttft = pre?.timing.ttftSeconds?.median ?? 0;
  const tpot = dec?.timing.tpotSeconds?.median ?? 0;
  return Array.from({ length: any.options.batch }, (_, i) => ({
    index: i,
    input_tokens: inTok,
    output_tokens: '',
    input_token_count: inTok,
    output_token_count: steps,
    requested_output_tokens: steps,
    success: true,
    latency_s: ttft + steps * tpot,
    ttft_s: ttft,
  }));
}

/** One record per timed forward pass, in order: prefill passes first, then decode steps. */
function detailedResults(pre: ConfigResult | undefined, dec: ConfigResult | undefined): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const c of [pre, dec]) {
    if (!c?.passes) continue;
    const prefill = c.options.phase === 'prefill';
    c.passes.seconds.forEach((sec, i) => {
      out.push({
        index: out.length,
        forward_mode: prefill ? 'prefill' : 'decode',
        expert_activation: c.passes!.distinctExperts[i],
        batch_size: c.options.batch,
        seq_lens_sum: c.tokensPerPass,
        ...(prefill ? { ttft: sec } : { tpot: sec }),
      });
    });
  }
  return out;
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
      ...cs.flatMap((c) =>
        (
          [
            ['S-MBU', c.smbu],
            ['S-MFU', c.smfu],
          ] as const
        ).flatMap(([name, u]) => ('value' in u && u.above1 ? [`${c.options.phase} ${name} ${u.value.toPrecision(3)} is above 1: ${u.above1}`] : [])),
      ),
      ...(results.projected
        ? [
            `S-MBU/S-MFU are a projection for ${results.projected.device} from ${results.device?.kind === 'gpu' ? results.device.name : 'CPU'} measurements (${results.projected.method}); hardware is the device that ran`,
          ]
        : []),
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
    const requests = outputData(pre, dec);
    const e2e = requests.reduce((a, r) => Math.max(a, r.latency_s as number), 0);
    const metrics: Record<string, unknown> = {
      performance: {
        // MoE-CAP's wall-time metrics: mean end-to-end seconds per request and requests per second.
        e2e_s: e2e,
        'request/s': e2e > 0 ? requests.length / e2e : 0,
        ttft: legacy.ttft ?? 0,
        tpot: legacy.tpot ?? 0,
      },
      expert_activation: {
        avg_expert_activation_prefill: meanA(pre) ?? 0,
        avg_expert_activation_decode: meanA(dec) ?? 0,
      },
      batch_token_profile: {
        prefill_tokens: pre ? pre.options.seqLen * requests.length : 0,
        prefill_tokens_per_request: pre ? pre.options.seqLen : 0,
        prefill_avg_batch_size: pre ? pre.options.batch : 0,
        decode_generated_tokens: dec ? dec.samples * requests.length : 0,
        decode_generated_tokens_per_request: dec ? dec.samples : 0,
        decode_avg_batch_size: dec ? dec.options.batch : 0,
      },
      moecap_notes: notes,
    };
    const ta = matchTaskAccuracy(results.taskAccuracy, any.options.preset, any.options.dtype);
    if (ta) metrics.quality = { acc: ta.accuracy, total: 0 };
    const metadata = {
      hardware: moecapHardware(results),
      model_config: { model_name: modelName, precision: legacy.precision },
      system_environment: {
        inference_engine: 'moecap',
        inference_engine_version: results.tool.version,
        batch_size: any.options.batch,
        avg_batch_size_prefill: pre ? pre.options.batch : 0,
        avg_batch_size_decode: dec ? dec.options.batch : 0,
      },
    };
    out.push({
      dataset,
      modelSimpleName: modelSimpleName(modelName),
      legacy,
      metrics,
      metadata,
      outputData: requests,
      detailedResults: detailedResults(pre, dec),
    });
  }
  return out;
}

/** MoE-CAP's timestamp format: %Y%m%d_%H%M%S. */
export function moecapTimestamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}_${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/** Writes the MoE-CAP files under outDir/<org>/<model>/ (as MoE-CAP does); returns their paths. */
export function writeMoecapFiles(outDir: string, results: Results, when = new Date(results.createdAt)): string[] {
  const ts = moecapTimestamp(when);
  const written: string[] = [];
  for (const r of moecapRecords(results)) {
    const dir = path.join(outDir, ...r.modelSimpleName.split('/'));
    fs.mkdirSync(dir, { recursive: true });
    for (const [prefix, body] of [
      ['cap_metrics', r.legacy],
      ['metrics', r.metrics],
      ['metadata', r.metadata],
    ] as const) {
      const f = path.join(dir, `${prefix}_${r.dataset}_${ts}.json`);
      writeJsonAtomic(f, body);
      written.push(f);
    }
    for (const [prefix, rows] of [
      ['output_data', r.outputData],
      ['detailed_results', r.detailedResults],
    ] as const) {
      const f = path.join(dir, `${prefix}_${r.dataset}_${ts}.jsonl`);
      writeTextAtomic(f, rows.map((x) => JSON.stringify(x) + '\n').join(''));
      written.push(f);
    }
  }
  return written;
}
