// Seeded fuzzing of every TypeScript parser of outside input (test/fuzz/ts/mutate.ts): each input
// either parses or is refused with a MoecapError carrying a code — never another error type, never
// a hang. Seeds: test/fuzz/corpus/<parser>/. MOECAP_FUZZ_MS sets the time per parser (default 2 s),
// MOECAP_FUZZ_SEED the seed; a failing input is saved and named in the failure.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { isErrorCode, MoecapError } from '../../lib/errors';
import { loadEpRuns, loadResults } from '../../lib/report/write_report';
import { renderEpReportHtml } from '../../lib/report/ep_page';
import { planFromResults, readResumable, loadPrices } from '../../lib/cap/runner';
import { planFingerprint } from '../../lib/cap/plan';
import { readProfileFile } from '../../lib/cap/profile_file';
import { resolvePeaks } from '../../lib/cap/peaks';
import { loadTaskAccuracy } from '../../lib/cap/task_accuracy';
import { mutate, Rng } from './ts/mutate';
import { TraceSpill } from '../../lib/interop/trace_spill';
import { writeBinaryTrace } from '../../lib/interop/trace_binary';
import { readRoutingTrace, sampleRouting, zipfWeights } from '../../lib/cap/routing';
import { loadAddon } from '../../lib/native/loader';
import { analyzeCommand } from '../../lib/cli/commands/analyze';
import { importTrace, type TraceFormat } from '../../lib/interop/trace_import';
import { openCheckpoint } from '../../lib/checkpoint/checkpoint';
import { readSafetensorsCheckpoint } from '../../lib/checkpoint/safetensors';
import { shapeFromConfig } from '../../lib/interop/model_shape';
import { safetensorsBytes } from '../checkpoint/writers';

const BUDGET_MS = Number(process.env.MOECAP_FUZZ_MS ?? 2000);
const SEED = Number(process.env.MOECAP_FUZZ_SEED ?? 20261202);
const SLOW_MS = 2000; // one input taking this long counts as a hang
const CORPUS = path.join(__dirname, 'corpus');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-fuzz-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Target {
  name: string;
  file: string; // where the input is written (relative to a fresh folder)
  jsonl?: boolean;
  /** The seeds may be refused too (a resumed run measured on another machine is). */
  seedsMayBeRefused?: boolean;
  /** May return a promise (awaited). */
  parse: (file: string, dir: string) => unknown;
}

async function readTraceSpill(file: string): Promise<void> {
  const t = await TraceSpill.read(file, { experts: 16 });
  try {
    for (let l = 0; l < t.layers; l++) t.layer(l);
  } finally {
    t.close();
  }
}

// A MoE-CAP output folder with one of its files mutated and the others valid (the first seed of
// their kind), read by the whole `moecap analyze DIR --per-pass --out` (recompute, print, results.json).
const MOECAP_RUN = 'gsm8k_20250101_120000';
const MOECAP_FILES = {
  moecap_metadata: `metadata_${MOECAP_RUN}.json`,
  moecap_metrics: `metrics_${MOECAP_RUN}.json`,
  moecap_detailed: `detailed_results_${MOECAP_RUN}.jsonl`,
  moecap_cap_metrics: `cap_metrics_${MOECAP_RUN}.json`,
  moecap_output_data: `output_data_${MOECAP_RUN}.jsonl`,
};
type MoecapKind = keyof typeof MOECAP_FILES;

async function analyzeFolder(mutated: MoecapKind, dir: string): Promise<void> {
  for (const [kind, name] of Object.entries(MOECAP_FILES)) if (kind !== mutated) fs.writeFileSync(path.join(dir, name), seeds(kind)[0]);
  const options = { preset: 'qwen3-30b-a3b', 'per-pass': true, out: path.join(dir, 'out') };
  await analyzeCommand.run({ options, positional: [dir], given: new Set(Object.keys(options)) }, { out: () => {}, err: () => {} });
}

const MOECAP_TARGETS: Target[] = (Object.keys(MOECAP_FILES) as MoecapKind[]).map((kind) => ({
  name: kind,
  file: MOECAP_FILES[kind],
  jsonl: kind === 'moecap_detailed' || kind === 'moecap_output_data',
  // The older per-request seed has no forward passes: --out refuses it (nothing to write), by design.
  seedsMayBeRefused: kind === 'moecap_detailed',
  parse: (_f, dir) => analyzeFolder(kind, dir),
}));

// `moecap trace import`: each engine's records, without and with the model's shape to check against.
const importTarget = (name: string, format: TraceFormat, shape: { experts?: number; topK?: number; layers?: number }): Target => ({
  name,
  file: 'records.jsonl',
  jsonl: true,
  parse: (f, dir) => importTrace(f, path.join(dir, 'imported.jsonl'), { format, ...shape }),
});

// A checkpoint's config.json beside one small safetensors file: opened as `--model`/`checkpoint`
// (the family plan and quantization_config) and read as analyze's and plan-cache's model shape.
const tensor = (name: string, n: number) => ({ name, dtype: 'F32', shape: [n], bytes: Buffer.alloc(4 * n, 1) });
function openConfig(f: string, dir: string): void {
  const shard = path.join(dir, 'model.safetensors');
  if (!fs.existsSync(shard)) fs.writeFileSync(shard, safetensorsBytes([tensor('model.layers.0.mlp.gate.weight', 4)]));
  openCheckpoint(dir);
  shapeFromConfig(f);
}

// model.safetensors.index.json over two valid shards holding the tensors of its seed.
function openIndexed(_f: string, dir: string): void {
  for (const l of [0, 1]) {
    const shard = path.join(dir, `model-0000${l + 1}-of-00002.safetensors`);
    if (!fs.existsSync(shard))
      fs.writeFileSync(
        shard,
        safetensorsBytes(
          ['mlp.gate.weight', 'mlp.experts.0.up_proj.weight', 'post_attention_layernorm.weight'].map((n, i) => tensor(`model.layers.${l}.${n}`, 2 + i)),
        ),
      );
  }
  readSafetensorsCheckpoint(dir);
}

const TARGETS: Target[] = [
  ...MOECAP_TARGETS,
  { name: 'hf_config', file: 'config.json', parse: openConfig },
  { name: 'safetensors_index', file: 'model.safetensors.index.json', parse: openIndexed },
  importTarget('trace_vllm', 'vllm', {}),
  importTarget('trace_vllm', 'vllm', { experts: 8, topK: 2, layers: 2 }),
  importTarget('trace_sglang', 'sglang', {}),
  importTarget('trace_sglang', 'sglang', { experts: 8, topK: 2, layers: 2 }),
  importTarget('trace', 'moecap', {}),
  { name: 'results', file: 'results.json', parse: (f) => loadResults(f) },
  // `moecap report` of an expert-parallel run: read, then drawn.
  { name: 'ep_results', file: 'ep_results.json', parse: (f) => renderEpReportHtml(loadEpRuns([f])) },
  {
    name: 'results',
    file: 'results.json',
    seedsMayBeRefused: true,
    parse: (_f, dir) => readResumable(dir, planFingerprint(planFromResults(dir))),
  },
  // A run's trace (moecap run --trace): the same reader against the preset's experts and k.
  { name: 'trace', file: 'trace.jsonl', jsonl: true, parse: (f) => readRoutingTrace(f, 8, 2) },
  // The core's JSONL trace reader (native/core/trace) and the JSON.parse path of its odd lines.
  { name: 'trace_spill', file: 'trace.jsonl', jsonl: true, parse: readTraceSpill },
  {
    name: 'profile',
    file: 'profile.json',
    parse: (f) => {
      readProfileFile(f);
      return resolvePeaks(null, f);
    },
  },
  { name: 'prices', file: 'prices.json', parse: (f) => loadPrices(f) },
  { name: 'task_accuracy', file: 'task.json', parse: (f) => loadTaskAccuracy(f) },
];

function seeds(name: string): string[] {
  const dir = path.join(CORPUS, name);
  return fs
    .readdirSync(dir)
    .sort()
    .map((f) => fs.readFileSync(path.join(dir, f), 'utf8'));
}

test.each(TARGETS.map((t, i) => [`${t.name}#${i}`, t] as const))(
  'fuzz %s: every input parses or is a coded MoecapError',
  async (label, t) => {
    const corpus = seeds(t.name);
    expect(corpus.length).toBeGreaterThan(0);
    // The seeds themselves parse (the mutations start from valid files).
    const dir = fs.mkdtempSync(path.join(tmp, `${t.name}-`));
    const file = path.join(dir, t.file);
    const rng = new Rng(SEED ^ (label.length * 7919));
    const failures: string[] = [];
    const t0 = Date.now();
    let n = 0,
      refused = 0;
    for (; Date.now() - t0 < BUDGET_MS && failures.length < 3; n++) {
      const input = n < corpus.length ? corpus[n] : mutate(corpus, rng, t.jsonl);
      fs.writeFileSync(file, input);
      const s = Date.now();
      try {
        await t.parse(file, dir);
        if (n < corpus.length) continue;
      } catch (e) {
        // ERR_INTERNAL is ours, not the input's (analyze's results.json failing our own schema).
        const code = (e as { code?: unknown }).code;
        const ok = e instanceof MoecapError && isErrorCode(code) && code !== 'ERR_INTERNAL';
        if ((n < corpus.length && !t.seedsMayBeRefused) || !ok) {
          const keep = path.join(os.tmpdir(), `moecap-fuzz-${t.name}-${SEED}-${n}${path.extname(t.file)}`);
          fs.writeFileSync(keep, input);
          failures.push(
            `${n < corpus.length ? 'seed' : 'input'} ${n} (saved as ${keep}): ${(e as Error)?.constructor?.name}: ${String((e as Error)?.message).slice(0, 300)}`,
          );
        }
        refused++;
      }
      const took = Date.now() - s;
      if (took > SLOW_MS) failures.push(`input ${n} took ${took} ms`);
    }
    expect(failures).toEqual([]);
    expect(n).toBeGreaterThan(corpus.length + 20);
    expect(refused).toBeGreaterThan(0);
  },
  BUDGET_MS * 4 + 30_000,
);

// The binary trace (lib/interop/trace_binary.ts; its layers read by the core, trace_ids.h): bytes
// flipped or set to edge values (mostly in the header and table, one edit in four anywhere),
// truncated or appended, with the header's and the layers' checksums redone half the time so the
// checks behind them are reached too. Seeds are written by writeBinaryTrace (8-bit and 16-bit ids).
test(
  'fuzz mctrace: every input reads or is a coded MoecapError',
  async () => {
    const xxh = (b: Uint8Array) => BigInt('0x' + (loadAddon() as unknown as { xxhash64(b: Uint8Array): string }).xxhash64(b));
    const dir = fs.mkdtempSync(path.join(tmp, 'mctrace-'));
    const seedsBin = [
      [8, 2, 2, 40],
      [300, 4, 1, 25],
    ].map(([E, k, L, T], i) => {
      const f = path.join(dir, `seed${i}.mctrace`);
      const layers = Array.from({ length: L }, (_, l) => sampleRouting(T, k, zipfWeights(E, 1), 5 + l));
      writeBinaryTrace(f, { layers: L, topK: k, tokens: layers.map(() => T), layer: (l) => layers[l] }, E);
      return fs.readFileSync(f);
    });
    const rng = new Rng(SEED ^ 0x6d63);
    const file = path.join(dir, 'in.mctrace');
    const failures: string[] = [];
    let n = 0,
      refused = 0;
    const t0 = Date.now();
    for (; Date.now() - t0 < BUDGET_MS && failures.length < 3; n++) {
      let b = Buffer.from(seedsBin[rng.int(seedsBin.length)]);
      const L = b.readUInt32LE(12);
      const edits = n < seedsBin.length ? 0 : 1 + rng.int(4);
      for (let j = 0; j < edits; j++) {
        const r = rng.int(5);
        // Mostly the header and table; one edit in four anywhere (the id blocks too).
        const at = rng.int(rng.int(4) === 0 ? b.length : Math.min(b.length, 64 + 16 * L + 8));
        if (r === 0) b[at] ^= 1 << rng.int(8);
        else if (r === 1 && at + 4 <= b.length) b.writeUInt32LE([0, 1, 255, 256, 65536, 0xffffffff][rng.int(6)], at & ~3);
        else if (r === 2) b = b.subarray(0, rng.int(b.length + 1));
        else if (r === 3) b = Buffer.concat([b, Buffer.alloc(1 + rng.int(64), rng.int(256))]);
        else b[at] = rng.int(256);
      }
      if (rng.int(2) === 0 && b.length >= 64) {
        const Lb = Math.min(b.readUInt32LE(12), 4096);
        // The layers' checksums redone too, so the core's id checks behind them are reached.
        const tokenBytes = Math.min(b.readUInt32LE(20) * b.readUInt32LE(24), 2 ** 20);
        for (let l = 0, at = 64 + 16 * Lb; l < Lb && 64 + 16 * l + 16 <= b.length; l++) {
          const n = Number(b.readBigUInt64LE(64 + 16 * l)) * tokenBytes;
          if (at + n <= b.length) b.writeBigUInt64LE(xxh(b.subarray(at, at + n)), 64 + 16 * l + 8);
          at += n;
        }
        if (64 + 16 * Lb <= b.length) b.writeBigUInt64LE(xxh(Buffer.concat([b.subarray(0, 40), b.subarray(64, 64 + 16 * Lb)])), 40);
      }
      fs.writeFileSync(file, b);
      const s = Date.now();
      try {
        const t = await TraceSpill.read(file);
        for (let l = 0; l < t.layers; l++) t.layer(l);
        t.close();
      } catch (e) {
        const ok = e instanceof MoecapError && isErrorCode((e as { code?: unknown }).code);
        if (n < seedsBin.length || !ok) {
          const keep = path.join(os.tmpdir(), `moecap-fuzz-mctrace-${SEED}-${n}.mctrace`);
          fs.writeFileSync(keep, b);
          failures.push(`input ${n} (saved as ${keep}): ${(e as Error)?.constructor?.name}: ${String((e as Error)?.message).slice(0, 300)}`);
        }
        refused++;
      }
      if (Date.now() - s > SLOW_MS) failures.push(`input ${n} took ${Date.now() - s} ms`);
    }
    expect(failures).toEqual([]);
    expect(n).toBeGreaterThan(seedsBin.length + 20);
    expect(refused).toBeGreaterThan(0);
  },
  BUDGET_MS * 4 + 30_000,
);
