// A schema-valid results file whose CAP summary names config ids the file does not hold is refused
// with one line (ERR_CORRUPT_FILE naming the file and the id), not an internal TypeError.
import * as fs from 'fs';
import * as path from 'path';
import { readResults, runFixture, removeFixtureProfile } from './fixture';
import { main } from '../../lib/cli/main';

let good: Record<string, unknown>;
let dir: string;

beforeAll(async () => {
  dir = await runFixture({ phases: ['decode'], dtypes: ['f32'], batch: [1, 4], repeats: 2 });
  good = readResults(dir);
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
  removeFixtureProfile();
});

type Mut = (r: any) => void;
const cases: Array<[string, Mut, RegExp]> = [
  [
    'a Pareto frontier id',
    (r) => {
      r.cap.phases.decode.pareto.frontier[0] = 'ghost';
    },
    /cap\.phases\.decode\.pareto\.frontier.*'ghost'/,
  ],
  [
    'a CAP point id',
    (r) => {
      r.cap.phases.decode.points[0].id = 'ghost';
    },
    /cap\.phases\.decode\.points.*'ghost'/,
  ],
  [
    'a radar id',
    (r) => {
      r.cap.phases.decode.radar[1].id = 'ghost';
    },
    /cap\.phases\.decode\.radar.*'ghost'/,
  ],
  [
    'a config id renamed',
    (r) => {
      r.configs[0].id = 'renamed';
    },
    /cap\.phases\.decode\.\w+.*is not a config of this file/,
  ],
  [
    'a dominatedBy target',
    (r) => {
      const d = r.cap.phases.decode.pareto.dominatedBy;
      const k = Object.keys(d)[0] ?? 'x';
      d[k] = 'ghost';
      r.cap.phases.decode.pareto.dominatedBy = d;
    },
    /'(ghost|x)'/,
  ],
  [
    'a point in the wrong phase',
    (r) => {
      r.cap.phases.prefill = JSON.parse(JSON.stringify(r.cap.phases.decode));
    },
    /cap\.phases\.prefill.*is a decode config/,
  ],
];

test.each(cases)('%s that is not a config: ERR_CORRUPT_FILE naming the file and the id', async (_n, mutate, message) => {
  const r = JSON.parse(JSON.stringify(good));
  mutate(r);
  const file = path.join(dir, `bad-${Math.random().toString(36).slice(2)}.json`);
  fs.writeFileSync(file, JSON.stringify(r));
  let stderr = '';
  const status = await main(
    ['report', file, '--out', file + '.html'],
    () => {},
    (s) => void (stderr += s),
  );
  expect(stderr).toMatch(/^moecap: ERR_CORRUPT_FILE: /);
  expect(stderr).toContain(path.basename(file));
  expect(stderr).toMatch(message);
  expect(stderr.trim().split('\n')).toHaveLength(1);
  expect(status).toBe(1);
  expect(fs.existsSync(file + '.html')).toBe(false);
});
