// The NCCL transport's loader (cuda/nccl_transport.cc), through build-cuda/nccl_selftest (built by
// npm run build:cuda where nvcc is found): a missing libnccl.so.2, or one without the entry points,
// is one clear ERR_BACKEND_UNAVAILABLE line and exit 77 (gpu-check's "NCCL not installed"), before
// any CUDA call. The exchange itself needs GPUs and NCCL: scripts/gpu-check.sh runs it.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const exe = path.resolve(__dirname, '..', '..', 'build-cuda', 'nccl_selftest');
const skipReason = fs.existsSync(exe) ? '' : `${exe} not built (npm run build:cuda, needs nvcc)`;
if (skipReason) console.log(`nccl_loader: skipped: ${skipReason}`);
const ncclTest = skipReason ? test.skip : test;

function selftest(library: string) {
  return spawnSync(exe, ['2'], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, MOECAP_NCCL_LIBRARY: library } });
}

describe('NCCL loader', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-nccl-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  ncclTest('libnccl.so.2 missing: ERR_BACKEND_UNAVAILABLE naming the file and what to install', () => {
    const r = selftest(path.join(dir, 'libnccl.so.2'));
    expect(r.status).toBe(77);
    expect(r.stdout).toMatch(
      /^ERR_BACKEND_UNAVAILABLE: NCCL not installed: cannot load .*libnccl\.so\.2 \(.*No such file.*\)\. Install NCCL 2\.7 or newer .*MOECAP_NCCL_LIBRARY/,
    );
  });

  ncclTest('a libnccl without ncclSend: names the missing entry point', () => {
    const c = path.join(dir, 'old.c');
    // An NCCL older than 2.7: no point-to-point calls.
    fs.writeFileSync(
      c,
      ['ncclGetVersion', 'ncclGetUniqueId', 'ncclCommInitRank', 'ncclCommDestroy', 'ncclGroupStart', 'ncclGroupEnd', 'ncclGetErrorString']
        .map((f) => `int ${f}(void) { return 0; }`)
        .join('\n') + '\n',
    );
    const so = path.join(dir, 'libnccl_old.so');
    expect(spawnSync('cc', ['-shared', '-fPIC', c, '-o', so]).status).toBe(0);
    const r = selftest(so);
    expect(r.status).toBe(77);
    expect(r.stdout).toMatch(/^ERR_BACKEND_UNAVAILABLE: NCCL not installed: .*libnccl_old\.so has no ncclSend \(NCCL 2\.7 or newer is needed\)/);
  });

  ncclTest("the unique id: rank 0's reaches every rank over the host transport (stub NCCL, loopback ranks)", () => {
    const c = path.join(dir, 'stub.c');
    fs.writeFileSync(
      c,
      `int ncclGetVersion(int* v) { *v = 21805; return 0; }
int ncclGetUniqueId(char* id) { for (int i = 0; i < 128; i++) id[i] = (char)(i * 7 + 3); return 0; }
${['ncclCommInitRank', 'ncclCommDestroy', 'ncclGroupStart', 'ncclGroupEnd', 'ncclSend', 'ncclRecv'].map((f) => `int ${f}(void) { return 1; }`).join('\n')}
const char* ncclGetErrorString(int r) { return "stub"; }
`,
    );
    const so = path.join(dir, 'libnccl_stub.so');
    expect(spawnSync('cc', ['-shared', '-fPIC', c, '-o', so]).status).toBe(0);
    const r = spawnSync(exe, ['--share-id', '3'], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, MOECAP_NCCL_LIBRARY: so } });
    expect(r.stdout).toMatch(/^NCCL 21805 /);
    expect(r.stdout.match(/^PASS nccl unique id on rank \d\/3: rank 0's$/gm)).toHaveLength(3);
    expect(r.status).toBe(0);
  });
});
