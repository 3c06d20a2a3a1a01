// A results.json (schema/results.schema.json) for engine runs measured by MoE-CAP, so `moecap report`
// draws the same page as for our own runs. Honest labels: the timings, expert activation and task
// accuracy are MoE-CAP's measurements on the engine's GPUs (top-level `source`); S-MBU, S-MFU and
// cost are ours, recomputed from them; what MoE-CAP does not record (per-layer routing, counters,
// offload, layer fidelity, host CPU) is absent or {available:false, reason}.
import * as crypto from 'crypto';
import * as path from 'path';
import type { PriceTable } from '../cap/cost';
import { peaksFromDatasheet } from '../cap/hardware';
import { expectedDistinctUniform, summarize } from '../cap/metrics';
import { SCHEMA_VERSION, type ConfigResult, type Results, type TaskAccuracy } from '../cap/results';
import { capSummary } from '../cap/runner';
import { VERSION } from '../version';
import type { ModelShape } from './model_shape';
import type { PhaseAnalysis, RunAnalysis } from './moecap_analysis';
import { passTokens } from './moecap_folder';
import { bytesPerParam } from './recompute';

/** Our dtype label for an engine precision (bytes per weight decide the bandwidth figures): MXFP4
 * is 'mxfp4', the engine's own dtype; another 4-bit float (NVFP4: 16-element blocks, fp8 scales)
 * stays 'fp4'. */
export function dtypeLabel(precision: string): string {
  const p = precision.toLowerCase();
  if (/mxfp4/.test(p)) return 'mxfp4';
  if (/fp4/.test(p)) return 'fp4';
  if (/fp8|float8/.test(p)) return 'fp8';
  if (/^(float16|fp16|half)$/.test(p)) return 'fp16';
  const b = bytesPerParam(precision);
  return b === 4 ? 'f32' : b === 2 ? 'bf16' : b === 1 ? 'int8' : 'int4';
}

const engineOf = (a: RunAnalysis) => ({ name: a.run.engine, version: a.run.engineVersion });

function configFor(a: RunAnalysis, ph: PhaseAnalysis, model: ModelShape, index: number): ConfigResult {
  const { run, datasheet: d } = a;
  const eng = engineOf(a);
  const b = bytesPerParam(a.precision);
  const meanOf = (f: (p: PhaseAnalysis['passes'][number]) => number) => ph.passes.reduce((s, p) => s + f(p), 0) / ph.passes.length;
  const tokens = ph.passes.reduce((s, p) => s + passTokens(p), 0);
  const seconds = ph.passes.reduce((s, p) => s + p.seconds, 0);
  const batch = Math.max(1, Math.round(meanOf((p) => p.batchSize)));
  const tokensPerPass = Math.max(1, Math.round(tokens / ph.passes.length));
  const activation = meanOf((p) => p.expertActivation);
  const passSeconds = summarize(ph.passes.map((p) => p.seconds));
  const peak = ph.ours[0].peakFlops;
  const peaks = `datasheet ${d.name} × ${run.numGpus} GPU(s)`;
  // The client's request TTFT, where MoE-CAP recorded it, is the prefill config's TTFT.
  const requestTtft = ph.phase === 'prefill' ? (a.requests?.latency.ttft ?? null) : null;
  return {
    id: `${run.key}-${ph.phase}`,
    index,
    options: {
      preset: a.modelName,
      layers: model.layers,
      phase: ph.phase,
      batch,
      seqLen: ph.phase === 'prefill' ? Math.max(1, Math.round(tokens / ph.passes.length / batch)) : 1,
      steps: 1,
      dtype: dtypeLabel(a.precision),
      threads: null,
      capacityFactor: 0, // engines route dropless: no capacity limit
      residentFraction: 1,
      routing: { kind: 'natural' },
      seed: 0,
    },
    layer: {
      hidden: model.hidden,
      intermediate: model.intermediate,
      experts: model.experts,
      topK: model.topK,
      sharedIntermediate: model.sharedIntermediate,
      dtype: a.precision,
      isa: `GPU: ${run.numGpus}× ${run.gpuName ?? d.name} (${eng.name ?? 'engine not recorded'})`,
      threads: 0,
      expertBytes: 3 * model.hidden * model.intermediate * b,
      routerBytes: model.hidden * model.experts * b,
      sharedBytes: 3 * model.hidden * model.sharedIntermediate * b,
    },
    tokensPerPass,
    warmupPasses: 0,
    samples: ph.passes.length,
    timing: {
      passSeconds,
      ttftSeconds: requestTtft,
      tpotSeconds: ph.phase === 'decode' ? passSeconds : null,
      source: `measured by MoE-CAP (server-side forward-pass latency) on ${eng.name ?? 'the engine'}; one sample per forward pass in its detailed_results${requestTtft ? `; TTFT per request, client-measured (${requestTtft.n} requests in ${path.basename(a.requests!.records.file)})` : ''}`,
    },
    tokensPerSecond: tokens / seconds,
    achieved: {
      bytesPerSecond: ph.ours.reduce((s, o) => s + o.bytes, 0) / seconds,
      flopsPerSecond: (tokens / seconds) * ph.ours[0].flopsPerToken,
    },
    routing: {
      distinctExperts: [activation],
      meanDistinctExperts: activation,
      expectedUniform: expectedDistinctUniform(model.experts, model.topK, tokensPerPass),
      expertShare: [],
      designAgreement: null,
      dropRate: 0,
    },
    smbu: {
      value: ph.oursMean.smbu,
      bytesPerSample: ph.ours.reduce((s, o) => s + o.bytes, 0) / ph.ours.length,
      peakBandwidth: run.numGpus * d.memoryBandwidth,
      peaks,
    },
    smfu: Number.isFinite(peak)
      ? { value: ph.oursMean.smfu, flopsPerToken: ph.ours[0].flopsPerToken, peakFlops: run.numGpus * peak, peakDtype: dtypeLabel(a.precision), peaks }
      : { available: false, reason: `datasheet ${d.name} has no dense peak for ${a.precision}` },
    offload: { available: false, reason: 'engine run with every expert in GPU memory; MoE-CAP measures no offload' },
    counters: { available: false, reason: 'MoE-CAP records no hardware counters' },
    cost: ph.cost,
    fidelity: { available: false, reason: "no layer fidelity for an engine run; the accuracy axis is MoE-CAP's task accuracy" },
    source: {
      measuredBy: 'MoE-CAP',
      engine: eng.name,
      engineVersion: eng.version,
      theirs: ph.theirs ? { smbu: ph.theirs.smbu, smfu: ph.theirs.smfu, from: ph.theirs.from } : null,
      theirPath: ph.theirPath,
      reasons: ph.reasons,
      costPerPass: summarize(ph.costPerPass),
      requests: requestsSource(a),
    },
  } as ConfigResult;
}

// The run's request latency beside MoE-CAP's (both phases carry it: a request spans them).
function requestsSource(a: RunAnalysis): Record<string, unknown> | null {
  const r = a.requests;
  if (!r) return null;
  const l = r.latency;
  return {
    file: path.basename(r.records.file),
    layout: r.records.layout,
    measuredBy: 'MoE-CAP client',
    attempted: l.attempted,
    completed: l.completed,
    ttftSeconds: l.ttft,
    tpotSeconds: l.tpot,
    e2eSeconds: l.e2e,
    theirs: { ttft: r.ttft.theirs, tpot: r.tpot.theirs, from: `${r.ttft.from}, ${r.tpot.from}` },
    reasons: { ttft: r.ttft.reason, tpot: r.tpot.reason },
  };
}

function taskAccuracyOf(a: RunAnalysis): TaskAccuracy | null {
  const q = a.run.metrics?.quality;
  if (!q || typeof q.acc !== 'number' || !(q.acc >= 0)) return null;
  const acc = q.acc > 1 ? q.acc / 100 : q.acc; // MoE-CAP prints some accuracies in percent
  if (acc > 1) return null;
  const dataset = a.run.key.replace(/_\d{8}_\d{6}$/, '');
  return {
    task: dataset,
    accuracy: acc,
    source: `measured by MoE-CAP (${dataset}, ${Number.isFinite(q.total) ? q.total : '?'} samples) on ${engineOf(a).name ?? 'the engine'}`,
    preset: a.modelName,
    dtype: dtypeLabel(a.precision),
  };
}

/** Every run of a folder as one results object (configs: run × phase). */
export function buildResults(analyses: RunAnalysis[], model: ModelShape, prices: PriceTable, folder: string): Results {
  const configs: ConfigResult[] = [];
  for (const a of analyses) for (const ph of a.phases) configs.push(configFor(a, ph, model, configs.length));
  const tas = analyses.map(taskAccuracyOf).filter((t): t is TaskAccuracy => t !== null);
  const taskAccuracy = tas.length ? tas : null;
  const first = analyses[0];
  const eng = engineOf(first);
  const now = new Date().toISOString();
  return {
    schemaVersion: SCHEMA_VERSION,
    tool: { name: 'moecap', version: VERSION },
    status: 'complete',
    createdAt: now,
    updatedAt: now,
    planFingerprint: crypto
      .createHash('sha256')
      .update(`${folder}|${analyses.map((x) => x.run.key).join(',')}`)
      .digest('hex')
      .slice(0, 16),
    plan: { importedFrom: folder, model: model.source },
    machine: {
      cpuModel: 'host CPU not recorded by MoE-CAP',
      gpu: `${first.run.numGpus}× ${first.run.gpuName ?? first.datasheet.name}`,
      backend: `${eng.name ?? 'engine'}${eng.version ? ` ${eng.version}` : ''}, measured by MoE-CAP; S-MBU/S-MFU/cost recomputed by moecap analyze`,
    },
    peaks: peaksFromDatasheet(first.datasheet),
    device: { kind: 'gpu', name: first.run.gpuName ?? first.datasheet.name, count: Math.max(1, first.run.numGpus) },
    projected: null,
    prices,
    taskAccuracy,
    configs,
    cap: configs.length ? capSummary(configs, taskAccuracy, 'ratio-to-best') : null,
    source: {
      kind: 'imported',
      measuredBy: 'MoE-CAP',
      engines: analyses.map((x) => ({
        run: x.run.key,
        engine: engineOf(x).name,
        engineVersion: engineOf(x).version,
        gpu: x.run.gpuName,
        numGpus: x.run.numGpus,
        numGpusRecorded: x.run.numGpusRecorded,
        precision: x.precision,
        model: x.modelName,
        theirCost: x.theirCost,
      })),
      folder,
      recomputed: "S-MBU, S-MFU and cost per 1M tokens by moecap analyze (lib/interop); timings, expert activation and accuracy are MoE-CAP's",
    },
  } as Results;
}
