import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { readMoecapFolder } from '../../lib/interop/moecap_folder';
import { oursForPass, theirsForPass, datasheetForGpu } from '../../lib/interop/recompute';
import { shapeFromPreset } from '../../lib/interop/model_shape';
import { findPreset } from '../../lib/cap/presets';
import { analyzeCommand } from '../../lib/cli/commands/analyze';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-analyze-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

// A folder in MoE-CAP's exact shape (openai_api_profile.py): Qwen3-30B-A3B on 1× H100 SXM, bf16.
const ds = 'gsm8k_20250101_120000';
fs.writeFileSync(
  path.join(dir, `metadata_${ds}.json`),
  JSON.stringify({
    hardware: { gpu_type: 'NVIDIA-H100-HBM3-80GB', num_gpus: 1 },
    model_config: { model_name: 'Qwen/Qwen3-30B-A3B', precision: 'bfloat16' },
    system_environment: {
      inference_engine: 'sglang',
      inference_engine_version: '0.4.9',
      batch_size: null,
      avg_batch_size_prefill: 1,
      avg_batch_size_decode: 4,
    },
  }),
);
fs.writeFileSync(
  path.join(dir, `metrics_${ds}.json`),
  JSON.stringify({
    performance: { e2e_s: 1.5, 'request/s': 2.0, ttft: 0.05, prefill_pass_latency_s: 0.05, tpot: 0.01 },
    expert_activation: { avg_expert_activation_prefill: 100, avg_expert_activation_decode: 24 },
    batch_token_profile: {},
    quality: { acc: 0.9, total: 10 },
  }),
);
fs.writeFileSync(
  path.join(dir, `detailed_results_${ds}.jsonl`),
  [
    { index: 0, forward_mode: 'prefill', expert_activation: 100, batch_size: 1, seq_lens_sum: 512, ttft: 0.05 },
    { index: 1, forward_mode: 'decode', expert_activation: 24, batch_size: 4, seq_lens_sum: 2048, tpot: 0.01 },
    { index: 2, forward_mode: 'decode', expert_activation: 26, batch_size: 4, seq_lens_sum: 2052, tpot: 0.012 },
  ]
    .map((r) => JSON.stringify(r))
    .join('\n') + '\n',
);

// `moecap analyze DIR` with the preset and `extra` options → its exit code and everything it printed.
async function analyzeDir(d: string, extra: Record<string, unknown> = {}): Promise<{ code: number; text: string }> {
  const options = { preset: 'qwen3-30b-a3b', ...extra };
  const out: string[] = [];
  const code = await analyzeCommand.run(
    { options, positional: [d], given: new Set(Object.keys(options)) },
    { out: (s) => out.push(s), err: (s) => out.push(s) },
  );
  return { code, text: out.join('') };
}

describe('moecap analyze', () => {
  const m = shapeFromPreset(findPreset('qwen3-30b-a3b'));
  test('reads the folder: GPU, precision, passes with ttft/tpot as seconds', () => {
    const [run] = readMoecapFolder(dir);
    expect(run.gpuName).toBe('NVIDIA-H100-HBM3-80GB');
    expect(run.precision).toBe('bfloat16');
    expect(run.passes.map((p) => [p.phase, p.seconds])).toEqual([
      ['prefill', 0.05],
      ['decode', 0.01],
      ['decode', 0.012],
    ]);
    expect(datasheetForGpu(run.gpuName!)!.name).toBe('h100-sxm');
  });

  test('hand-computed decode pass: S-MFU differs by exactly the k experts and the peak halving', () => {
    const p = { line: 2, phase: 'decode' as const, expertActivation: 24, batchSize: 4, seqLensSum: 2048, scheduledTokens: null, seconds: 0.01 };
    const d = datasheetForGpu('NVIDIA-H100-HBM3-80GB')!;
    const H = 2048,
      F = 768,
      L = 48,
      E = 128,
      k = 8;
    const attn = H * (32 * 128 + 2 * 4 * 128) + 32 * 128 * H;
    // Theirs: (L·(attn + 3HF) + score)·2·tps / (1979e12/2), score = 2048·L·32·128·2.
    const tps = 4 / 0.01;
    const theirSmfu = ((L * (attn + 3 * H * F) + 2048 * L * 32 * 128 * 2) * 2 * tps) / (1979e12 / 2);
    const theirSmbu = ((L * (24 * 3 * H * F + attn) + 2048 * 2 * L * 128 * 4) * 2) / 0.01 / 3.35e12;
    const t = theirsForPass(p, m, 'Qwen/Qwen3-30B-A3B', 'bfloat16', 3.35e12, 1979e12, 1);
    expect(t.smfu).toBeCloseTo(theirSmfu, 12);
    expect(t.smbu).toBeCloseTo(theirSmbu, 12);
    // Ours: 2·(L·(k·3HF + HE) + L·attn)·tps / 989.4e12 (no attention score term: that is activation work).
    const ourSmfu = (tps * 2 * (L * (k * 3 * H * F + H * E) + L * attn)) / 989.4e12;
    const o = oursForPass(p, m, 'bfloat16', d, 1);
    expect(o.smfu).toBeCloseTo(ourSmfu, 12);
    // Without attention and score terms the factor is exactly k (peaks 989.4 vs 1979/2 = 989.5).
    const mNoAttn = { ...m, heads: 0, kvHeads: 0, headDim: 0 };
    const ratio =
      oursForPass(p, { ...mNoAttn, experts: 0 }, 'bfloat16', d, 1).smfu / theirsForPass(p, mNoAttn, 'Qwen/Qwen3-30B-A3B', 'bfloat16', 3.35e12, 1979e12, 1).smfu;
    expect(ratio).toBeCloseTo(k * (989.5 / 989.4), 9);
  });

  // Recorders since 2026-08 (Auto-CAP/MoE-CAP 268e2c5) write scheduled_tokens, and leave a pass's
  // latency null where they have none (its aggregates skip those).
  test('null durations are skipped and counted; a prefill pass counts its scheduled_tokens, not seq_lens_sum', async () => {
    const d2 = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-analyze-sched-'));
    try {
      for (const f of fs.readdirSync(dir).filter((n) => !n.startsWith('detailed_results_'))) fs.copyFileSync(path.join(dir, f), path.join(d2, f));
      const rows = [
        { index: 0, forward_mode: 'prefill', expert_activation: 100, batch_size: 1, seq_lens_sum: 4096, scheduled_tokens: 1024, ttft: 0.05 },
        { index: 1, forward_mode: 'prefill', expert_activation: 90, batch_size: 1, seq_lens_sum: 512, ttft: null },
        { index: 2, forward_mode: 'decode', expert_activation: 24, batch_size: 4, seq_lens_sum: 2048, tpot: 0.01 },
        { index: 3, forward_mode: 'decode', expert_activation: null, batch_size: 4, seq_lens_sum: 2052, tpot: 0.012 },
        { index: 4, forward_mode: 'decode', expert_activation: 25, batch_size: null, seq_lens_sum: 2056, tpot: 0.011 },
      ];
      fs.writeFileSync(path.join(d2, `detailed_results_${ds}.jsonl`), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
      const [run] = readMoecapFolder(d2);
      expect(run.skipped).toEqual({ expert_activation: 1, duration: 1, batch_size: 1, seq_lens_sum: 0 });
      expect(run.passes.map((p) => [p.line, p.scheduledTokens])).toEqual([
        [1, 1024],
        [3, null],
      ]);
      const dsheet = datasheetForGpu(run.gpuName!)!;
      const pre = run.passes[0];
      // 1024 tokens forwarded in 0.05 s: ours is 1/4 of what seq_lens_sum would give.
      expect(oursForPass(pre, m, 'bfloat16', dsheet, 1).tokensPerSecond).toBeCloseTo(1024 / 0.05, 9);
      expect(oursForPass({ ...pre, scheduledTokens: null }, m, 'bfloat16', dsheet, 1).smfu / oursForPass(pre, m, 'bfloat16', dsheet, 1).smfu).toBeCloseTo(
        4,
        12,
      );
      const { text } = await analyzeDir(d2);
      expect(text).toMatch(
        /skipped: 1 passes without expert_activation, 1 passes without a duration \(ttft\/tpot\/latency null\), 1 passes without batch_size/,
      );
      expect(text).toMatch(/tokens: ours the 1024 forwarded \(scheduled_tokens\) of 1 passes, theirs their seq_lens_sum 4096/);
    } finally {
      fs.rmSync(d2, { recursive: true, force: true });
    }
  });

  // openai_api_profile before 2026-03-19 (Auto-CAP/MoE-CAP c76ed7f): a flat cap_metrics file and
  // detailed_results_<dataset>.jsonl with one request per line.
  test("the older per-request layout: the client's request latency beside its cap_metrics figures", async () => {
    const d3 = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-analyze-old-'));
    try {
      const req = (i: number) => ({ index: i, prompt_length: 120 + i, success: true, output_len: 40, ttft: 0.05, latency: 0.9, itl: [0.02, 0.021], error: '' });
      fs.writeFileSync(path.join(d3, 'detailed_results_gsm8k.jsonl'), [0, 1, 2].map((i) => JSON.stringify(req(i))).join('\n') + '\n');
      const legacy = {
        model_name: 'Qwen/Qwen3-30B-A3B',
        gpu_type: '1xNVIDIA-H100-HBM3-80GB',
        precision: 'bfloat16',
        prefill_smbu: 0.12,
        prefill_smfu: 0.31,
        decoding_smbu: 0.44,
        decoding_smfu: 0.02,
        ttft: 0.04,
        tpot: 0.02,
        cost: null,
      };
      fs.writeFileSync(path.join(d3, 'cap_metrics_gsm8k_20251120_101010.json'), JSON.stringify(legacy));
      // Another dataset whose name starts with this one's: the request file is not its.
      fs.writeFileSync(path.join(d3, 'cap_metrics_gsm8k_hard_20251120_111111.json'), JSON.stringify(legacy));
      const runs = readMoecapFolder(d3);
      expect(runs.map((r) => [r.key, r.passes.length, r.requests?.requests.length, r.requests?.layout])).toEqual([
        ['gsm8k_20251120_101010', 0, 3, 'per-request detailed_results'],
        ['gsm8k_hard_20251120_111111', 0, undefined, undefined],
      ]);
      fs.rmSync(path.join(d3, 'cap_metrics_gsm8k_hard_20251120_111111.json'));
      const { text } = await analyzeDir(d3);
      expect(text).toMatch(
        /requests: detailed_results_gsm8k\.jsonl, 3 requests, 3 completed, client-measured \(MoE-CAP's layout before 2026-03-19: no forward passes/,
      );
      // Their ttft is the mean prefill pass (0.04 s); ours each request's first token (0.05 s);
      // TPOT (0.9 − 0.05) / (40 − 1) per request.
      expect(text).toMatch(
        /TTFT {3}theirs 40 ms {2}ours mean 50 ms {2}p50 50 ms {2}p90 50 ms {2}p99 50 ms \(3 requests\) {2}diff \+10 ms {2}reason: theirs: the mean server prefill pass/,
      );
      expect(text).toContain(`TPOT   theirs 20 ms  ours mean ${+((0.85 / 39) * 1e3).toPrecision(4)} ms`);
      // No passes, no configs: --out refuses (a results.json without configs is one report refuses) after the print.
      const printed: string[] = [];
      const withOut = { preset: 'qwen3-30b-a3b', out: path.join(d3, 'res') };
      await expect(
        analyzeCommand.run({ options: withOut, positional: [d3], given: new Set(Object.keys(withOut)) }, { out: (s) => printed.push(s), err: () => {} }),
      ).rejects.toThrow(/--out: '.*' has no forward passes to write as configs .*nothing written/);
      expect(printed.join('')).toMatch(/TTFT {3}theirs 40 ms/);
      expect(fs.existsSync(path.join(d3, 'res'))).toBe(false);
      expect(text).toMatch(/prefill: theirs S-MBU 12\.00% {2}S-MFU 31\.00%/);
      expect(text).toMatch(/decode: theirs S-MBU 44\.00% {2}S-MFU 2\.00%/);
      // A pass among request records is corrupt; a folder of request records alone has nothing to compare.
      fs.appendFileSync(
        path.join(d3, 'detailed_results_gsm8k.jsonl'),
        JSON.stringify({ forward_mode: 'decode', expert_activation: 3, batch_size: 1, seq_lens_sum: 9, tpot: 0.1 }) + '\n',
      );
      expect(() => readMoecapFolder(d3)).toThrow(/line 4 field 'forward_mode': a forward pass among per-request records/);
      fs.rmSync(path.join(d3, 'cap_metrics_gsm8k_20251120_101010.json'));
      fs.writeFileSync(path.join(d3, 'detailed_results_gsm8k.jsonl'), JSON.stringify(req(0)) + '\n');
      expect(() => readMoecapFolder(d3)).toThrow(/holds only per-request records \(detailed_results_gsm8k\.jsonl/);
    } finally {
      fs.rmSync(d3, { recursive: true, force: true });
    }
  });

  // output_data since 2026-07-08: the client's times per request; MoE-CAP's 0 is a time not measured.
  test("per-request records: the client's TTFT, TPOT and end-to-end latency beside MoE-CAP's, in the output and results.json", async () => {
    const d4 = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-analyze-req-'));
    try {
      for (const f of fs.readdirSync(dir)) if (!fs.statSync(path.join(dir, f)).isDirectory()) fs.copyFileSync(path.join(dir, f), path.join(d4, f));
      const req = (i: number, success: boolean, out: number, ttft: number, latency: number) => ({
        index: i,
        input_tokens: 512,
        output_tokens: success ? 'text' : '',
        input_token_count: 512,
        output_token_count: out,
        requested_output_tokens: 64,
        success,
        latency_s: latency,
        ttft_s: ttft,
      });
      const requests = [
        req(0, true, 11, 0.1, 1.1), // TPOT 1.0 / 10
        req(1, true, 21, 0.2, 1.2), // TPOT 1.0 / 20
        req(2, true, 1, 0.3, 0.3), // one token: no TPOT
        req(3, false, 0, 0, 0), // failed: not counted
        req(4, true, 5, 0, 0.9), // non-streaming: no first-token time, end-to-end only
      ];
      fs.writeFileSync(path.join(d4, `output_data_${ds}.jsonl`), requests.map((r) => JSON.stringify(r)).join('\n') + '\n');
      const [run] = readMoecapFolder(d4);
      expect(run.requests!.requests.map((q) => [q.success, q.ttft, q.latency, q.outputTokens])).toEqual([
        [true, 0.1, 1.1, 11],
        [true, 0.2, 1.2, 21],
        [true, 0.3, 0.3, 1],
        [false, null, null, 0],
        [true, null, 0.9, 5],
      ]);
      const { text } = await analyzeDir(d4, { out: path.join(d4, 'res') });
      expect(text).toMatch(/requests: output_data_gsm8k_20250101_120000\.jsonl, 5 requests, 4 completed, client-measured\n/);
      // TTFT of 0.1, 0.2, 0.3: mean 0.2, p90 0.2 + 0.8·0.1, p99 0.2 + 0.98·0.1; theirs (performance.ttft) 0.05.
      expect(text).toMatch(
        /TTFT {3}theirs 50 ms {2}ours mean 200 ms {2}p50 200 ms {2}p90 280 ms {2}p99 298 ms \(3 requests\) {2}diff \+150 ms {2}reason: theirs: a request's prefill passes summed/,
      );
      // TPOT of 0.1 and 0.05: mean 0.075, p90 0.05 + 0.9·0.05; theirs (performance.tpot) 0.01.
      expect(text).toMatch(
        /TPOT {3}theirs 10 ms {2}ours mean 75 ms {2}p50 75 ms {2}p90 95 ms {2}p99 99\.5 ms \(2 requests\) {2}diff \+65 ms {2}reason: theirs: the mean server decode step/,
      );
      // End-to-end of 1.1, 1.2, 0.3, 0.9: mean 0.875, p50 1.0.
      expect(text).toMatch(/E2E {4}ours mean 875 ms {2}p50 1000 ms/);
      const res = JSON.parse(fs.readFileSync(path.join(d4, 'res', 'results.json'), 'utf8'));
      const [pre, dec] = res.configs;
      expect(pre.timing.ttftSeconds.n).toBe(3);
      expect(pre.timing.ttftSeconds.p90).toBeCloseTo(0.28, 12);
      expect(pre.timing.source).toMatch(/TTFT per request, client-measured \(3 requests in output_data_/);
      expect(dec.timing.ttftSeconds).toBeNull();
      expect(dec.source.requests.tpotSeconds.mean).toBeCloseTo(0.075, 12);
      expect(dec.source.requests.theirs).toEqual({ ttft: 0.05, tpot: 0.01, from: 'their metrics performance.ttft, their metrics performance.tpot' });
      expect(dec.source.requests.completed).toBe(4);
      // Records from before MoE-CAP wrote client times (2026-07-01 .. 07-08): counted, nothing recomputed.
      fs.writeFileSync(
        path.join(d4, `output_data_${ds}.jsonl`),
        JSON.stringify({ index: 0, input_tokens: 5, output_tokens: 'a', success: true, output_token_count: 3 }) + '\n',
      );
      expect((await analyzeDir(d4)).text).toMatch(/1 requests, 1 completed, client-measured\n {4}no request carries client times/);
      // A time or flag of the wrong type names file, line and field.
      fs.writeFileSync(
        path.join(d4, `output_data_${ds}.jsonl`),
        JSON.stringify(req(0, true, 3, 0.1, 0.5)) + '\n' + JSON.stringify({ ...req(1, true, 3, 0.1, 0.5), ttft_s: 'fast' }) + '\n',
      );
      expect(() => readMoecapFolder(d4)).toThrow(
        /output data '.*output_data_gsm8k_20250101_120000\.jsonl' line 2 field 'ttft_s': must be seconds >= 0, got "fast"/,
      );
      fs.writeFileSync(path.join(d4, `output_data_${ds}.jsonl`), JSON.stringify({ ...req(0, true, 3, 0.1, 0.5), success: 'yes' }) + '\n');
      expect(() => readMoecapFolder(d4)).toThrow(/line 1 field 'success': must be true or false/);
      fs.writeFileSync(path.join(d4, `output_data_${ds}.jsonl`), JSON.stringify({ ...req(0, true, 3, 0.1, 0.5), output_token_count: 2.5 }) + '\n');
      expect(() => readMoecapFolder(d4)).toThrow(/line 1 field 'output_token_count': must be an integer >= 0/);
    } finally {
      fs.rmSync(d4, { recursive: true, force: true });
    }
  });

  // Long runs have 10^5+ decode steps: the per-pass summaries once spread them into Math.min and
  // overflowed the stack (ERR_INTERNAL), losing the whole analysis.
  test('a run of 150 000 decode steps is analysed and written', async () => {
    const d5 = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-analyze-long-'));
    try {
      for (const f of [`metadata_${ds}.json`, `metrics_${ds}.json`]) fs.copyFileSync(path.join(dir, f), path.join(d5, f));
      const n = 150_000;
      const lines = [JSON.stringify({ forward_mode: 'prefill', expert_activation: 100, batch_size: 1, seq_lens_sum: 512, ttft: 0.05 })];
      for (let i = 0; i < n; i++)
        lines.push(
          JSON.stringify({
            forward_mode: 'decode',
            expert_activation: 20 + (i % 9),
            batch_size: 4,
            seq_lens_sum: 2048 + (i % 64),
            tpot: 0.01 + (i % 7) * 1e-3,
          }),
        );
      fs.writeFileSync(path.join(d5, `detailed_results_${ds}.jsonl`), lines.join('\n') + '\n');
      const { code, text } = await analyzeDir(d5, { out: path.join(d5, 'res') });
      expect(code).toBe(0);
      expect(text).toMatch(/decode \(150000 passes/);
      const res = JSON.parse(fs.readFileSync(path.join(d5, 'res', 'results.json'), 'utf8'));
      expect(res.configs[1].timing.passSeconds).toMatchObject({ n, min: 0.01, max: 0.016 });
    } finally {
      fs.rmSync(d5, { recursive: true, force: true });
    }
  });

  test('the command prints theirs, ours, the factor and the reason per phase', async () => {
    const { code, text } = await analyzeDir(dir);
    expect(code).toBe(0);
    expect(text).toMatch(/prefill \(1 passes/);
    expect(text).toMatch(/decode \(2 passes/);
    expect(text).toMatch(/S-MFU {2}theirs [\d.]+% {2}ours [\d.]+% {2}×[\d.]+ {2}reason: k = 8/);
    expect(text).toMatch(/their qwen3 path/);
    expect(text).toMatch(/measured by MoE-CAP on sglang/);
  });

  test('a truncated detailed_results line is an error naming file, line and field', () => {
    const bad = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-analyze-bad-'));
    try {
      fs.writeFileSync(
        path.join(bad, 'detailed_results_x_1.jsonl'),
        '{"forward_mode":"decode","expert_activation":3,"batch_size":"4","seq_lens_sum":1,"tpot":0.1}\n{"forward_mode":"dec',
      );
      expect(() => readMoecapFolder(bad)).toThrow(/line 1 field 'batch_size': must be a number/);
      fs.writeFileSync(
        path.join(bad, 'detailed_results_x_1.jsonl'),
        '{"forward_mode":"decode","expert_activation":3,"batch_size":4,"seq_lens_sum":1,"tpot":0.1}\n{"forward_mode":"dec',
      );
      expect(() => readMoecapFolder(bad)).toThrow(/line 2: not valid JSON/);
    } finally {
      fs.rmSync(bad, { recursive: true, force: true });
    }
  });

  // Found by test/fuzz: metadata fields of the wrong type reached .toUpperCase() and friends (a
  // TypeError), and a deeply nested value overflowed the stack when an error message quoted it.
  test('metadata fields of the wrong type and deeply nested values are errors naming file and field', async () => {
    const bad = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-analyze-types-'));
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    const meta = (o: object) => fs.writeFileSync(path.join(bad, 'metadata_x_1.json'), JSON.stringify(o));
    try {
      fs.writeFileSync(
        path.join(bad, 'detailed_results_x_1.jsonl'),
        '{"forward_mode":"decode","expert_activation":3,"batch_size":4,"seq_lens_sum":1,"tpot":0.1}\n',
      );
      const cases: Array<[object, RegExp]> = [
        [{ hardware: { gpu_type: 7 } }, /metadata_x_1\.json': hardware\.gpu_type must be a string, got 7/],
        [{ hardware: 'H100' }, /metadata_x_1\.json': hardware must be an object, got "H100"/],
        [{ hardware: { gpu_type: 'H100', num_gpus: [2] } }, /hardware\.num_gpus must be an integer >= 1, got \[2\]/],
        [{ model_config: { precision: { bits: 16 } } }, /model_config\.precision must be a string, got \{"bits":16\}/],
        [{ model_config: { model_name: ['a'] } }, /model_config\.model_name must be a string/],
        [{ system_environment: { inference_engine: false } }, /system_environment\.inference_engine must be a string, got false/],
      ];
      for (const [o, re] of cases) {
        meta(o);
        expect(() => readMoecapFolder(bad)).toThrow(re);
      }
      meta({ hardware: { gpu_type: 'NVIDIA-H100-HBM3-80GB', num_gpus: '2' } });
      expect(readMoecapFolder(bad)[0]).toMatchObject({ numGpus: 2, numGpusRecorded: true });
      meta({ hardware: { gpu_type: 'NVIDIA-H100-HBM3-80GB', num_gpus: 'N/A' } }); // its placeholder: not recorded
      expect(readMoecapFolder(bad)[0]).toMatchObject({ numGpus: 1, numGpusRecorded: false });
      expect((await analyzeDir(bad)).text).toMatch(/on 1× NVIDIA-H100-HBM3-80GB \(datasheet h100-sxm; num_gpus not recorded: 1 assumed\)/);
      fs.writeFileSync(
        path.join(bad, 'detailed_results_x_1.jsonl'),
        `{"forward_mode":"decode","expert_activation":3,"batch_size":${deep},"seq_lens_sum":1,"tpot":0.1}\n`,
      );
      expect(() => readMoecapFolder(bad)).toThrow(/line 1 field 'batch_size': must be a number >= 0, got \[\[\[\[.*…/);
    } finally {
      fs.rmSync(bad, { recursive: true, force: true });
    }
  });
});
