// Expert parallelism under a real mpirun (2 ranks × 1 thread over shared memory), and the loader's
// refusals. The mpirun tests need `mpirun` and build-mpi/libmoecap_mpi.so (npm run build:mpi);
// without them they are skipped with the reason printed.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { createMoeLayer } from '../../lib';
import { checkpointReadCounters } from '../../lib/checkpoint/checkpoint';
import { buildGguf } from '../checkpoint/build';
import type { RefSpec } from '../checkpoint/family_reference';
import { rng } from '../checkpoint/writers';
import { writeJsonlTrace, writeMctrace } from '../trace_files';

const root = path.resolve(__dirname, '..', '..');
const library = path.join(root, 'build-mpi', 'libmoecap_mpi.so');
const rankScript = path.join(__dirname, 'mpi_rank.js');
const hasMpirun = spawnSync('sh', ['-c', 'command -v mpirun'], { encoding: 'utf8' }).status === 0;
const skipReason = !hasMpirun
  ? 'mpirun not found (apt-get install openmpi-bin libopenmpi-dev)'
  : !fs.existsSync(library)
    ? `${library} not built (npm run build:mpi)`
    : '';
if (skipReason) console.log(`ep_mpi: mpirun tests skipped: ${skipReason}`);
const mpiTest = skipReason ? test.skip : test;

const rootEnv = { OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1', OMPI_MCA_rmaps_base_oversubscribe: '1' };

function mpirun(args: string[]) {
  return spawnSync('mpirun', ['-np', '2', '--oversubscribe', 'node', rankScript, ...args], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, ...rootEnv },
  });
}

/** `moecap ARGS` (the published bin) as 2 ranks under mpirun. */
function moecapRanks(args: string[], timeout = 120_000) {
  return spawnSync('mpirun', ['-np', '2', '--oversubscribe', process.execPath, path.join(root, 'bin', 'moecap.js'), ...args], {
    encoding: 'utf8',
    timeout,
    env: { ...process.env, ...rootEnv },
  });
}

const perExpertQ8 = (F: number, H: number) => ((3 * F * H) / 32) * 34; // gate, up, down rows in Q8_0 blocks

/** Checkpoint bytes the single-process layer reads (it packs every expert). */
async function wholeLayerRead(checkpoint: string): Promise<number> {
  const before = checkpointReadCounters().bytes;
  (await createMoeLayer({ checkpoint, layer: 0, threads: 1 })).close();
  return checkpointReadCounters().bytes - before;
}

/** Runs the 2 ranks; rank 0's result, its gathered output checked bitwise against the single-process layer's. */
function runRanks(args: string[], H: number) {
  const r = mpirun(args);
  expect(r.stderr).not.toMatch(/Error/);
  expect(r.status).toBe(0);
  const res = JSON.parse(fs.readFileSync(path.join(args[0], 'result.json'), 'utf8'));
  const a = floats(res.epOutput),
    b = floats(res.singleOutput);
  expect(a.length).toBe(23 * H);
  expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
  return res;
}

function floats(b64: string): Float32Array {
  const b = Buffer.from(b64, 'base64');
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

describe('expert parallelism over mpirun -np 2', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-ep-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  for (const mode of ['contiguous', 'balanced']) {
    mpiTest(`${mode}: the gathered output is bitwise equal to the single-process layer's`, () => {
      const r = mpirun([dir, mode]);
      expect(r.stderr).not.toMatch(/Error/);
      expect(r.status).toBe(0);
      const res = JSON.parse(fs.readFileSync(path.join(dir, 'result.json'), 'utf8'));
      const a = floats(res.epOutput),
        b = floats(res.singleOutput);
      expect(a.length).toBe(23 * 64);
      expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
      expect(res.world).toMatchObject({ ranks: 2, builtMpi: expect.stringMatching(/MPI/) });
      expect(res.ranks).toHaveLength(2);
      const held = new Set<number>(res.ranks.flatMap((s: { experts: number[] }) => s.experts));
      expect(held.size).toBe(7);
      if (mode === 'balanced') expect(res.ranks[0].experts.length + res.ranks[1].experts.length).toBe(9); // 2 replicas
      expect(res.ranks[0].rowsSent + res.ranks[1].rowsSent).toBe(res.ranks[0].rowsReceived + res.ranks[1].rowsReceived);
      expect(res.ranks[0].bytesSent).toBeGreaterThan(0);
      expect(res.link.latencySeconds).toBeGreaterThan(0);
      expect(res.link.bandwidthBytesPerSecond).toBeGreaterThan(0);
      expect(res.link.alltoall.length).toBeGreaterThan(1);
    });
  }

  mpiTest('offload on each rank (int8, redundant 2, a cache of half its experts): bitwise equal to the resident layer, per-rank cache counters', () => {
    const r = mpirun([dir, 'offload']);
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.status).toBe(0);
    const res = JSON.parse(fs.readFileSync(path.join(dir, 'result.json'), 'utf8'));
    const a = floats(res.epOutput),
      b = floats(res.singleOutput);
    expect(a.length).toBe(23 * 128);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    for (const s of res.ranks) {
      // First pass: every expert this rank computed was a hit (resident at build) or a miss.
      expect(s.first.offload.hits + s.first.offload.misses).toBeLessThanOrEqual(s.experts.length);
      expect(s.first.offload.bytesRead).toBeGreaterThanOrEqual(0);
      expect(s.offload).toMatchObject({ passes: expect.any(Number), hits: expect.any(Number), misses: expect.any(Number) });
    }
    expect(res.ranks.reduce((n: number, s: { first: { offload: { misses: number } } }) => n + s.first.offload.misses, 0)).toBeGreaterThan(0);
  });

  mpiTest("capacityFactor 0.5: the drops are decided over both ranks' tokens, output bitwise equal to the single-process layer", () => {
    const res = runRanks([dir, 'capacity'], 64);
    expect(res.singleDropped).toBeGreaterThan(0);
    expect(res.ranks).toHaveLength(2);
  });

  mpiTest("from a checkpoint: each rank reads only its experts' bytes, output bitwise equal to the single-process checkpoint layer", async () => {
    const H = 64,
      F = 32,
      E = 6;
    const file = path.join(dir, 'qwen3.gguf');
    const s: RefSpec = { family: 'qwen3_moe', H, F, E, k: 2, normTopkProb: true };
    buildGguf(file, s, 'qwen3moe', 1, [0], [['qwen3moe.expert_feed_forward_length', 'u32', F]], 'Q8_0', rng(7));
    const whole = await wholeLayerRead(file);
    const res = runRanks([dir, 'checkpoint', file], H);
    for (const rank of res.ranks) {
      expect(rank.read.preads).toBeGreaterThan(0);
      expect(rank.read.bytes).toBe(whole - (E - rank.experts.length) * perExpertQ8(F, H));
    }
  });

  mpiTest('from a checkpoint with offload: each rank converts only its experts into its own cached file, which the next run reuses', async () => {
    const H = 64,
      F = 32,
      E = 6;
    const file = path.join(dir, 'qwen3.gguf');
    buildGguf(
      file,
      { family: 'qwen3_moe', H, F, E, k: 2, normTopkProb: true },
      'qwen3moe',
      1,
      [0],
      [['qwen3moe.expert_feed_forward_length', 'u32', F]],
      'Q8_0',
      rng(9),
    );
    const whole = await wholeLayerRead(file);
    const first = runRanks([dir, 'checkpoint-offload', file], H);
    const [folder] = fs.readdirSync(path.join(dir, 'experts'));
    const cached = fs.readdirSync(path.join(dir, 'experts', folder)).sort();
    // No dtype given: the checkpoint's own precision, Q8_0 → int8.
    expect(cached).toEqual([
      'layer0-int8.experts.rank0-of-2',
      'layer0-int8.experts.rank0-of-2.json',
      'layer0-int8.experts.rank1-of-2',
      'layer0-int8.experts.rank1-of-2.json',
    ]);
    for (const [r, rank] of first.ranks.entries()) {
      expect(rank.read.bytes).toBe(whole - (E - rank.experts.length) * perExpertQ8(F, H)); // converted: its experts read once
      const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'experts', folder, `layer0-int8.experts.rank${r}-of-2.json`), 'utf8'));
      expect(JSON.parse(manifest.key)).toMatchObject({ ranks: 2, experts: rank.experts });
    }
    const second = runRanks([dir, 'checkpoint-offload', file], H);
    for (const rank of second.ranks) expect(rank.read.bytes).toBe(whole - E * perExpertQ8(F, H)); // reused: the router only
  });

  mpiTest(
    'moecap run --ep 2 --ep-placement balanced --ep-redundant 2 --layers 2 --offload 0.5: rank 0 writes the results per layer and whole, with the link figures and per-rank cache counters',
    () => {
      const out = path.join(dir, 'out');
      const args = ['run', '--ep', '2', '--ep-placement', 'balanced', '--ep-redundant', '2', '--preset', 'tiny', '--phase', 'prefill'];
      const r = moecapRanks([...args, '--batch', '2', '--seq', '16', '--threads', '1', '--repeats', '2', '--layers', '2', '--offload', '0.5', '--out', out]);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/expert parallelism: 2 ranks, balanced \+ 2 replicas/);
      expect(fs.readdirSync(out)).toEqual(['ep_results.json']);
      const res = JSON.parse(fs.readFileSync(path.join(out, 'ep_results.json'), 'utf8'));
      expect(res).toMatchObject({ schema: 'moecap-ep/1', ranks: 2, placement: 'balanced', redundant: 2, tokens: 32, layers: 2, residentFraction: 0.5 });
      expect(res.perLayer.map((l: { layer: number }) => l.layer)).toEqual([0, 1]);
      // The whole pass is the layers in sequence: each rank's time is the sum of its layers' times.
      for (let q = 0; q < 2; q++) expect(res.perRank[q].totalNs).toBeCloseTo(res.perLayer[0].perRank[q].totalNs + res.perLayer[1].perRank[q].totalNs, 0);
      for (const p of res.perRank) {
        expect(p.offload.hits + p.offload.misses).toBeGreaterThan(0);
        expect(p.offload.bytesRead).toBeGreaterThanOrEqual(0);
      }
      expect(r.stdout).toMatch(/rank 0 offload: hit rate/);
      expect(r.stdout).toMatch(/layer 1: pass/);
      expect(res.perRank).toHaveLength(2);
      expect(res.perRank[0].experts.length + res.perRank[1].experts.length).toBe(8 + 2);
      for (const p of res.perRank)
        for (const k of ['dispatchNs', 'computeNs', 'combineNs', 'bytesSent', 'bytesReceived']) expect(p[k]).toBeGreaterThanOrEqual(0);
      expect(res.imbalance).toBeGreaterThanOrEqual(1);
      expect(res.tokensPerSecond).toBeGreaterThan(0);
      expect(res.link.latencySeconds).toBeGreaterThan(0);
      expect(res.link.pingpong.length).toBe(5);
    },
  );

  mpiTest('moecap run --ep 2 --ep-placement balanced --trace: placement from the trace (JSONL or binary .mctrace), a bad trace refused by the core', () => {
    // every token on experts {0, 1} in layer 0 and {6, 7} in layer 1: contiguous would put each pair on one rank
    const pairs = [Int32Array.from({ length: 64 }, (_, i) => i % 2), Int32Array.from({ length: 64 }, (_, i) => 6 + (i % 2))];
    const jsonl = path.join(dir, 'pairs.jsonl');
    const bin = path.join(dir, 'pairs.mctrace');
    writeJsonlTrace(jsonl, pairs, 2);
    writeMctrace(bin, pairs, 2, 8);
    const args = ['run', '--ep', '2', '--ep-placement', 'balanced', '--preset', 'tiny', '--phase', 'prefill', '--batch', '2', '--seq', '16'];
    const launch = (trace: string, out: string) => moecapRanks([...args, '--threads', '1', '--repeats', '1', '--layers', '2', '--trace', trace, '--out', out]);
    const placements = (trace: string) => {
      const out = path.join(dir, `out-${path.basename(trace)}`);
      const r = launch(trace, out);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const res = JSON.parse(fs.readFileSync(path.join(out, 'ep_results.json'), 'utf8'));
      return res.perLayer.map((l: { perRank: Array<{ experts: number[] }> }) => l.perRank.map((p) => p.experts));
    };
    const fromJsonl = placements(jsonl);
    const rankOf = (layer: number, e: number) => fromJsonl[layer].findIndex((ex: number[]) => ex.includes(e));
    expect(rankOf(0, 0)).not.toBe(rankOf(0, 1));
    expect(rankOf(1, 6)).not.toBe(rankOf(1, 7));
    expect(placements(bin)).toEqual(fromJsonl);
    fs.writeFileSync(jsonl, '{"layer":0,"token":0,"experts":[0,8]}\n');
    const r = launch(jsonl, path.join(dir, 'out-bad'));
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/moecap: ERR_CORRUPT_FILE: trace '.*pairs\.jsonl' line 1 field 'experts': expert id 8 out of range \[0, 8\)/);
  });

  mpiTest("moecap run --ep 2 --capacity-factor 0.5: the plan carries the factor, each rank reports its tokens' dropped assignments", () => {
    const out = path.join(dir, 'out-cf');
    const args = ['run', '--ep', '2', '--preset', 'tiny', '--phase', 'prefill', '--batch', '2', '--seq', '16', '--threads', '1', '--repeats', '2'];
    const r = moecapRanks([...args, '--capacity-factor', '0.5', '--out', out]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const res = JSON.parse(fs.readFileSync(path.join(out, 'ep_results.json'), 'utf8'));
    expect(res.capacityFactor).toBe(0.5);
    // 32 tokens × k over 8 experts with room for half of an even share each: some must drop.
    expect(res.perRank[0].dropped + res.perRank[1].dropped).toBeGreaterThan(0);
    expect(r.stdout).toMatch(/capacity factor 0\.5: assignments dropped per pass/);
  });

  mpiTest(
    "moecap run --ep 2 (bf16, a shared expert, above the caches): each rank's S-MBU and S-MFU, finite, positive (a cause beside any above 1), from its counted rows and bytes",
    () => {
      const out = path.join(dir, 'out-util');
      const args = [
        'run',
        '--ep',
        '2',
        '--preset',
        'qwen1.5-moe-a2.7b',
        '--dtype',
        'bf16',
        '--phase',
        'decode',
        '--batch',
        '4',
        '--threads',
        '1',
        '--repeats',
        '2',
        '--warmup',
        '1',
      ];
      const r = moecapRanks([...args, '--out', out], 180_000);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/S-MBU\s+S-MFU/);
      expect(r.stdout).toMatch(/rank 1 utilisation: .* its ceilings \(measured in this run, 1 threads, every rank at once\)/);
      const res = JSON.parse(fs.readFileSync(path.join(out, 'ep_results.json'), 'utf8'));
      const H = 2048,
        F = 1408,
        Fs = 5632,
        k = 4;
      expect(res.ceilings).toHaveLength(2);
      let rows = 0;
      for (const p of res.perRank) {
        const c = res.ceilings[p.rank];
        expect(c.threads).toBe(1);
        const w = p.compute;
        // Every routed row of the pass is computed on exactly one rank; the shared expert runs on the token's rank.
        rows += w.rows;
        expect(w.rows).toBeGreaterThanOrEqual(p.rowsReceived);
        expect(w.sharedRows).toBe(2);
        // Bytes: its distinct experts' weights at bf16 (3·H·F·2 each), the shared expert's, its rows' activations.
        expect(w.bytes.experts).toBeCloseTo(w.experts * 3 * H * F * 2, 0);
        expect(w.bytes.shared).toBe(3 * H * Fs * 2);
        expect(w.bytes.total).toBeCloseTo(w.bytes.experts + w.bytes.shared + w.bytes.activations, 0);
        expect(w.flops).toBeCloseTo(w.rows * 6 * H * F + w.sharedRows * 6 * H * Fs, 0);
        // A CPU without a bf16 dot-product unit (AVX2 widens bf16 to fp32 FMA) has no bf16 peak: its
        // S-MFU is unavailable, saying so, never a figure against another unit's peak.
        const units = [p.smbu];
        if (c.peakFlops.bf16 === null) expect(p.smfu).toEqual({ available: false, reason: "this rank's CPU has no bf16 compute loop" });
        else units.push(p.smfu);
        for (const u of units) {
          expect(Number.isFinite(u.value)).toBe(true);
          expect(u.value).toBeGreaterThan(0);
          // Above 1 happens when a loaded machine slows the ceiling windows more than the passes:
          // then the result carries its likely cause (and the CLI prints it), never a bare figure.
          if (u.value > 1) expect(u.above1).toMatch(/\w/);
          else expect(u.above1).toBeUndefined();
        }
        // The figures are the counted bytes and FLOPs over the rank's compute time and its own ceilings.
        expect(p.smbu.bytesPerPass).toBe(w.bytes.total);
        expect(p.smbu.peakBandwidth).toBe(Math.max(c.bandwidthBefore, c.bandwidthAfter));
        expect(p.smbu.value).toBeCloseTo(w.bytes.total / w.seconds / p.smbu.peakBandwidth, 9);
        if (c.peakFlops.bf16 !== null) {
          expect(p.smfu).toMatchObject({ peakDtype: 'bf16', peakFlops: c.peakFlops.bf16, flopsPerPass: w.flops });
          expect(p.smfu.value).toBeCloseTo(w.flops / w.seconds / c.peakFlops.bf16, 9);
        }
      }
      expect(rows).toBe(4 * k);
    },
  );

  mpiTest('a rank that exits mid-run: mpirun aborts naming the rank, no result file, nothing half-written', () => {
    const r = mpirun([dir, 'die']);
    expect(r.status).not.toBe(0);
    // Open MPI names a process [[job,1],rank]: rank 1, with its exit code.
    expect(r.stdout + r.stderr).toMatch(/Process name: \[\[\d+,\d+\],1\]\s+Exit code:\s+3/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});

// Each refusal in a fresh process: the loader's state is per process.
function initError(env: Record<string, string>, ranks = 2): { code?: string; message: string } {
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(OMPI_|PMI|PMIX_)/.test(k)) clean[k] = v;
  const code = `try { require(${JSON.stringify(path.join(root, 'dist', 'ep'))}).initEp(${ranks}); console.log(JSON.stringify({message: 'ok'})); }
    catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', env: { ...clean, ...env }, timeout: 60_000 });
  return JSON.parse(r.stdout.trim().split('\n').pop() || '{}');
}

// A stand-in library: the moecap_ep_* symbols with chosen versions, optionally needing a libmpi that is gone.
function stubLibrary(dir: string, o: { abi?: number; built?: string; runtime?: string; needsGoneLibmpi?: boolean }): string {
  const c = path.join(dir, 'stub.c');
  fs.writeFileSync(
    c,
    `#include <stdint.h>
int moecap_ep_abi_version(void) { return ${o.abi ?? 1}; }
const char* moecap_ep_built_mpi(void) { return "${o.built ?? 'Open MPI 4.1.4'}"; }
const char* moecap_ep_runtime_mpi(void) { return "${o.runtime ?? 'Open MPI v4.1.4'}"; }
int moecap_ep_init(int* r, int* s) { *r = 0; *s = 2; return 0; }
int moecap_ep_alltoallv(const void* a, const int64_t* b, void* c, const int64_t* d) { return 1; }
int moecap_ep_pingpong(int64_t b, int i, double* s) { return 1; }
int moecap_ep_alltoall(int64_t b, int i, double* s) { return 1; }
int moecap_ep_barrier(void) { return 0; }
void moecap_ep_abort(int c) {}
int moecap_ep_finalize(void) { return 0; }
const char* moecap_ep_last_error(void) { return "stub"; }
`,
  );
  const out = path.join(dir, 'libstub.so');
  const args = ['-shared', '-fPIC', c, '-o', out];
  if (o.needsGoneLibmpi) {
    fs.writeFileSync(path.join(dir, 'gone.c'), 'int moecap_gone(void) { return 1; }\n');
    const gone = path.join(dir, 'libmpi_gone.so');
    expect(spawnSync('cc', ['-shared', '-fPIC', path.join(dir, 'gone.c'), '-o', gone, '-Wl,-soname,libmpi_gone.so']).status).toBe(0);
    args.push('-Wl,--no-as-needed', gone);
  }
  expect(spawnSync('cc', args).status).toBe(0);
  if (o.needsGoneLibmpi) fs.unlinkSync(path.join(dir, 'libmpi_gone.so'));
  return out;
}

describe('expert parallelism: one clear error per cause', () => {
  const launched = { OMPI_COMM_WORLD_SIZE: '2', OMPI_COMM_WORLD_RANK: '0' };
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-ep-stub-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('not launched by mpirun', () => {
    const e = initError({});
    expect(e.code).toBe('ERR_BACKEND_UNAVAILABLE');
    expect(e.message).toMatch(/started by mpirun.*mpirun -np 2 npx moecap run --ep 2/);
  });
  test('mpirun started another number of ranks', () => {
    const e = initError({ OMPI_COMM_WORLD_SIZE: '3' });
    expect(e).toMatchObject({ code: 'ERR_BACKEND_UNAVAILABLE', message: expect.stringMatching(/mpirun started 3 ranks but expert parallelism asks for 2/) });
  });
  test('library not built', () => {
    const e = initError({ ...launched, MOECAP_MPI_LIBRARY: path.join(dir, 'nope.so') });
    expect(e).toMatchObject({ code: 'ERR_BACKEND_UNAVAILABLE', message: expect.stringMatching(/libmoecap_mpi.so not found .*npm run build:mpi/) });
  });
  test('libmpi missing', () => {
    const lib = stubLibrary(fs.mkdtempSync(path.join(dir, 'gone-')), { needsGoneLibmpi: true });
    const e = initError({ ...launched, MOECAP_MPI_LIBRARY: lib });
    expect(e).toMatchObject({
      code: 'ERR_BACKEND_UNAVAILABLE',
      message: expect.stringMatching(/^libmpi missing: .*libmpi_gone.so.*apt-get install openmpi-bin/),
    });
  });
  test('mismatched MPI (built against MPICH, Open MPI loaded)', () => {
    const lib = stubLibrary(fs.mkdtempSync(path.join(dir, 'mm-')), { built: 'MPICH 4.0.2' });
    const e = initError({ ...launched, MOECAP_MPI_LIBRARY: lib });
    expect(e).toMatchObject({
      code: 'ERR_BACKEND_UNAVAILABLE',
      message: expect.stringMatching(/mismatched MPI: .*built against MPICH 4.0.2 but Open MPI v4.1.4 is loaded.*npm run build:mpi/),
    });
  });
  test('another C ABI version', () => {
    const lib = stubLibrary(fs.mkdtempSync(path.join(dir, 'abi-')), { abi: 99 });
    const e = initError({ ...launched, MOECAP_MPI_LIBRARY: lib });
    expect(e).toMatchObject({ code: 'ERR_BACKEND_UNAVAILABLE', message: expect.stringMatching(/C ABI version 99.*npm run build:mpi/) });
  });
  test('MPI world size differs from the ranks asked for', () => {
    // The stub's world has 2 ranks; the launcher variable agrees with --ep 3 but MPI does not.
    const lib = stubLibrary(fs.mkdtempSync(path.join(dir, 'size-')), {});
    const e = initError({ OMPI_COMM_WORLD_SIZE: '3', MOECAP_MPI_LIBRARY: lib }, 3);
    expect(e).toMatchObject({
      code: 'ERR_BACKEND_UNAVAILABLE',
      message: expect.stringMatching(/MPI_COMM_WORLD has 2 ranks but expert parallelism asks for 3/),
    });
  });
});
