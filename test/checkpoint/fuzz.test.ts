// Seeded fuzz of the safetensors and GGUF header parsers, and of the GGUF metadata read as a family
// plan (gguf_plan: parse, tensor map, planFromGguf on files buildGguf writes in llama.cpp's layout),
// and `--activations` files (npy: numpy's .npy v1/v2 headers, read by readActivations):
// mutations of valid headers (byte flips, truncation, length and count fields set to edge values,
// JSON tokens spliced) must each parse or throw a MoecapError with a stable code, quickly. The corpus under test/fuzz/corpus/checkpoint/
// holds the seeds and every input that once failed; all of it is replayed first.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { ERROR_CODES, MoecapError } from '../../lib/errors';
import { parseSafetensors } from '../../lib/checkpoint/safetensors';
import * as os from 'os';
import { parseGguf, ggufTensorMap } from '../../lib/checkpoint/gguf';
import { planFromGguf } from '../../lib/checkpoint/families';
import { buildGguf, deepseekV3Gguf } from './build';
import { readActivations } from '../../lib/checkpoint/inputs';
import { corrupt } from '../../lib/checkpoint/tensor_map';
import { encode, ggufBytes, npyBytes, rng, safetensorsBytes } from './writers';

const CORPUS = path.join(__dirname, '..', 'fuzz', 'corpus', 'checkpoint');
const ITERATIONS = Number(process.env.MOECAP_FUZZ_ITERATIONS ?? 3000);

type Parser = (name: string, buf: Buffer) => unknown;

function fetchFrom(name: string, buf: Buffer) {
  return (offset: number, length: number) => {
    if (offset + length > buf.length) throw corrupt(name, 'file ends inside the header (truncated)');
    return buf.subarray(offset, offset + length);
  };
}
type Kind = 'safetensors' | 'gguf' | 'gguf_plan' | 'npy';
const npyFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-npyfuzz-')), 'acts.npy');
afterAll(() => fs.rmSync(path.dirname(npyFile), { recursive: true, force: true }));
const parsers: Record<Kind, Parser> = {
  safetensors: (name, buf) => parseSafetensors(name, buf.length, fetchFrom(name, buf)),
  gguf: (name, buf) => parseGguf(name, buf.length, fetchFrom(name, buf)),
  gguf_plan: (name, buf) => {
    const g = parseGguf(name, buf.length, fetchFrom(name, buf));
    const tensors = ggufTensorMap(g);
    return planFromGguf(g.metadata, name, (t) => tensors.get(t)?.shape);
  },
  npy: (_name, buf) => {
    fs.writeFileSync(npyFile, buf);
    return readActivations(npyFile, 16);
  },
};

/** Whole GGUF files of two families (qwen3moe; deepseek2 with V3's groups, shared expert and a dense block). */
function planSeeds(): Buffer[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-ggufplan-'));
  try {
    const H = 32, // Q8_0 rows are whole blocks of 32 (deepseek2's experts)
      F = 32;
    const q = path.join(dir, 'q.gguf'),
      d = path.join(dir, 'd.gguf');
    buildGguf(
      q,
      { family: 'qwen3_moe', H: 16, F: 8, E: 4, k: 2, normTopkProb: true },
      'qwen3moe',
      2,
      [0, 1],
      [['qwen3moe.expert_feed_forward_length', 'u32', 8]],
      'F32',
      rng(3),
    );
    const ds = deepseekV3Gguf(H, F);
    buildGguf(d, ds.spec, 'deepseek2', 2, [1], ds.kv, 'Q8_0', rng(4));
    return [fs.readFileSync(q), fs.readFileSync(d)];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function seeds(): Record<Kind, Buffer[]> {
  const t = (name: string, dtype: 'F32' | 'BF16', shape: number[]) => ({
    name,
    dtype,
    shape,
    bytes: encode(new Float64Array(shape.reduce((a, b) => a * b, 1)).fill(0.5), dtype).bytes,
  });
  const st = safetensorsBytes(
    [t('model.layers.0.mlp.gate.weight', 'F32', [4, 8]), t('model.layers.0.mlp.experts.0.up_proj.weight', 'BF16', [3, 8]), t('e', 'F32', [0])],
    { format: 'pt' },
  );
  const gt = (name: string, dims: number[]) => ({
    name,
    dims,
    type: 'F32' as const,
    bytes: encode(new Float64Array(dims.reduce((a, b) => a * b, 1)).fill(0.25), 'F32').bytes,
  });
  const gg = ggufBytes(
    [
      ['general.architecture', 'string', 'qwen3moe'],
      ['general.alignment', 'u32', 32],
      ['qwen3moe.expert_count', 'u32', 4],
      ['qwen3moe.flag', 'bool', true],
      ['qwen3moe.scale', 'f32', 2.5],
      ['qwen3moe.big', 'u64', 9],
      ['tokenizer.ggml.tokens', 'strings', ['a', 'bb', '']],
      ['x.ids', 'u32s', [1, 2]],
      ['x.neg', 'i32', -1],
    ],
    [gt('blk.0.ffn_gate_inp.weight', [8, 4]), gt('blk.0.ffn_gate_exps.weight', [8, 2, 4])],
  );
  const acts = (n: number, dt: 'F32' | 'F16' | 'BF16') => encode(new Float64Array(n).fill(0.75), dt).bytes;
  const npy = [npyBytes('<f4', [3, 16], acts(48, 'F32')), npyBytes('<f2', [1, 2, 16], acts(32, 'F16'), 2), npyBytes('<V2', [1, 16], acts(16, 'BF16'))];
  return { safetensors: [st], gguf: [gg], gguf_plan: planSeeds(), npy };
}

/** Parses or throws a coded MoecapError, within a time bound; anything else is a finding. */
function check(kind: string, parse: Parser, buf: Buffer, label: string): string | null {
  const t0 = process.hrtime.bigint();
  try {
    parse(label, buf);
  } catch (e) {
    if (!(e instanceof MoecapError) || !(ERROR_CODES as readonly string[]).includes((e as MoecapError).code)) return `${kind} ${label}: ${String(e)}`;
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  return ms > 1000 ? `${kind} ${label}: took ${ms.toFixed(0)} ms` : null;
}

const INTERESTING_U64 = [0n, 1n, 7n, 8n, 0xffffffffn, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n];
const JSON_TOKENS = [
  '{',
  '}',
  '[',
  ']',
  ',',
  ':',
  '"',
  '-1',
  '1e400',
  '9007199254740993',
  'null',
  'true',
  '"F32"',
  '"data_offsets"',
  '"__metadata__"',
  '\\u0000',
  ' ',
];

function mutate(kind: 'safetensors' | 'gguf', seed: Buffer, r: () => number): Buffer {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)];
  const headerEnd = kind === 'safetensors' ? Math.min(seed.length, 8 + Number(seed.readBigUInt64LE(0))) : Math.min(seed.length, 400);
  let b = Buffer.from(seed);
  const rounds = 1 + Math.floor(r() * 3);
  for (let i = 0; i < rounds; i++) {
    const op = Math.floor(r() * 6);
    const at = Math.floor(r() * Math.max(1, Math.min(b.length, headerEnd)));
    if (op === 0) b[at] ^= 1 << Math.floor(r() * 8);
    else if (op === 1) b = b.subarray(0, Math.floor(r() * b.length));
    else if (op === 2 && at + 8 <= b.length) b.writeBigUInt64LE(pick(INTERESTING_U64), kind === 'safetensors' && r() < 0.5 ? 0 : at);
    else if (op === 3 && at + 4 <= b.length) b.writeUInt32LE(Math.floor(r() * 16), at);
    else if (op === 4 && kind === 'safetensors') {
      // Splice a JSON token into the header and fix the length field so the JSON is what changes.
      const json = b.subarray(8, headerEnd).toString('latin1');
      const pos = Math.floor(r() * json.length),
        del = Math.floor(r() * 3);
      const edited = Buffer.from(json.slice(0, pos) + pick(JSON_TOKENS) + json.slice(pos + del), 'latin1');
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(edited.length));
      b = Buffer.concat([len, edited, b.subarray(headerEnd)]);
    } else b = Buffer.concat([b.subarray(0, at), Buffer.from([Math.floor(r() * 256)]), b.subarray(at)]); // insert a byte
  }
  return b;
}

function corpusFiles(kind: string): string[] {
  const dir = path.join(CORPUS, kind);
  return fs.existsSync(dir)
    ? fs
        .readdirSync(dir)
        .sort()
        .map((f) => path.join(dir, f))
    : [];
}

function save(kind: string, buf: Buffer, prefix: string): void {
  const dir = path.join(CORPUS, kind);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `${prefix}-${crypto.createHash('sha256').update(buf).digest('hex').slice(0, 16)}.bin`), buf);
}

for (const kind of ['safetensors', 'gguf', 'gguf_plan', 'npy'] as const) {
  test(`${kind}: the corpus replays and ${ITERATIONS} seeded mutations parse or throw a coded MoecapError`, () => {
    const own = seeds()[kind];
    // The seeds are part of the corpus (written once, then kept).
    if (!corpusFiles(kind).some((f) => path.basename(f).startsWith('seed-'))) own.forEach((s) => save(kind, s, 'seed'));
    for (const s of own) expect(() => parsers[kind]('seed', s)).not.toThrow();
    const findings: string[] = [];
    for (const f of corpusFiles(kind)) {
      const problem = check(kind, parsers[kind], fs.readFileSync(f), path.basename(f));
      if (problem) findings.push(problem);
    }
    const r = rng({ safetensors: 0x5afe, gguf: 0x66af, gguf_plan: 0x9a11, npy: 0x4e70 }[kind]);
    const start = Date.now();
    let ran = 0;
    for (; ran < ITERATIONS && Date.now() - start < 30_000; ran++) {
      const input = mutate(kind === 'safetensors' ? kind : 'gguf', own[ran % own.length], r);
      const problem = check(kind, parsers[kind], input, `mutation ${ran}`);
      if (problem) {
        findings.push(problem);
        save(kind, input, 'finding');
      }
    }
    expect(findings).toEqual([]);
    expect(ran).toBeGreaterThan(Math.min(ITERATIONS, 500));
  });
}
