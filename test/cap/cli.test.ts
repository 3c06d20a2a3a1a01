// `moecap run` / `moecap presets` end to end on the tiny preset (through the built dist/, as the
// published bin runs them): exit codes, files, schema, resume after a kill, bad input.
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { validateResults, type Results } from '../../lib/cap/results';
import { sampleRouting, zipfWeights } from '../../lib/cap/routing';
import { writeJsonlTrace, writeMctrace } from '../trace_files';

const LAUNCH = path.join(__dirname, 'launch.js');
const TINY = ['--preset', 'tiny', '--layers', '2', '--seq', '8', '--steps', '3', '--repeats', '3', '--quiet'];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-cli-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
// A profile cache of its own, empty at first: what these runs print must not depend on an earlier
// `moecap calibrate` here, and a run without a profile takes (and saves) a quick calibration.
const cache = path.join(tmp, 'cache');
const ENV: NodeJS.ProcessEnv = { ...process.env, XDG_CACHE_HOME: cache };
delete ENV.MOECAP_HARDWARE_PROFILE;
function cap(args: string[], opts: { cwd?: string } = {}) {
  return spawnSync(process.execPath, [LAUNCH, ...args], { encoding: 'utf8', cwd: opts.cwd, env: ENV });
}
const readResults = (dir: string): Results => JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8'));

test('moecap presets lists every preset', () => {
  const r = cap(['presets']);
  expect(r.status).toBe(0);
  for (const n of ['tiny', 'mixtral-8x7b', 'deepseek-v3', 'gpt-oss-120b']) expect(r.stdout).toMatch(new RegExp(`^${n}\\s`, 'm'));
  const j = JSON.parse(cap(['presets', '--json']).stdout);
  expect(j.find((p: { name: string }) => p.name === 'deepseek-v3').router.groups).toEqual({ count: 8, keep: 4 });
  expect(cap(['presets', 'extra']).status).toBe(2);
  const h = cap(['run', '--help']);
  expect(h.status).toBe(0);
  expect(h.stdout).toMatch(/Usage: moecap run \[options\]/);
  for (const f of [
    '--preset',
    '--layers',
    '--batch',
    '--dtype',
    '--seq',
    '--steps',
    '--skew',
    '--trace',
    '--threads',
    '--capacity-factor',
    '--repeats',
    '--budget',
    '--out',
    '--json',
    '--resume',
    '--task-accuracy',
    '--hardware',
  ])
    expect(h.stdout).toContain(`  ${f} `);
});

test('a sweep writes results.json (schema-valid) and the MoE-CAP files, and prints the table', () => {
  const out = path.join(tmp, 'sweep');
  const r = cap(['run', ...TINY, '--batch', '1,4', '--dtype', 'f32,bf16', '--hardware', 'h100-sxm', '--out', out]);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/results in .*results\.json/);
  expect(r.stdout).toMatch(/Pareto frontier/);
  expect(r.stdout).toMatch(/peaks: datasheet h100-sxm/);
  // a CPU run with another device's peaks is a projection, never filed as that device
  expect(r.stdout).toMatch(/peaks: projected for h100-sxm from CPU measurements/);
  expect(r.stdout).toMatch(/^ran on: cpu /m);
  const res = readResults(out);
  expect(validateResults(res)).toEqual([]);
  expect(res.status).toBe('complete');
  expect(res.configs).toHaveLength(8); // dtype 2 × (prefill b1,b4 + decode b1,b4)
  for (const c of res.configs) {
    expect(c.tokensPerSecond).toBeGreaterThan(0);
    expect(c.smbu).toHaveProperty('value');
    expect(c.fidelity).toHaveProperty('relativeL2');
    if (c.options.dtype === 'f32' && 'relativeL2' in c.fidelity) expect(c.fidelity.relativeL2).toBeLessThan(1e-5);
    expect(c.offload).toEqual({ available: false, reason: expect.any(String) });
    expect('inputs' in c.cost && c.cost.inputs.power.kind).toBe(fs.existsSync('/sys/class/powercap') ? expect.any(String) : 'tdp-model');
  }
  const decode1 = res.configs.find((c) => c.options.phase === 'decode' && c.options.batch === 1)!;
  expect(decode1.routing.distinctExperts).toEqual([2, 2]); // one token: A = k
  expect(decode1.samples).toBe(9); // 3 repeats × 3 steps
  expect(res.cap!.phases.prefill!.pareto.frontier.length).toBeGreaterThan(0);
  expect(res.projected).toEqual({ device: 'h100-sxm', method: expect.stringMatching(/applied to the bytes, FLOPs and times measured on the CPU/) });
  expect(res.device.kind).toBe('cpu');
  for (const c of res.configs) expect(c.achieved.bytesPerSecond).toBeGreaterThan(0);
  const modelDir = path.join(out, 'moecap', 'tiny'); // <out>/<org>/<model>/, as MoE-CAP writes it
  const files = fs.readdirSync(modelDir).sort();
  expect(files.filter((f) => f.startsWith('output_data_') && f.endsWith('.jsonl'))).toHaveLength(4);
  expect(files.filter((f) => f.startsWith('detailed_results_') && f.endsWith('.jsonl'))).toHaveLength(4);
  expect(files.filter((f) => f.startsWith('cap_metrics_'))).toHaveLength(4); // one per (dtype, batch)
  expect(files.filter((f) => f.startsWith('metrics_'))).toHaveLength(4);
  expect(files.filter((f) => f.startsWith('metadata_'))).toHaveLength(4);
  const legacy = JSON.parse(
    fs.readFileSync(
      path.join(
        modelDir,
        files.find((f) => f.startsWith('cap_metrics_moecap-natural-bf16-b4'))!,
      ),
      'utf8',
    ),
  );
  for (const k of [
    'prefill_smbu',
    'prefill_smfu',
    'decoding_smbu',
    'decoding_smfu',
    'ttft',
    'tpot',
    'decoding_throughput',
    'prefill_tp',
    'cost',
    'model_name',
    'precision',
    'gpu_type',
  ])
    expect(legacy).toHaveProperty(k);
  expect(legacy).toMatchObject({ model_name: 'moecap/tiny', precision: 'bfloat16', gpu_type: expect.stringMatching(/^1xCPU-/), batch_size: 4 });
  expect(legacy.ttft).toBeGreaterThan(0);
  const meta = JSON.parse(
    fs.readFileSync(
      path.join(
        modelDir,
        files.find((f) => f.startsWith('metadata_'))!,
      ),
      'utf8',
    ),
  );
  expect(meta.system_environment.inference_engine).toBe('moecap');
  expect(meta.hardware).toEqual({ gpu_type: expect.stringMatching(/^CPU-.*-\d+GB$/), num_gpus: 1 });
  expect(fs.readdirSync(out).filter((f) => f.endsWith('.tmp'))).toEqual([]);
});

test('a first run without a profile takes a quick calibration, says so, and has S-MBU and S-MFU', () => {
  const c2 = path.join(tmp, 'cache-first');
  const out = path.join(tmp, 'first');
  const args = ['run', '--preset', 'tiny', '--layers', '1', '--phase', 'decode', '--steps', '2', '--repeats', '2', '--out', out];
  const r = spawnSync(process.execPath, [LAUNCH, ...args], { encoding: 'utf8', env: { ...process.env, XDG_CACHE_HOME: c2, MOECAP_HARDWARE_PROFILE: '' } });
  expect(r.status).toBe(0);
  expect(r.stderr).toMatch(/no hardware profile for this machine: a quick calibration first/);
  expect(fs.readdirSync(path.join(c2, 'moecap', 'profiles'))).toHaveLength(1);
  const res = readResults(out);
  expect(res.peaks).toMatchObject({ kind: 'measured', source: expect.stringMatching(/quick/) });
  const c = res.configs[0];
  expect(c.smbu).toMatchObject({
    value: expect.any(Number),
    bandwidthNow: { before: expect.any(Number), after: expect.any(Number) },
    calibrated: expect.any(Object),
  });
  expect(c.smfu).toMatchObject({ value: expect.any(Number), peakSamples: expect.any(Number) });
  expect(r.stdout).toMatch(/peaks: measured .*memory .* GB\/s \(p90 of \d+ windows\), fp32 .* GFLOP\/s \(best of \d+ windows/);
  fs.rmSync(c2, { recursive: true, force: true });
});

test('--backend cuda without a usable CUDA backend is refused with the reason (ERR_BACKEND_UNAVAILABLE)', () => {
  const r = cap(['run', ...TINY, '--backend', 'cuda', '--out', path.join(tmp, 'cuda')]);
  expect(r.status).toBe(1);
  expect(r.stderr).toMatch(/ERR_BACKEND_UNAVAILABLE: --backend cuda: the CUDA backend cannot run here: /);
  expect(fs.existsSync(path.join(tmp, 'cuda', 'results.json'))).toBe(false);
});

test('--json prints the results object; without peaks S-MBU/S-MFU say why', () => {
  const out = path.join(tmp, 'json');
  const r = cap(['run', ...TINY, '--phase', 'decode', '--json', '--skip-calibration', '--out', out]);
  expect(r.status).toBe(0);
  const j = JSON.parse(r.stdout) as Results;
  expect(validateResults(j)).toEqual([]);
  expect(j.configs).toHaveLength(1);
  expect(j.configs[0].smbu).toEqual({ available: false, reason: expect.stringMatching(/no peaks/) });
  expect(j.configs).toEqual(readResults(out).configs);
});

test('skewed and replayed routing are realised and measured', () => {
  const trace = path.join(tmp, 'trace.jsonl');
  // every token on experts {6, 7} in layer 0 and {0, 3} in layer 1
  const lines: string[] = [];
  for (let t = 0; t < 40; t++) lines.push(JSON.stringify({ layer: 0, token: t, experts: [6, 7] }), JSON.stringify({ layer: 1, token: t, experts: [3, 0] }));
  fs.writeFileSync(trace, lines.join('\n') + '\n');
  const out = path.join(tmp, 'trace');
  expect(cap(['run', ...TINY, '--batch', '4', '--trace', trace, '--out', out]).status).toBe(0);
  for (const c of readResults(out).configs) {
    expect(c.options.routing).toEqual({ kind: 'trace', trace });
    expect(c.routing.designAgreement).toBe(1);
    expect(c.routing.distinctExperts).toEqual([2, 2]);
    expect(c.routing.expertShare[0][6]).toBe(0.5);
  }
  const out2 = path.join(tmp, 'skew');
  expect(cap(['run', ...TINY, '--batch', '8', '--skew', '0,2', '--phase', 'prefill', '--out', out2]).status).toBe(0);
  const [nat, skew] = readResults(out2).configs;
  expect(skew.options.routing).toEqual({ kind: 'skewed', skew: 2 });
  expect(skew.routing.designAgreement).toBe(1);
  expect(skew.routing.expertShare[0][0]).toBeGreaterThan(0.3); // Zipf(2): expert 0 most popular
  expect(skew.routing.expertShare[0][0]).toBeGreaterThan(nat.routing.expertShare[0][0]);
});

test('run --trace reads a binary .mctrace as the JSONL of the same trace', () => {
  // 40 tokens × 2 layers of Zipf-skewed routing over tiny's 8 experts (varied, so equal routing means something)
  const layers = [0, 1].map((l) => sampleRouting(40, 2, zipfWeights(8, 1), 11 + l));
  const jsonl = path.join(tmp, 'zipf.trace.jsonl');
  const bin = path.join(tmp, 'zipf.mctrace');
  writeJsonlTrace(jsonl, layers, 2);
  writeMctrace(bin, layers, 2, 8);
  const routings = (trace: string) => {
    const out = path.join(tmp, `trace-${path.basename(trace)}`);
    const r = cap(['run', ...TINY, '--batch', '4', '--phase', 'decode', '--skip-calibration', '--trace', trace, '--out', out]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    return readResults(out).configs.map((c) => c.routing);
  };
  const fromJsonl = routings(jsonl);
  expect(fromJsonl).toHaveLength(1);
  expect(fromJsonl[0].designAgreement).toBe(1);
  expect(fromJsonl[0].distinctExperts.every((a) => a > 2)).toBe(true);
  expect(routings(bin)).toEqual(fromJsonl);
});

test('--task-accuracy feeds the accuracy axis and the MoE-CAP quality field', () => {
  const ta = path.join(tmp, 'ta.json');
  fs.writeFileSync(
    ta,
    JSON.stringify([
      { task: 'gsm8k', accuracy: 0.8, source: 'test fixture' },
      { task: 'gsm8k', accuracy: 0.7, source: 'test fixture', dtype: 'bf16' },
    ]),
  );
  const out = path.join(tmp, 'ta');
  expect(cap(['run', ...TINY, '--phase', 'decode', '--dtype', 'f32,bf16', '--task-accuracy', ta, '--out', out]).status).toBe(0);
  const res = readResults(out);
  expect(res.cap!.phases.decode!.points.map((p) => p.accuracy)).toEqual([0.8, 0.7]);
  const m = fs
    .readdirSync(path.join(out, 'moecap', 'tiny'))
    .filter((f) => f.startsWith('metrics_'))
    .map((f) => JSON.parse(fs.readFileSync(path.join(out, 'moecap', 'tiny', f), 'utf8')));
  expect(m.map((x) => x.quality.acc).sort()).toEqual([0.7, 0.8]);
});

describe('bad input: one clear line, non-zero exit, no results file', () => {
  // Exit 2 for bad options; a corrupt input file (ERR_CORRUPT_FILE) exits 1, as in every command.
  const bad = (args: string[], re: RegExp, status = 2) => {
    const out = path.join(tmp, `bad-${Math.random().toString(36).slice(2)}`);
    const r = cap(['run', ...TINY, '--out', out, ...args]);
    expect(r.status).toBe(status);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(re);
    expect(fs.existsSync(path.join(out, 'results.json'))).toBe(false);
  };
  test('unknown preset', () => bad(['--preset', 'gpt-5'], /unknown preset 'gpt-5'/));
  test('unknown option', () => bad(['--bogus', '1'], /unknown option --bogus/));
  test('bad values', () => {
    bad(['--batch', '0'], /batch values must be integers >= 1/);
    bad(['--dtype', 'fp16'], /dtype must be one of/);
    bad(['--hardware', 'tpu-v9'], /unknown hardware 'tpu-v9'/);
    bad(['--repeats', 'x'], /--repeats expects a number/);
  });
  test('malformed trace', () => {
    const f = path.join(tmp, 'bad.jsonl');
    fs.writeFileSync(f, '{"layer":0,"token":0,"experts":[0,1]}\n{"layer":0,"token":1,"experts":[0,12]}\n');
    bad(['--trace', f], /^moecap: ERR_CORRUPT_FILE: trace '.*bad\.jsonl' line 2 field 'experts': expert id 12 out of range \[0, 8\)/, 1);
    // the preset's k is every line's k
    fs.writeFileSync(f, '{"layer":0,"token":0,"experts":[0,1,2]}\n');
    bad(['--trace', f], /trace '.*bad\.jsonl' line 1 field 'experts': has 3 ids, expected k = 2/, 1);
    // a binary trace is checked against the preset too
    const bin = path.join(tmp, 'k3.mctrace');
    writeMctrace(bin, [Int32Array.from([0, 1, 2])], 3, 8);
    bad(['--trace', bin], /binary trace '.*k3\.mctrace' field 'topK': is 3, the model routes k = 2/, 1);
  });
  test('malformed task-accuracy file', () => {
    const f = path.join(tmp, 'ta-bad.json');
    fs.writeFileSync(f, '{"task":"mmlu","accuracy":81}');
    bad(['--task-accuracy', f], /'accuracy' must be a fraction in \[0, 1\]/);
    fs.writeFileSync(f, '{"task":"mmlu",');
    bad(['--task-accuracy', f], /not valid JSON/);
  });
  test('an output folder that cannot be written', () => {
    const file = path.join(tmp, 'a-file');
    fs.writeFileSync(file, 'x');
    const r = cap(['run', ...TINY, '--out', path.join(file, 'sub')]);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/output folder '.*a-file\/sub' cannot be written: (ENOTDIR|EEXIST)/);
  });
});

test('a killed sweep keeps its finished configs and --resume continues it', async () => {
  const out = path.join(tmp, 'resume');
  const args = [
    'run',
    '--preset',
    'tiny',
    '--layers',
    '1',
    '--phase',
    'prefill',
    '--seq',
    '64',
    '--batch',
    '1,2,3,4,5,6,7,8',
    '--repeats',
    '400',
    '--quiet',
    '--out',
    out,
  ];
  const child = spawn(process.execPath, [LAUNCH, ...args], { stdio: 'ignore', env: ENV });
  const file = path.join(out, 'results.json');
  const deadline = Date.now() + 60_000;
  let before: Results | null = null;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    if (!fs.existsSync(file)) continue;
    const r = readResults(out);
    if (r.configs.length >= 1) {
      before = r;
      break;
    }
  }
  child.kill('SIGKILL');
  await new Promise((r) => child.on('exit', r));
  expect(before).not.toBeNull();
  const killed = readResults(out);
  expect(validateResults(killed)).toEqual([]);
  expect(killed.status).toBe('running');
  expect(killed.configs.length).toBeLessThan(8);
  expect(cap(['run', '--resume', out, '--batch', '2']).status).toBe(2); // plan comes from the folder
  const r = cap(['run', '--resume', out, '--quiet']);
  expect(r.status).toBe(0);
  const after = readResults(out);
  expect(after.status).toBe('complete');
  expect(after.configs.map((c) => c.options.batch)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  expect(after.configs.slice(0, killed.configs.length)).toEqual(killed.configs); // finished configs kept as measured
  expect(after.createdAt).toBe(killed.createdAt);
  expect(validateResults(after)).toEqual([]);
  // a different plan in the same folder is refused
  const r2 = cap(['run', '--resume', path.join(tmp, 'nowhere')]);
  expect(r2.status).toBe(2);
  expect(r2.stderr).toMatch(/cannot resume: cannot read/);
});

test('default output folder is ./moecap-results/<timestamp>/', () => {
  const cwd = fs.mkdtempSync(path.join(tmp, 'cwd-'));
  const r = cap(['run', ...TINY, '--phase', 'decode'], { cwd });
  expect(r.status).toBe(0);
  const dirs = fs.readdirSync(path.join(cwd, 'moecap-results'));
  expect(dirs).toHaveLength(1);
  expect(dirs[0]).toMatch(/^\d{8}-\d{6}$/);
  expect(fs.existsSync(path.join(cwd, 'moecap-results', dirs[0], 'results.json'))).toBe(true);
});

test('plain progress lines when not a terminal; threads and capacity factor sweep', () => {
  const out = path.join(tmp, 'progress');
  const r = cap([
    'run',
    '--preset',
    'tiny',
    '--layers',
    '1',
    '--phase',
    'prefill',
    '--seq',
    '16',
    '--batch',
    '2',
    '--repeats',
    '2',
    '--threads',
    '1,2',
    '--capacity-factor',
    '0,0.5',
    '--skip-calibration',
    '--out',
    out,
  ]);
  expect(r.status).toBe(0);
  const lines = r.stderr.trim().split('\n');
  expect(lines).toHaveLength(4);
  expect(lines[0]).toMatch(/^\[1\/4\] 0-tiny-L1-prefill-b2s16-f32-t1-natural: .* tokens\/s \(.* s/);
  const res = readResults(out);
  expect(res.configs.map((c) => [c.layer.threads, c.options.capacityFactor])).toEqual([
    [1, 0],
    [1, 0.5],
    [2, 0],
    [2, 0.5],
  ]);
  // C = ceil(0.5 · 32 · 2 / 8) = 4 slots per expert for 64 assignments over 8 experts: some must drop
  expect(res.configs[0].routing.dropRate).toBe(0);
  expect(res.configs[1].routing.dropRate).toBeGreaterThan(0);
  expect(res.configs[1].routing.dropRate).toBeLessThanOrEqual(1 - (8 * 4) / 64);
});

test('Ctrl-C keeps the finished configs (exit 130) and --resume finishes the sweep', async () => {
  const out = path.join(tmp, 'sigint');
  const args = ['run', '--preset', 'tiny', '--layers', '1', '--phase', 'prefill', '--seq', '64', '--batch', '1,2,3,4,5,6', '--repeats', '400', '--out', out];
  const child = spawn(process.execPath, [LAUNCH, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: ENV });
  let stderr = '';
  let stdout = '';
  let sent = false; // one Ctrl-C: a second one quits at once, by design
  child.stderr.on('data', (d) => {
    stderr += d;
    if (!sent && /\[1\/6\]/.test(stderr)) {
      sent = true;
      child.kill('SIGINT');
    }
  });
  child.stdout.on('data', (d) => (stdout += d));
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  expect(code).toBe(130);
  expect(stderr).toMatch(/interrupted — finishing the current sample/);
  expect(stdout).toMatch(/status: interrupted/);
  const res = readResults(out);
  expect(res.status).toBe('interrupted');
  expect(res.configs.length).toBeGreaterThanOrEqual(1);
  expect(res.configs.length).toBeLessThan(6);
  const r = cap(['run', '--resume', out, '--quiet']);
  expect(r.status).toBe(0);
  expect(readResults(out).configs).toHaveLength(6);
});
