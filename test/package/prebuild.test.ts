// The prebuilt path: pack the package, install the tarball into an empty folder with no compiler
// reachable (CXX=false CC=false) and PREBUILDS_ONLY=1, and load it. Needs `npm run prebuild` first
// (.ci/run does it). Also: a load failure lists every path tried and the platform.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadAddon } from '../../lib/native/loader';

const ROOT = path.join(__dirname, '..', '..');
const prebuildDir = path.join(ROOT, 'prebuilds', `${process.platform}-${process.arch}`);

test('a prebuilt binary exists (npm run prebuild)', () => {
  expect(fs.existsSync(prebuildDir) && fs.readdirSync(prebuildDir).some((f) => f.endsWith('.node'))).toBe(true);
});

test('the packed tarball installs and loads without a compiler', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-pack-'));
  try {
    const packOut = execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', tmp, '--json'], { cwd: ROOT, encoding: 'utf8' });
    const tarball = path.join(tmp, JSON.parse(packOut)[0].filename);
    const app = path.join(tmp, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), '{"name":"app","version":"1.0.0","private":true}');
    const env = { ...process.env, CXX: 'false', CC: 'false', PREBUILDS_ONLY: '1', npm_config_build_from_source: 'false' };
    execFileSync('npm', ['install', '--no-audit', '--no-fund', tarball], { cwd: app, env, encoding: 'utf8', stdio: 'pipe' });
    expect(fs.existsSync(path.join(app, 'node_modules', 'moecap', 'build'))).toBe(false);
    const script = `
      const m = require('moecap');
      m.createMoeLayer({ hidden: 32, intermediate: 16, experts: 4, topK: 2, weights: { seed: 3 } })
        .then(l => l.forward(new Float32Array(64).fill(0.5)).then(r => { console.log(JSON.stringify({ n: r.output.length, isa: r.stats.isa })); l.close(); }));`;
    const out = execFileSync(process.execPath, ['-e', script], { cwd: app, env, encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({ n: 64, isa: expect.any(String) });
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('a failed load lists the paths tried, the platform, and what to do', () => {
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-empty-'));
  try {
    expect(() => loadAddon(empty)).toThrow(/Tried:\n\s+- .*build\/Release\/moecap\.node \(missing\)/);
    expect(() => loadAddon(empty)).toThrow(new RegExp(`platform=${process.platform} arch=${process.arch} glibc=`));
    expect(() => loadAddon(empty)).toThrow(/To fix: /);
  } finally {
    fs.rmSync(empty, { recursive: true, force: true });
  }
});

test('an addon named by MOECAP_ADDON_PATH that does not load is the one path named, with no fall-back', () => {
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-empty-'));
  const saved = process.env.MOECAP_ADDON_PATH;
  const named = path.join(empty, 'elsewhere', 'moecap.node');
  process.env.MOECAP_ADDON_PATH = named;
  try {
    expect(() => loadAddon(empty)).toThrow(`Tried:\n  - ${named} (missing)\nFound:`);
    expect(() => loadAddon(empty)).toThrow('To fix: point MOECAP_ADDON_PATH at a built addon, or unset it.');
  } finally {
    if (saved === undefined) delete process.env.MOECAP_ADDON_PATH;
    else process.env.MOECAP_ADDON_PATH = saved;
    fs.rmSync(empty, { recursive: true, force: true });
  }
});
