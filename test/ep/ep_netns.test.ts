// Expert parallelism over TCP: 2 ranks in two network namespaces (scripts/ep-netns.sh: a bridge,
// a veth pair to each, the TCP BTL only), unlimited and through a 1 Gbit/s tbf limit. Needs root,
// `ip`/`tc`, mpirun and build-mpi/libmoecap_mpi.so; skipped with the reason printed otherwise.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { main } from '../../lib/cli/main';

const root = path.resolve(__dirname, '..', '..');
const script = path.join(root, 'scripts', 'ep-netns.sh');
const library = path.join(root, 'build-mpi', 'libmoecap_mpi.so');

function netns(rate: string, cmd: string[]) {
  return spawnSync('bash', [script, '--rate', rate, '--', ...cmd], { encoding: 'utf8', timeout: 90_000 });
}

function reason(): string {
  if (!fs.existsSync(library)) return `${library} not built (npm run build:mpi)`;
  const r = spawnSync('bash', [script, '--check', '--rate', '1gbit'], { encoding: 'utf8', timeout: 30_000 });
  if (r.status === 77) return r.stderr.trim();
  if (r.status !== 0) throw new Error(`scripts/ep-netns.sh --check failed (${String(r.status)}): ${r.stderr}`);
  return '';
}
const skipReason = reason();
if (skipReason) console.log(`ep_netns: skipped: ${skipReason}`);
const netnsTest = skipReason ? test.skip : test;

interface Link {
  latencySeconds: number;
  bandwidthBytesPerSecond: number;
}

describe('expert parallelism, 2 ranks in two network namespaces over TCP', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-ep-netns-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  netnsTest('the output over TCP is bitwise equal to the single-process layer', () => {
    const out = fs.mkdtempSync(path.join(dir, 'eq-'));
    const r = netns('unlimited', [process.execPath, path.join(__dirname, 'mpi_rank.js'), out, 'balanced']);
    expect(r.stderr).toMatch(/ep-netns: rank 0 in .* link rate unlimited/);
    expect(r.status).toBe(0);
    const res = JSON.parse(fs.readFileSync(path.join(out, 'result.json'), 'utf8'));
    expect(res.epOutput.length).toBeGreaterThan(1000);
    expect(res.epOutput).toBe(res.singleOutput);
    expect(res.ranks[0].bytesSent).toBeGreaterThan(0);
  });

  netnsTest('a 1 Gbit/s link: lower calibrated bandwidth and a larger communication share than the unlimited one', async () => {
    const files: string[] = [];
    // 2048 tokens of the tiny preset: ~1 MiB each way per rank and pass, milliseconds at 1 Gbit/s.
    const run = (rate: string) => {
      const out = path.join(dir, rate);
      const r = netns(rate, [
        process.execPath,
        path.join(root, 'bin', 'moecap.js'),
        'run',
        '--ep',
        '2',
        '--preset',
        'tiny',
        '--phase',
        'prefill',
        '--batch',
        '8',
        '--seq',
        '256',
        '--threads',
        '1',
        '--repeats',
        '3',
        '--out',
        out,
      ]);
      expect(r.status).toBe(0);
      files.push(path.join(out, 'ep_results.json'));
      return JSON.parse(fs.readFileSync(path.join(out, 'ep_results.json'), 'utf8')) as {
        link: Link;
        dispatchShare: number;
        combineShare: number;
        perRank: Array<{ bytesSent: number }>;
      };
    };
    const fast = run('unlimited'),
      slow = run('1gbit');
    // tbf lets through at most 1e9/8 bytes/s (plus its bucket); the veth pair without it is far faster.
    expect(slow.link.bandwidthBytesPerSecond).toBeLessThan(0.2e9);
    expect(slow.link.bandwidthBytesPerSecond).toBeLessThan(fast.link.bandwidthBytesPerSecond);
    expect(slow.perRank[0].bytesSent).toBe(fast.perRank[0].bytesSent); // same routing, same bytes
    expect(slow.dispatchShare + slow.combineShare).toBeGreaterThan(fast.dispatchShare + fast.combineShare);
    // The planner (moecap ep-plan) counts the bytes each rank sent exactly.
    for (const f of files) {
      let out = '';
      const code = await main(
        ['ep-plan', '--check', f],
        (s) => void (out += s),
        () => undefined,
      );
      expect(out.match(/ yes /g)).toHaveLength(2);
      expect(code).toBe(0);
    }
  });

  test('refusals: a bad --rate (usage, exit 2); not root (exit 77 with the reason)', () => {
    const r = spawnSync('bash', [script, '--rate', 'fast', '--', 'true'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--rate: Ngbit, Nmbit or unlimited, got fast/);
    const isRoot = process.getuid?.() === 0;
    const hasSetpriv = spawnSync('sh', ['-c', 'command -v setpriv'], { encoding: 'utf8' }).status === 0;
    if (!isRoot || !hasSetpriv) return console.log('ep_netns: the not-root check needs root and setpriv');
    const u = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'bash', script, '--check'], { encoding: 'utf8' });
    expect(u.status).toBe(77);
    expect(u.stderr).toMatch(/ep-netns: skipped: needs root/);
  });
});
