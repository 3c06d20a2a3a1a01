import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { analyzeCommand } from '../../lib/cli/commands/analyze';
import { shapeFromConfig, shapeFromPreset } from '../../lib/interop/model_shape';
import { findPreset } from '../../lib/cap/presets';
import { DEFAULT_PRICES } from '../../lib/cap/cost';
import { datasheetForGpu, oursForPass, theirsForPass, theirPathFor } from '../../lib/interop/recompute';
import { ourCost, theirCost } from '../../lib/interop/moecap_cost';
import { validateResults } from '../../lib/cap/results';
import { analyzeRun } from '../../lib/interop/moecap_analysis';
import { writeReport } from '../../lib/report/write_report';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-analyze-res-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
const io = () => {
  const out: string[] = [];
  return { out, io: { out: (s: string) => out.push(s), err: (s: string) => out.push(s) } };
};

// DeepSeek-V3's config.json keys and values (the ones the formulas read).
const V3 = {
  _name_or_path: 'deepseek-ai/DeepSeek-V3',
  hidden_size: 7168,
  num_hidden_layers: 61,
  first_k_dense_replace: 3,
  intermediate_size: 18432,
  moe_intermediate_size: 2048,
  n_routed_experts: 256,
  num_experts_per_tok: 8,
  n_shared_experts: 1,
  num_attention_heads: 128,
  num_key_value_heads: 128,
  kv_lora_rank: 512,
  q_lora_rank: 1536,
  qk_rope_head_dim: 64,
  qk_nope_head_dim: 128,
  v_head_dim: 128,
};
const v3File = path.join(root, 'v3', 'config.json');
fs.mkdirSync(path.dirname(v3File));
fs.writeFileSync(v3File, JSON.stringify(V3));

describe('MoE-CAP model paths', () => {
  test('dispatch on the model name as basic_utils.py does', () => {
    expect(theirPathFor('Qwen/Qwen3-30B-A3B')).toBe('qwen3');
    expect(theirPathFor('Qwen/Qwen1.5-MoE-A2.7B')).toBe('qwen');
    expect(theirPathFor('deepseek-ai/DeepSeek-V3')).toBe('deepseek');
    expect(theirPathFor('deepseek-ai/deepseek-v3')).toBe('default'); // case-sensitive there too
    expect(theirPathFor('allenai/OLMoE-1B-7B-0924')).toBe('default');
  });

  test('DeepSeek-V3 decode pass, hand-computed: theirs counts 2 shared experts, ours the 1 of the config', () => {
    const m = shapeFromConfig(path.dirname(v3File));
    expect([m.moeLayers, m.denseLayers, m.sharedCount, m.sharedIntermediate, m.denseIntermediate]).toEqual([58, 3, 1, 2048, 18432]);
    const p = { line: 1, phase: 'decode' as const, expertActivation: 40, batchSize: 16, seqLensSum: 16384, scheduledTokens: null, seconds: 0.05 };
    const H = 7168,
      L = 61,
      Lm = 58,
      Ld = 3,
      F = 2048,
      Fd = 18432,
      E = 256,
      k = 8,
      nh = 128;
    const attn = H * (512 + 64) + 512 * nh * (128 + 128) + 128 * nh * H + H * 1536 + 1536 * nh * (128 + 64);
    const Se = 3 * H * F,
      dense = 3 * H * Fd,
      kv = 16384 * L * (512 + 64);
    const bw = 4.8e12,
      n = 8,
      tps = 16 / 0.05;
    const theirRead = L * attn + Lm * (40 * Se + 2 * Se) + Ld * dense;
    const theirSmbu = ((theirRead + kv) * 2) / 0.05 / (n * bw);
    const score = 16384 * L * nh * (128 + 64) + 16384 * L * nh * 128;
    const theirSmfu = ((L * attn + Lm * (Se + 2 * Se) + Ld * dense + score) * 2 * tps) / ((n * 1979e12) / 2);
    const t = theirsForPass(p, m, 'deepseek-ai/DeepSeek-V3', 'bfloat16', bw, 1979e12, n);
    expect(t.path).toBe('deepseek');
    expect(t.smbu).toBeCloseTo(theirSmbu, 12);
    expect(t.smfu).toBeCloseTo(theirSmfu, 12);
    // Ours: 1 shared expert + the router, k experts computed, dense peak 989.4e12.
    const d = datasheetForGpu('NVIDIA-H200-141GB')!;
    const o = oursForPass(p, m, 'bfloat16', d, n);
    const ourRead = Lm * (40 * Se + Se + H * E) + L * attn + Ld * dense;
    expect(o.bytes).toBe((ourRead + kv) * 2);
    expect(o.smbu).toBeCloseTo(((ourRead + kv) * 2) / 0.05 / (n * bw), 12);
    // The S-MBU gap is exactly one shared expert less the router per MoE layer.
    expect(((t.smbu - o.smbu) * 0.05 * n * bw) / 2).toBeCloseTo(Lm * (Se - H * E), 0);
    expect(o.smfu).toBeCloseTo((tps * 2 * (Lm * (k * Se + Se + H * E) + L * attn + Ld * dense)) / (n * 989.4e12), 12);
  });

  test('Qwen1.5 path counts the shared expert in both and every layer as MoE', () => {
    const m = shapeFromPreset(findPreset('qwen1.5-moe-a2.7b'));
    const p = { line: 1, phase: 'prefill' as const, expertActivation: 50, batchSize: 2, seqLensSum: 1000, scheduledTokens: null, seconds: 0.04 };
    const H = 2048,
      L = 24,
      Se = 3 * H * 1408,
      Ss = 3 * H * 5632,
      attn = H * (16 * 128 + 2 * 16 * 128) + 16 * 128 * H;
    const t = theirsForPass(p, m, 'Qwen/Qwen1.5-MoE-A2.7B', 'bfloat16', 2.039e12, 624e12, 1);
    expect(t.path).toBe('qwen');
    expect(t.smbu).toBeCloseTo(((L * (50 * Se + Ss + attn) + 1000 * 2 * L * 128 * 16) * 2) / 0.04 / 2.039e12, 12);
    expect(t.smfu).toBeCloseTo(((L * (attn + Se + Ss) + 1000 * L * 16 * 128 * 2) * 2 * (1000 / 0.04)) / (624e12 / 2), 12);
  });
});

test('their S-MBU uses their bandwidth table for the GPU name they detected (H100 PCIe: 2039 GB/s, our datasheet 2.0 TB/s)', () => {
  const m = shapeFromPreset(findPreset('qwen3-30b-a3b'));
  const p = { line: 1, phase: 'decode' as const, expertActivation: 24, batchSize: 4, seqLensSum: 2048, scheduledTokens: null, seconds: 0.01 };
  const run = {
    key: 'x_1',
    metadata: null,
    metrics: null,
    legacy: null,
    passes: [p],
    skipped: { expert_activation: 0, duration: 0, batch_size: 0, seq_lens_sum: 0 },
    requests: null,
    gpuName: 'NVIDIA-H100-PCIe-80GB',
    numGpus: 1,
    numGpusRecorded: true,
    precision: 'bfloat16',
    modelName: 'Qwen/Qwen3-30B-A3B',
    engine: 'vllm',
    engineVersion: null,
  };
  const a = analyzeRun(run, m, DEFAULT_PRICES);
  expect(a.datasheet.name).toBe('h100-pcie');
  expect(a.phases[0].theirs!.smbu).toBeCloseTo(theirsForPass(p, m, 'Qwen/Qwen3-30B-A3B', 'bfloat16', 2039e9, 1513e12, 1).smbu, 12);
  expect(a.theirCost.value).toBeCloseTo((28000 + 7214) * 1.25, 9); // no makespan recorded: energy term 0
});

describe('cost', () => {
  test('MoE-CAP prints None for H100 SXM (its detected name misses its price table); the fixed key gives price × 1.25 + energy', () => {
    const c = theirCost('NVIDIA-H100-HBM3-80GB', 1, 100);
    expect(c.value).toBeNull();
    expect(c.note).toMatch(/NVIDIA-H100-80GB-HBM3/);
    expect(c.ifKeyMatched).toBeCloseTo((38000 + 7214) * 1.25 + ((700 + 350) / 1000) * 0.15 * (100 / 3600) * 1.2, 9);
    const h200 = theirCost('NVIDIA-H200-141GB', 8, 3600);
    expect(h200.value).toBeCloseTo((35000 * 8 + 7214) * 1.25 + ((350 * 8 + 350) / 1000) * 0.15 * 1 * 1.2, 9);
  });

  test('ours: amortised USD per 1M tokens per pass and in aggregate, from the (overridable) price table', () => {
    const d = datasheetForGpu('NVIDIA-H100-HBM3-80GB')!;
    const a = { line: 1, phase: 'decode' as const, expertActivation: 24, batchSize: 4, seqLensSum: 2048, scheduledTokens: null, seconds: 0.01 };
    const b = { ...a, line: 2, batchSize: 8, seconds: 0.03 };
    const perHour = 30000 / (3 * 8760) + (700 * 0.13) / 1000;
    expect(ourCost([a], DEFAULT_PRICES, d, 1).usdPer1MTokens).toBeCloseTo((perHour * (0.01 / 4) * 1e6) / 3600, 12);
    expect(ourCost([a, b], DEFAULT_PRICES, d, 2).usdPer1MTokens).toBeCloseTo((2 * perHour * (0.04 / 12) * 1e6) / 3600, 12);
  });
});

describe('analyze --out: results.json that moecap report draws', () => {
  const dir = path.join(root, 'out', 'deepseek-ai', 'DeepSeek-V3');
  fs.mkdirSync(dir, { recursive: true });
  const ds = 'gsm8k_20250101_120000';
  fs.writeFileSync(
    path.join(dir, `metadata_${ds}.json`),
    JSON.stringify({
      hardware: { gpu_type: 'NVIDIA-H200-141GB', num_gpus: 8 },
      model_config: { model_name: 'deepseek-ai/DeepSeek-V3', precision: 'bfloat16' },
      system_environment: { inference_engine: 'vllm', inference_engine_version: '0.9.1' },
    }),
  );
  fs.writeFileSync(
    path.join(dir, `metrics_${ds}.json`),
    JSON.stringify({
      performance: { e2e_s: 0.5, 'request/s': 2, ttft: 0.3, tpot: 0.05 },
      expert_activation: {},
      batch_token_profile: { prefill_tokens: 4000, prefill_tokens_per_request: 400 },
      quality: { acc: 0.93, total: 10 },
    }),
  );
  fs.writeFileSync(
    path.join(dir, `detailed_results_${ds}.jsonl`),
    [
      { forward_mode: 'prefill', expert_activation: 200, batch_size: 4, seq_lens_sum: 1600, latency: 0.2 },
      { forward_mode: 'prefill', expert_activation: 1, batch_size: 1, seq_lens_sum: 5, latency: 0.01 },
      { forward_mode: 'decode', expert_activation: 40, batch_size: 16, seq_lens_sum: 16384, latency: 0.05 },
      { forward_mode: 'decode', expert_activation: 44, batch_size: 16, seq_lens_sum: 16400, latency: 0.06 },
      { forward_mode: 'idle', expert_activation: 0, batch_size: 0, seq_lens_sum: 0, latency: 0.001 },
    ]
      .map((r) => JSON.stringify(r))
      .join('\n') + '\n',
  );
  const prices = path.join(root, 'prices.json');
  fs.writeFileSync(prices, JSON.stringify({ gpu: { h200: { priceUsd: 20000 } } }));
  const out = path.join(root, 'imported');

  test('writes schema-valid results labelled as MoE-CAP/vLLM measurements, and the report page draws its configs', async () => {
    const { out: text, io: cio } = io();
    expect(await analyzeCommand.run({ options: { model: path.dirname(v3File), out, prices }, positional: [dir], given: new Set() }, cio)).toBe(0);
    const r = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
    expect(validateResults(r)).toEqual([]);
    expect(r.source).toMatchObject({ kind: 'imported', measuredBy: 'MoE-CAP' });
    expect(r.source.engines[0]).toMatchObject({ engine: 'vllm', engineVersion: '0.9.1', gpu: 'NVIDIA-H200-141GB', numGpus: 8 });
    expect(r.configs.map((c: { id: string }) => c.id)).toEqual([`${ds}-prefill`, `${ds}-decode`]);
    const [pre, dec] = r.configs;
    expect(pre.samples).toBe(1); // the 5-token probe is dropped, as MoE-CAP drops it
    expect(dec.tokensPerSecond).toBeCloseTo(32 / 0.11, 9);
    expect(dec.cost.inputs.components[0]).toMatchObject({ priceUsd: 8 * 20000 });
    expect(dec.source.theirPath).toBe('deepseek');
    expect(dec.counters.available).toBe(false);
    expect(r.taskAccuracy[0]).toMatchObject({ task: 'gsm8k', accuracy: 0.93 });
    expect(r.cap.phases.decode.points).toHaveLength(1);
    expect(text.join('')).toMatch(/cost {3}theirs \$\d+/);
    const { file } = await writeReport(out);
    const html = fs.readFileSync(file, 'utf8');
    expect(html).toContain(`${ds}-prefill`);
    expect(html).toContain(`${ds}-decode`);
    expect(html).toContain('measured by MoE-CAP');
    expect(html).toContain('8× NVIDIA-H200-141GB');
  });

  test('a bad --prices file is a clear option error', async () => {
    const bad = path.join(root, 'bad-prices.json');
    fs.writeFileSync(bad, JSON.stringify({ gpu: { h200: { priceUsd: -1 } } }));
    await expect(
      analyzeCommand.run({ options: { model: path.dirname(v3File), prices: bad }, positional: [dir], given: new Set() }, io().io),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' });
  });
});
