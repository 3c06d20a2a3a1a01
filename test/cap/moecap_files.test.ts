// Our MoE-CAP files against what MoE-CAP (Auto-CAP/MoE-CAP, moe_cap/runner/openai_api_profile.py)
// writes today, field by field: folder <out>/<org>/<model>/, the four current files plus the legacy
// flat one, each field's name and JSON type, 0 where MoE-CAP writes 0 for an absent figure, GPU names
// in its form, num_gpus never 0, one detailed_results record per forward pass. Any drift fails here.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { run } from '../../lib/cap/runner';
import { moecapDeviceName, moecapHardware, moecapRecords, modelSimpleName, MOECAP_GPU_NAMES } from '../../lib/cap/moecap_files';
import type { Results } from '../../lib/cap/results';

type Kind = 'number' | 'string' | 'boolean' | 'number|null' | 'object';
const isKind = (v: unknown, k: Kind) => (k === 'number|null' ? v === null || typeof v === 'number' : typeof v === k && v !== null);

/** The fields MoE-CAP's runner writes and its readers take, with their JSON types. */
const OUTPUT_DATA: Record<string, Kind> = {
  index: 'number',
  input_tokens: 'number',
  output_tokens: 'string',
  input_token_count: 'number',
  output_token_count: 'number',
  requested_output_tokens: 'number',
  success: 'boolean',
  latency_s: 'number',
  ttft_s: 'number',
};
const METRICS: Record<string, Record<string, Kind>> = {
  performance: { ttft: 'number', tpot: 'number' },
  expert_activation: { avg_expert_activation_prefill: 'number', avg_expert_activation_decode: 'number' },
  batch_token_profile: {
    prefill_tokens: 'number',
    prefill_tokens_per_request: 'number',
    prefill_avg_batch_size: 'number',
    decode_generated_tokens: 'number',
    decode_generated_tokens_per_request: 'number',
    decode_avg_batch_size: 'number',
  },
};
const METADATA: Record<string, Record<string, Kind>> = {
  hardware: { gpu_type: 'string', num_gpus: 'number' },
  model_config: { model_name: 'string', precision: 'string' },
  system_environment: {
    inference_engine: 'string',
    inference_engine_version: 'string',
    batch_size: 'number|null',
    avg_batch_size_prefill: 'number',
    avg_batch_size_decode: 'number',
  },
};
const DETAILED: Record<string, Kind> = { index: 'number', forward_mode: 'string', expert_activation: 'number', batch_size: 'number', seq_lens_sum: 'number' };
const LEGACY: Record<string, Kind> = {
  prefill_smbu: 'number|null',
  prefill_smfu: 'number|null',
  decoding_smbu: 'number|null',
  decoding_smfu: 'number|null',
  decoding_throughput: 'number|null',
  prefill_tp: 'number|null',
  ttft: 'number|null',
  tpot: 'number|null',
  cost: 'number|null',
  model_name: 'string',
  method: 'string',
  precision: 'string',
  gpu_type: 'string',
  dataset: 'string',
  batch_size: 'number',
};
const PRECISIONS = ['bfloat16', 'float16', 'float32', 'int8', 'int4'];

function expectFields(obj: Record<string, unknown>, spec: Record<string, Kind>, where: string) {
  for (const [k, kind] of Object.entries(spec)) {
    if (!(k in obj)) throw new Error(`${where}: missing '${k}'`);
    if (!isKind(obj[k], kind)) throw new Error(`${where}: '${k}' is ${JSON.stringify(obj[k])}, expected ${kind}`);
  }
}
const jsonl = (f: string) =>
  fs
    .readFileSync(f, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l));

describe('files as MoE-CAP writes them', () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-files-'));
  let results: Results;
  afterAll(() => fs.rmSync(out, { recursive: true, force: true }));
  beforeAll(async () => {
    results = await run(
      {
        presets: ['tiny'],
        layers: [2],
        phases: ['prefill', 'decode'],
        batch: [2],
        seqLen: [8],
        steps: [3],
        repeats: 2,
        dtypes: ['bf16'],
        calibrateIfMissing: false,
        hardware: 'h100-sxm',
      },
      { outDir: out },
    );
  }, 120000);

  test('folder depth <out>/<org>/<model>/ and the file set, one timestamp', () => {
    const dir = path.join(out, 'moecap', 'tiny');
    const files = fs.readdirSync(dir).sort();
    const ts = /_(\d{8}_\d{6})\.jsonl?$/.exec(files[0])![1];
    const ds = 'moecap-natural-bf16-b2';
    expect(files).toEqual([
      `cap_metrics_${ds}_${ts}.json`,
      `detailed_results_${ds}_${ts}.jsonl`,
      `metadata_${ds}_${ts}.json`,
      `metrics_${ds}_${ts}.json`,
      `output_data_${ds}_${ts}.jsonl`,
    ]);
  });

  test('every field MoE-CAP writes, with its type; hardware is the CPU that ran, never the projection', () => {
    const dir = path.join(out, 'moecap', 'tiny');
    const f = (prefix: string) =>
      path.join(
        dir,
        fs.readdirSync(dir).find((x) => x.startsWith(prefix))!,
      );
    const metrics = JSON.parse(fs.readFileSync(f('metrics_'), 'utf8'));
    for (const [section, spec] of Object.entries(METRICS)) expectFields(metrics[section], spec, `metrics.${section}`);
    const meta = JSON.parse(fs.readFileSync(f('metadata_'), 'utf8'));
    for (const [section, spec] of Object.entries(METADATA)) expectFields(meta[section], spec, `metadata.${section}`);
    expect(PRECISIONS).toContain(meta.model_config.precision);
    expect(meta.hardware.num_gpus).toBeGreaterThanOrEqual(1); // a divisor in MoE-CAP's cost and per-GPU figures
    expect(meta.hardware.gpu_type).toMatch(/^CPU-/);
    expect(JSON.stringify(meta)).not.toMatch(/h100|H100/);
    const legacy = JSON.parse(fs.readFileSync(f('cap_metrics_'), 'utf8'));
    expectFields(legacy, LEGACY, 'cap_metrics');
    expect(legacy.gpu_type).toBe(`${meta.hardware.num_gpus}x${meta.hardware.gpu_type}`);
    const requests = jsonl(f('output_data_'));
    expect(requests).toHaveLength(2); // one per sequence of the batch
    requests.forEach((r, i) => {
      expectFields(r, OUTPUT_DATA, `output_data[${i}]`);
      expect(r.index).toBe(i);
    });
    const dec = results.configs.find((c) => c.options.phase === 'decode')!;
    const pre = results.configs.find((c) => c.options.phase === 'prefill')!;
    expect(requests[0].latency_s).toBeCloseTo(pre.timing.ttftSeconds!.median + dec.samples * dec.timing.tpotSeconds!.median, 12);
    expect(metrics.performance.ttft).toBe(pre.timing.ttftSeconds!.median);
    expect(metrics.performance.tpot).toBe(dec.timing.tpotSeconds!.median);
  });

  test('detailed_results: one record per timed pass; prefill carries ttft, decode tpot (seconds)', () => {
    const dir = path.join(out, 'moecap', 'tiny');
    const rows = jsonl(
      path.join(
        dir,
        fs.readdirSync(dir).find((x) => x.startsWith('detailed_results_'))!,
      ),
    );
    const pre = results.configs.find((c) => c.options.phase === 'prefill')!;
    const dec = results.configs.find((c) => c.options.phase === 'decode')!;
    expect(rows).toHaveLength(pre.samples + dec.samples);
    rows.forEach((r, i) => {
      expectFields(r, DETAILED, `detailed_results[${i}]`);
      expect(r.index).toBe(i);
      expect(['prefill', 'decode', 'decoding']).toContain(r.forward_mode);
      const lat = r.forward_mode === 'prefill' ? r.ttft : r.tpot;
      expect(typeof lat).toBe('number');
      expect(lat).toBeGreaterThan(0);
    });
    expect(rows.filter((r) => r.forward_mode === 'prefill').map((r) => r.ttft)).toEqual(pre.passes!.seconds);
    expect(rows.filter((r) => r.forward_mode === 'decode').map((r) => r.tpot)).toEqual(dec.passes!.seconds);
  });
});

test('names in MoE-CAP form: model folder, GPU names, CPU devices; num_gpus never 0', () => {
  expect(modelSimpleName('allenai/OLMoE-1B-7B-0924')).toBe('allenai/OLMoE-1B-7B-0924');
  expect(modelSimpleName('/models/org/name')).toBe('org/name');
  expect(modelSimpleName('single')).toBe('single');
  // MoE-CAP's get_gpu_details: spaces to '-', a "<n>GB" part dropped, memory in GiB appended
  expect(moecapDeviceName('NVIDIA H100 80GB HBM3', 80 * 1024 ** 3)).toBe('NVIDIA-H100-HBM3-80GB');
  expect(moecapDeviceName('NVIDIA A100-SXM4-80GB', 80 * 1024 ** 3)).toBe('NVIDIA-A100-SXM4-80GB');
  expect(MOECAP_GPU_NAMES['h100-sxm']).toBe('NVIDIA-H100-HBM3-80GB');
  const base = { machine: { cpuModel: 'AMD EPYC 9R45', totalMemoryBytes: 24 * 1024 ** 3 }, peaks: { available: false, reason: 'x' } } as unknown as Results;
  expect(moecapHardware({ ...base, device: { kind: 'cpu', name: 'AMD EPYC 9R45', count: 1 } })).toEqual({ gpu_type: 'CPU-AMD-EPYC-9R45-24GB', num_gpus: 1 });
  expect(moecapHardware({ ...base, device: { kind: 'cpu', name: 'x', count: 0 } }).num_gpus).toBe(1);
  const gpu = {
    ...base,
    device: { kind: 'gpu' as const, name: 'NVIDIA H100 SXM5 80GB', count: 2 },
    peaks: { kind: 'datasheet', name: 'h100-sxm' },
  } as unknown as Results;
  expect(moecapHardware(gpu)).toEqual({ gpu_type: 'NVIDIA-H100-HBM3-80GB', num_gpus: 2 });
});

test('a utilisation above 1 is flagged in the files too (moecap_notes), with its cause', () => {
  const cfg = (phase: string, smbu: object) => ({
    id: phase,
    index: 0,
    options: {
      preset: 'tiny',
      layers: 1,
      phase,
      batch: 1,
      seqLen: 8,
      steps: 2,
      dtype: 'f32',
      threads: null,
      capacityFactor: 0,
      residentFraction: 1,
      routing: { kind: 'natural' },
      seed: 1,
    },
    tokensPerPass: 1,
    samples: 2,
    timing: {
      passSeconds: { median: 1e-3 },
      ttftSeconds: phase === 'prefill' ? { median: 1e-3 } : null,
      tpotSeconds: phase === 'decode' ? { median: 1e-3 } : null,
    },
    tokensPerSecond: 1000,
    routing: { meanDistinctExperts: 2 },
    smbu,
    smfu: { available: false, reason: 'x' },
    cost: { available: false, reason: 'x' },
  });
  const results = {
    tool: { version: '0' },
    machine: { cpuModel: 'Test CPU', totalMemoryBytes: 2 ** 30 },
    peaks: { kind: 'measured', name: 'm' },
    device: { kind: 'cpu', name: 'Test CPU', count: 1 },
    projected: null,
    taskAccuracy: null,
    configs: [cfg('decode', { value: 1.4, bytesPerSample: 1, peakBandwidth: 1, peaks: 'p', above1: 'the read bandwidth moved during the config' })],
  };
  const [r] = moecapRecords(results as unknown as Results);
  expect(r.legacy.decoding_smbu).toBe(1.4);
  expect(r.legacy.moecap_notes).toContain('decode S-MBU 1.40 is above 1: the read bandwidth moved during the config');
  expect(r.metadata.hardware).toEqual({ gpu_type: 'CPU-Test-CPU-1GB', num_gpus: 1 });
});
