// The package as users load it: `require('moecap')` and `import ... from 'moecap'` resolved through
// package.json (exports, main, types) from a folder whose node_modules/moecap links to this
// repository, and the public types checked by compiling test/package/types/public_api.ts against dist/.
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const ROOT = path.join(__dirname, '..', '..');
const NAMES = [
  'createMoeLayer',
  'createMoeModel',
  'MoeLayer',
  'MoeModel',
  'systemInfo',
  'backendInfo',
  'fidelity',
  'run',
  'calibrate',
  'writeReport',
  'PRESETS',
  'VERSION',
  'MoecapError',
  'MoecapTypeError',
  'MoecapRangeError',
  'UsageError',
  'PlanError',
  'ReportInputError',
  'ERROR_CODES',
];
let dir: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-pkg-'));
  fs.mkdirSync(path.join(dir, 'node_modules', '@types'), { recursive: true });
  fs.symlinkSync(ROOT, path.join(dir, 'node_modules', 'moecap'), 'dir');
  fs.symlinkSync(path.join(ROOT, 'node_modules', '@types', 'node'), path.join(dir, 'node_modules', '@types', 'node'), 'dir');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const node = (args: string[]) => spawnSync(process.execPath, args, { cwd: dir, encoding: 'utf8' });

test("require('moecap') gives the named exports", () => {
  const r = node([
    '-e',
    `const m = require('moecap'); console.log(JSON.stringify(${JSON.stringify(NAMES)}.filter((n) => m[n] === undefined)), typeof m.createMoeLayer)`,
  ]);
  expect(r.stderr).toBe('');
  expect(r.stdout.trim()).toBe('[] function');
});

test("import { createMoeLayer } from 'moecap' works from ESM, with every named export", () => {
  const r = node([
    '--input-type=module',
    '-e',
    `import { createMoeLayer, MoecapError } from 'moecap'; import * as m from 'moecap';
     const l = await createMoeLayer({ hidden: 16, intermediate: 8, experts: 4, topK: 2, threads: 1, weights: { seed: 1 } });
     const y = await l.forward(new Float32Array(16).fill(0.5)); l.close();
     let code = null; try { l.info(); } catch (e) { code = e instanceof MoecapError ? e.code : 'not moecap'; }
     console.log(JSON.stringify(${JSON.stringify(NAMES)}.filter((n) => m[n] === undefined)), y.output.length, code);`,
  ]);
  expect(r.stderr).toBe('');
  expect(r.stdout.trim()).toBe('[] 16 ERR_CLOSED');
});

test('the bin still runs through the package', () => {
  const out = execFileSync(process.execPath, [path.join(dir, 'node_modules', 'moecap', 'bin', 'moecap.js'), '--version'], { cwd: dir, encoding: 'utf8' });
  expect(out.trim()).toBe(JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version);
});

test('the public types: correct uses compile, wrong ones are rejected (tsc --noEmit)', () => {
  for (const f of ['public_api.ts', 'tsconfig.json']) fs.copyFileSync(path.join(__dirname, 'types', f), path.join(dir, f));
  const r = node([path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(dir, 'tsconfig.json')]);
  expect(r.stdout + r.stderr).toBe('');
  expect(r.status).toBe(0);
});
