// `moecap run --ep`: flags refused before anything runs, and the launch check without mpirun.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { cli } from '../cli_capture';

describe('moecap run --ep: bad flags', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-ep-cli-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const base = ['run', '--preset', 'tiny', '--phase', 'prefill', '--out', dir];
  const cases: Array<[string[], RegExp]> = [
    [['--ep', '0'], /--ep must be an integer >= 1/],
    [['--ep', '2.5'], /--ep must be an integer >= 1/],
    [['--ep', '2', '--ep-placement', 'random'], /--ep-placement must be contiguous or balanced, got 'random'/],
    [['--ep', '2', '--ep-redundant', '-1'], /--ep-redundant must be an integer >= 0/],
    [['--ep', '2', '--offload', '0.5,1'], /--offload: with --ep give one value, got 0.5,1/],
    [['--ep', '2', '--offload', '0'], /--offload must be in \(0, 1\]/],
    [['--ep', '2', '--layers', '0'], /--layers must be an integer >= 1/],
    [['--ep', '2', '--offload', '0.5', '--offload-policy', 'fifo'], /--offload-policy must be lru, lfu, lfru or static/],
    [['--ep', '2', '--capacity-factor', '-1'], /--capacity-factor must be >= 0/],
    [['--ep', '2', '--capacity-factor', '0.5,1'], /--capacity-factor: with --ep give one value, got 0.5,1/],
    [['--ep', '2', '--capacity-factor', '1', '--backend', 'cuda'], /--capacity-factor does not work with --ep --backend cuda yet/],
    [['--ep', '2', '--batch', '1,4'], /--batch: with --ep give one value, got 1,4/],
    [['--ep-placement', 'balanced'], /--ep-placement and --ep-redundant need --ep N/],
  ];
  for (const [flags, msg] of cases) {
    test(flags.join(' '), async () => {
      const r = await cli([...base, ...flags]);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/^moecap: ERR_USAGE: /);
      expect(r.err).toMatch(msg);
      expect(fs.readdirSync(dir)).toEqual([]);
    });
  }
  test('--ep 2 outside mpirun: one line saying how to launch it, exit 1, nothing written', async () => {
    const saved = { ...process.env };
    for (const k of Object.keys(process.env)) if (/^(OMPI_|PMI_|PMIX_)/.test(k)) delete process.env[k];
    try {
      const r = await cli([...base, '--ep', '2']);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(
        /^moecap: ERR_BACKEND_UNAVAILABLE: expert parallelism over 2 ranks needs one process per rank started by mpirun.*`mpirun -np 2 npx moecap run --ep 2 \.\.\.`/,
      );
      expect(fs.readdirSync(dir)).toEqual([]);
    } finally {
      Object.assign(process.env, saved);
    }
  });
});
