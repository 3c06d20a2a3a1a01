// Expert parallelism over TCP: 2 ranks in two network namespaces (scripts/ep-netns.sh: a bridge,
// a veth pair to each, the TCP BTL only), unlimited, through a 1 Gbit/s tbf limit, and over the
// emulated link (tun devices joined by scripts/linkemu.c) at 1 Gbit/s with 200 µs one-way delay.
// Needs root, `ip`/`tc`, mpirun and build-mpi/libmoecap_mpi.so (and /dev/net/tun and cc for the
// emulated link); skipped with the reason printed otherwise.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { main } from '../../lib/cli/main';

const root = path.resolve(__dirname, '..', '..');
const script = path.join(root, 'scripts', 'ep-netns.sh');
const library = path.join(root, 'build-mpi', 'libmoecap_mpi.so');

// `link`: the script's link options (--rate R, and --delay D for the emulated link).
function netns(link: string[], cmd: string[], env: NodeJS.ProcessEnv = process.env) {
  return spawnSync('bash', [script, ...link, '--', ...cmd], { encoding: 'utf8', timeout: 110_000, env });
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
// The emulated link (tun devices and scripts/linkemu.c) has its own requirements (/dev/net/tun, cc).
function emulatorReason(): string {
  if (skipReason) return skipReason;
  const r = spawnSync('bash', [script, '--check', '--delay', '200us'], { encoding: 'utf8', timeout: 60_000 });
  if (r.status === 77) return r.stderr.trim();
  if (r.status !== 0) throw new Error(`scripts/ep-netns.sh --check --delay failed (${String(r.status)}): ${r.stderr}`);
  return '';
}
const emulatorSkip = emulatorReason();
if (emulatorSkip && !skipReason) console.log(`ep_netns: emulated link skipped: ${emulatorSkip}`);
const emulatorTest = emulatorSkip ? test.skip : test;

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
    const r = netns(['--rate', 'unlimited'], [process.execPath, path.join(__dirname, 'mpi_rank.js'), out, 'balanced']);
    expect(r.stderr).toMatch(/ep-netns: rank 0 in .* link rate unlimited/);
    expect(r.status).toBe(0);
    const res = JSON.parse(fs.readFileSync(path.join(out, 'result.json'), 'utf8'));
    expect(res.epOutput.length).toBeGreaterThan(1000);
    expect(res.epOutput).toBe(res.singleOutput);
    expect(res.ranks[0].bytesSent).toBeGreaterThan(0);
  });

  interface EpResults {
    link: Link;
    dispatchShare: number;
    combineShare: number;
    perRank: Array<{ bytesSent: number }>;
  }
  const files: string[] = [];
  // 2048 tokens of the tiny preset: ~1 MiB each way per rank and pass, milliseconds at 1 Gbit/s.
  const run = (name: string, link: string[]): EpResults => {
    const out = path.join(dir, name);
    const r = netns(link, [
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
    return JSON.parse(fs.readFileSync(path.join(out, 'ep_results.json'), 'utf8')) as EpResults;
  };
  let fast: EpResults | undefined; // the unlimited veth pair, the baseline of both link tests

  netnsTest('a 1 Gbit/s link: lower calibrated bandwidth and a larger communication share than the unlimited one', async () => {
    fast = run('unlimited', ['--rate', 'unlimited']);
    const slow = run('1gbit', ['--rate', '1gbit']);
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

  emulatorTest('an emulated 1 Gbit/s link with 200 µs one-way delay: calibrated latency up by the delay, a larger communication share', () => {
    const base = fast ?? run('unlimited', ['--rate', 'unlimited']);
    const delay = 200e-6;
    // Over the emulated link (tun devices, the TCP BTL on their subnet) the output is still bitwise equal
    // (without the link calibration, which the run below makes: through the delay it takes seconds).
    const eq = fs.mkdtempSync(path.join(dir, 'eq-delay-'));
    const r = netns(['--rate', '1gbit', '--delay', '200us'], [process.execPath, path.join(__dirname, 'mpi_rank.js'), eq, 'balanced'], {
      ...process.env,
      MOECAP_TEST_NO_CALIBRATION: '1',
    });
    expect(r.stderr).toMatch(/tun devices 10\.77\.1\.1 and 10\.77\.1\.2 joined by scripts\/linkemu\.c, link rate 1gbit, one-way delay 200us/);
    expect(r.stderr).toMatch(/linkemu: A->B: [1-9]\d* packets/); // its statistics: the ranks' traffic went through it
    expect(r.status).toBe(0);
    const res = JSON.parse(fs.readFileSync(path.join(eq, 'result.json'), 'utf8'));
    expect(res.epOutput.length).toBeGreaterThan(1000);
    expect(res.epOutput).toBe(res.singleOutput);
    const slow = run('delay', ['--rate', '1gbit', '--delay', '200us']);
    // Every one-way trip of the ping-pong waits at least the delay: a floor, whatever the load.
    expect(slow.link.latencySeconds).toBeGreaterThanOrEqual(delay);
    expect(slow.link.latencySeconds - base.link.latencySeconds).toBeGreaterThan(0.9 * delay);
    expect(slow.link.bandwidthBytesPerSecond).toBeLessThan(0.2e9);
    expect(slow.perRank[0].bytesSent).toBe(base.perRank[0].bytesSent);
    expect(slow.dispatchShare + slow.combineShare).toBeGreaterThan(base.dispatchShare + base.combineShare);
  });

  test('refusals: a bad --rate or --delay (usage, exit 2); not root (exit 77 with the reason)', () => {
    const r = spawnSync('bash', [script, '--rate', 'fast', '--', 'true'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--rate: Ngbit, Nmbit or unlimited, got fast/);
    const d = spawnSync('bash', [script, '--delay', '5s', '--', 'true'], { encoding: 'utf8' });
    expect(d.status).toBe(2);
    expect(d.stderr).toMatch(/--delay: 0, Nus or Nms, got 5s/);
    const isRoot = process.getuid?.() === 0;
    const hasSetpriv = spawnSync('sh', ['-c', 'command -v setpriv'], { encoding: 'utf8' }).status === 0;
    if (!isRoot || !hasSetpriv) return console.log('ep_netns: the not-root check needs root and setpriv');
    const u = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'bash', script, '--check'], { encoding: 'utf8' });
    expect(u.status).toBe(77);
    expect(u.stderr).toMatch(/ep-netns: skipped: needs root/);
  });
});
