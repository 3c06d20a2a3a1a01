// Expert parallelism on paper (lib/ep_plan.ts, `moecap ep-plan`): the planner's byte count is the
// run's own (loopback ranks, every dtype), one plan row computed by hand, `--check` against a
// result file, and bad flags.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { cli } from '../cli_capture';
import { simulateEp } from '../../lib/ep';
import { epBytesSent, epPlanRow, epWireSizes, findLink, type EpPlanInputs } from '../../lib/ep_plan';
import { findPreset } from '../../lib/cap/presets';
import { findDatasheet, peaksFromDatasheet } from '../../lib/cap/hardware';
import type { MoeLayerOptions } from '../../lib/moe_layer';
import { gaussian, makeWeights } from '../helpers';

describe('ep-plan: wire sizes', () => {
  test('by hand: int8 rows are 32-blocks of (fp32 scale, int32 sum, 32 int8), padded to 64 with the router weight', () => {
    // H 7168: 224 blocks × 40 B = 8960; + 4 B weight → 8964 → 9024 (64-multiple); results 7168·4.
    expect(epWireSizes('int8', 7168, 256)).toEqual({ activationBytes: 8960, recordBytes: 9024, resultBytes: 28672, countsBytes: 1024 });
    // f32 rows are sent as they are: 64·4 + 4 → 320; bf16: 100·2 = 200 → 256 (64-multiple), +4 → 320.
    expect(epWireSizes('f32', 64, 7)).toEqual({ activationBytes: 256, recordBytes: 320, resultBytes: 256, countsBytes: 28 });
    expect(epWireSizes('bf16', 100, 8)).toMatchObject({ activationBytes: 256, recordBytes: 320, resultBytes: 128 * 4 });
  });
  test('bad arguments', () => {
    expect(() => epWireSizes('fp16', 64, 8)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringMatching(/dtype must be one of/) }),
    );
    expect(() => epWireSizes('int8', 0, 8)).toThrow(/hidden must be an integer/);
    expect(() => epWireSizes('int8', 64, 2.5)).toThrow(/experts must be an integer/);
  });

  for (const dtype of ['f32', 'bf16', 'int8', 'int4'] as const)
    test(`${dtype}: the planner's bytes equal what each loopback rank counted sending (3 ranks, odd E, odd H)`, async () => {
      const c = { hidden: 96, intermediate: 40, experts: 7, topK: 3 };
      const opts: MoeLayerOptions = { ...c, dtype, threads: 1, weights: makeWeights(c as never, 5) as never };
      const T = 29;
      const sim = await simulateEp(opts, { ranks: 3 }, gaussian(T * c.hidden, 9));
      const w = epWireSizes(dtype, c.hidden, c.experts);
      for (const r of sim.ranks) {
        expect(r.rowsSent).toBeGreaterThan(0);
        expect(epBytesSent(w, 3, r.rowsSent, r.rowsReceived)).toBe(r.bytesSent);
      }
    });
});

describe('ep-plan: one row by hand', () => {
  test('deepseek-v3, 8 ranks, 64 tokens per rank, int8, 100 GbE, H100 SXM', () => {
    const model = findPreset('deepseek-v3');
    const inputs: EpPlanInputs = { model, ranks: 8, dtype: 'int8', peaks: peaksFromDatasheet(findDatasheet('h100-sxm')), wire: epWireSizes('int8', 7168, 256) };
    const r = epPlanRow(inputs, 64, findLink('100gbe'));
    // 64·8 rows, 7/8 of them to other ranks = 448 out and (uniform) 448 results back; counts to 7 peers.
    const bytes = 7 * 1024 + 448 * 9024 + 448 * 28672;
    expect(bytes).toBe(16894976);
    expect(r.rowsSent).toBe(448);
    expect(r.bytesSent).toBe(bytes);
    expect(r.bytesPerToken).toBe(bytes / 64);
    expect(r.commSeconds).toBeCloseTo(3 * 5e-6 + bytes / 12.5e9, 12);
    // Memory-bound: ~all 32 experts of the rank are hit (512 tokens × 8 of 256), each 3·7168·2048
    // weights at 1088/1024 B (int8 + scales), the shared expert, the fp32 router; 3.35 TB/s.
    const hit = 32 * (1 - Math.pow(1 - 8 / 256, 512));
    const w = 3 * 7168 * 2048 * (1088 / 1024);
    const memSeconds = (hit * w + w + 7168 * 256 * 4) / 3.35e12;
    const flopSeconds = (64 * (2 * 7168 * 256 + 2 * 8 * 3 * 7168 * 2048 + 2 * 3 * 7168 * 2048)) / 1978.9e12;
    expect(flopSeconds).toBeLessThan(memSeconds);
    expect(r.computeBound).toBe('memory');
    expect(r.computeSeconds).toBeCloseTo(memSeconds, 12);
    expect(r.commOverCompute).toBeCloseTo((3 * 5e-6 + bytes / 12.5e9) / memSeconds, 9);
  });
});

describe('moecap ep-plan', () => {
  test('prints the table, the crossover and the link assumptions', async () => {
    const r = await cli(['ep-plan', '--preset', 'deepseek-v3', '--ranks', '8', '--batch', '64', '--link', '100gbe,nvlink4']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/deepseek-v3: H 7168, E 256, k 8.*9024 B per row out, 28672 B per result back/);
    expect(r.out).toMatch(/\n {8}64 {2}100gbe {4}\s+263\.98 {2}\s+16\.895 {2}\s+1366\.6 /);
    expect(r.out).toMatch(/communication-bound from batch\/rank: 100gbe .*, nvlink4 /);
    expect(r.out).toMatch(/100gbe: assumed: 100 Gbit\/s line rate/);
  });
  test('--json', async () => {
    const r = await cli(['ep-plan', '--preset', 'qwen3-235b-a22b', '--ranks', '32', '--batch', '1,1024', '--link', 'ib-ndr', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j[0]).toMatchObject({ model: 'qwen3-235b-a22b', ranks: 32, dtype: 'int8', hardware: 'h100-sxm' });
    expect(j[0].rows).toHaveLength(2);
    expect(j[0].rows[1].bytesPerToken).toBeCloseTo(j[0].rows[0].bytesPerToken - 31 * 512 * (1 - 1 / 1024), 6);
  });
  const bad: Array<[string[], RegExp]> = [
    [['--link', 'carrier-pigeon'], /--link: unknown link 'carrier-pigeon' \(known: 100gbe, ib-ndr, nvlink4\)/],
    [['--ranks', '0'], /--ranks must be an integer in \[1, 4096\]/],
    [['--ranks', '512'], /--ranks 512: deepseek-v3 has only 256 experts/],
    [['--batch', '0'], /--batch must be integers in \[1, 65536\]/],
    [['--dtype', 'fp16'], /--dtype: unknown dtype 'fp16'/],
    [['--hardware', 'abacus'], /--hardware: unknown hardware 'abacus'/],
    [['--preset', 'gpt-5'], /--preset: unknown preset 'gpt-5'/],
  ];
  for (const [args, msg] of bad)
    test(`refuses ${args.join(' ')}`, async () => {
      const r = await cli(['ep-plan', ...args]);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(msg);
    });

  describe('--check', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-ep-plan-'));
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
    // A result file in `moecap run --ep`'s shape from a loopback pass of the tiny preset's shape.
    async function resultFile(tamper: boolean): Promise<string> {
      const p = findPreset('tiny');
      const c = { hidden: p.hidden, intermediate: p.intermediate, experts: p.experts, topK: p.topK };
      const sim = await simulateEp({ ...c, dtype: 'bf16', threads: 1, weights: makeWeights(c as never, 3) as never }, { ranks: 2 }, gaussian(40 * c.hidden, 4));
      const res = {
        schema: 'moecap-ep/1',
        ranks: 2,
        preset: 'tiny',
        phase: 'prefill',
        tokens: 40,
        dtype: 'bf16',
        link: { latencySeconds: 2e-6, bandwidthBytesPerSecond: 1e9 },
        perRank: sim.ranks.map((s, rank) => ({ ...s, rank, bytesSent: s.bytesSent + (tamper && rank === 1 ? 64 : 0) })),
      };
      const f = path.join(dir, `${tamper ? 'bad' : 'good'}.json`);
      fs.writeFileSync(f, JSON.stringify(res));
      return f;
    }
    test('bytes equal rank by rank: exit 0', async () => {
      const r = await cli(['ep-plan', '--check', await resultFile(false)]);
      expect(r.code).toBe(0);
      expect(r.out.match(/ yes /g)).toHaveLength(2);
    });
    test('a rank whose bytes differ: NO, exit 1', async () => {
      const r = await cli(['ep-plan', '--check', await resultFile(true)]);
      expect(r.code).toBe(1);
      expect(r.out).toMatch(/\n {3}1 .* NO /);
    });
    test('not a result file', async () => {
      const f = path.join(dir, 'x.json');
      fs.writeFileSync(f, '{"schema":"other"}');
      const r = await cli(['ep-plan', '--check', f]);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/not a moecap run --ep result/);
      const m = await cli(['ep-plan', '--check', path.join(dir, 'missing.json')]);
      expect(m.err).toMatch(/--check .*missing.json: ENOENT/);
    });
  });
});
