// Seeded fuzzing of every TypeScript parser of outside input (test/fuzz/ts/mutate.ts): each input
// either parses or is refused with a MoecapError carrying a code — never another error type, never
// a hang. Seeds: test/fuzz/corpus/<parser>/. MOECAP_FUZZ_MS sets the time per parser (default 2 s),
// MOECAP_FUZZ_SEED the seed; a failing input is saved and named in the failure.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { isErrorCode, MoecapError } from '../../lib/errors';
import { loadResults } from '../../lib/report/write_report';
import { planFromResults, readResumable, loadPrices } from '../../lib/cap/runner';
import { parseTrace } from '../../lib/cap/routing';
import { planFingerprint } from '../../lib/cap/plan';
import { readProfileFile } from '../../lib/cap/profile_file';
import { resolvePeaks } from '../../lib/cap/peaks';
import { loadTaskAccuracy } from '../../lib/cap/task_accuracy';
import { mutate, Rng } from './ts/mutate';

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
  parse: (file: string, dir: string) => unknown;
}

const TARGETS: Target[] = [
  { name: 'results', file: 'results.json', parse: (f) => loadResults(f) },
  {
    name: 'results',
    file: 'results.json',
    seedsMayBeRefused: true,
    parse: (_f, dir) => readResumable(dir, planFingerprint(planFromResults(dir))),
  },
  { name: 'trace', file: 'trace.jsonl', jsonl: true, parse: (f) => parseTrace(f, 8, 2) },
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
  (label, t) => {
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
        t.parse(file, dir);
        if (n < corpus.length) continue;
      } catch (e) {
        const ok = e instanceof MoecapError && isErrorCode((e as { code?: unknown }).code);
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
