// Expert parallelism on the CUDA backend, host side (no GPU here): backend 'cuda' with `ep` is
// refused before MPI starts with ERR_BACKEND_UNAVAILABLE naming what is missing (driver, device),
// never a crash; bad transport names and combinations are ERR_INVALID_OPTION (ERR_USAGE on the
// command line). The GPU run itself (2 ranks on one GPU, bitwise vs the single-process CUDA
// layer) is scripts/gpu-check.sh's, through test/ep/mpi_rank.js mode cuda.
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { fakeDriver } from '../cuda/fake_driver';
import { main } from '../../lib/cli/main';

const ROOT = path.join(__dirname, '..', '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-ep-cuda-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const haveCc = spawnSync('sh', ['-c', 'command -v cc']).status === 0;

const seeded = { hidden: 64, intermediate: 40, experts: 7, topK: 2, weights: { seed: 11 } };

// createEpLayer in a fresh Node process (the native loader reads the real environment, which jest's
// process.env copy does not reach), outside mpirun: → {code, message} of the rejection.
function createWith(vars: Record<string, string>, layer: object, ep: object): { code?: string; message: string } {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (/^(OMPI_|PMI_|PMIX_|MOECAP_BACKEND|MOECAP_CUDA_)/.test(k)) delete env[k];
  Object.assign(env, vars);
  const script = `const ep = require(${JSON.stringify(path.join(ROOT, 'dist', 'ep'))});
    ep.createEpLayer(${JSON.stringify(layer)}, ${JSON.stringify(ep)}).then(
      () => process.stdout.write(JSON.stringify({ message: 'created' })),
      (e) => process.stdout.write(JSON.stringify({ code: e.code, message: e.message })));`;
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { env, encoding: 'utf8', cwd: ROOT, timeout: 60_000 }));
}

describe("createEpLayer with backend 'cuda' and no usable GPU", () => {
  test('no driver: ERR_BACKEND_UNAVAILABLE naming libcuda, before MPI is asked for', () => {
    const r = createWith({ MOECAP_CUDA_DRIVER: path.join(tmp, 'nope', 'libcuda.so.1') }, { ...seeded, backend: 'cuda' }, { ranks: 2 });
    expect(r.code).toBe('ERR_BACKEND_UNAVAILABLE');
    expect(r.message).toMatch(/^ep: backend 'cuda' is not usable here: .*libcuda\.so\.1/);
    expect(r.message).not.toMatch(/mpirun/);
  });

  (haveCc ? test : test.skip)('a driver without devices: "no CUDA device"', () => {
    const r = createWith({ MOECAP_CUDA_DRIVER: fakeDriver(tmp, 13000, 0) }, { ...seeded, backend: 'cuda' }, { ranks: 2 });
    expect(r.code).toBe('ERR_BACKEND_UNAVAILABLE');
    expect(r.message).toMatch(/^ep: backend 'cuda' is not usable here: .*no CUDA device/);
  });

  test('MOECAP_BACKEND=cuda asks for it as the option does', () => {
    const r = createWith({ MOECAP_BACKEND: 'cuda', MOECAP_CUDA_DRIVER: path.join(tmp, 'nope', 'libcuda.so.1') }, seeded, { ranks: 2 });
    expect(r.code).toBe('ERR_BACKEND_UNAVAILABLE');
    expect(r.message).toMatch(/^ep: backend 'cuda' is not usable here/);
  });

  test("backend 'cpu' is unchanged: the launch check names mpirun", () => {
    const r = createWith({}, { ...seeded, backend: 'cpu' }, { ranks: 2 });
    expect(r.code).toBe('ERR_BACKEND_UNAVAILABLE');
    expect(r.message).toMatch(/mpirun/);
  });
});

describe('ep.transport', () => {
  test('an unknown name: ERR_INVALID_OPTION naming the option', () => {
    for (const transport of ['tcp', '', 3]) {
      const r = createWith({}, seeded, { ranks: 2, transport });
      expect(r.code).toBe('ERR_INVALID_OPTION');
      expect(r.message).toMatch(/^ep\.transport must be 'mpi', 'nccl' or 'auto', got /);
    }
  });

  test("'nccl' on CPU ranks: ERR_INVALID_OPTION", () => {
    const r = createWith({}, { ...seeded, backend: 'cpu' }, { ranks: 2, transport: 'nccl' });
    expect(r).toEqual({ code: 'ERR_INVALID_OPTION', message: "ep.transport 'nccl' needs backend 'cuda' (GPU ranks)" });
  });

  test('simulateEp refuses a bad name and nccl (its ranks are threads of this process)', async () => {
    const { simulateEp } = await import('../../lib/ep');
    const x = new Float32Array(3 * 64).fill(0.5);
    await expect(simulateEp(seeded, { ranks: 2, transport: 'tcp' as 'mpi' }, x)).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' });
    await expect(simulateEp(seeded, { ranks: 2, transport: 'nccl' }, x)).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTION',
      message: "ep.transport 'nccl': simulateEp runs its ranks in this process",
    });
    // 'mpi' and 'auto' are the host exchange: the simulation runs.
    for (const transport of ['mpi', 'auto'] as const) expect((await simulateEp(seeded, { ranks: 2, transport }, x)).output.length).toBe(3 * 64);
  });
});

describe('moecap run --ep: GPU flags', () => {
  const dir = fs.mkdtempSync(path.join(tmp, 'cli-'));
  const base = ['run', '--preset', 'tiny', '--phase', 'prefill', '--out', dir];
  const cases: Array<[string[], RegExp]> = [
    [['--ep', '2', '--ep-transport', 'tcp'], /--ep-transport must be mpi, nccl or auto, got 'tcp'/],
    [['--ep', '2', '--backend', 'auto'], /--backend with --ep must be cpu or cuda, got 'auto'/],
    [['--ep', '2', '--backend', 'cuda', '--offload', '0.5'], /--offload does not work with --ep --backend cuda yet/],
    [['--ep-transport', 'mpi'], /--ep-transport needs --ep N/],
    [['--ep', '2', '--ep-transport', 'nccl'], /--ep-transport nccl needs --backend cuda \(GPU ranks\)/],
  ];
  for (const [flags, msg] of cases) {
    test(flags.join(' '), async () => {
      let err = '';
      const code = await main(
        [...base, ...flags],
        () => undefined,
        (s) => void (err += s),
      );
      expect(code).toBe(2);
      expect(err).toMatch(/^moecap: ERR_USAGE: /);
      expect(err).toMatch(msg);
      expect(fs.readdirSync(dir)).toEqual([]);
    });
  }
});

// The whole GPU-rank path but the kernels, under a real mpirun: the CUDA loader, the binding, the
// core's exchange (ep_forward_cuda.cc) and the C ABI calls, with a host stand-in for
// libmoecap_cuda.so (cuda/test/fake_libmoecap_cuda.cc: a toy layer whose single-process forward
// and expert-parallel calls use the same functions) and a stand-in driver with one device. Equal
// bitwise only when every row reaches its expert's rank and every result its assignment. With
// ep.transport 'nccl' the stand-in library also holds the real cuda/nccl_abi.cc and
// cuda/nccl_transport.cc, built over a host stand-in for the CUDA runtime
// (cuda/test/fake_cuda_runtime: a copy in the wrong direction fails), and NCCL is a stand-in
// libnccl (cuda/test/fake_libnccl.c: ranks exchange through files, each group logged).
describe('GPU ranks over mpirun -np 2 with a host stand-in for the CUDA library', () => {
  const mpiLib = path.join(ROOT, 'build-mpi', 'libmoecap_mpi.so');
  const have = (c: string) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0;
  const skip = !have('mpirun') ? 'mpirun not found' : !fs.existsSync(mpiLib) ? 'npm run build:mpi first' : !have('g++') || !haveCc ? 'no g++/cc' : '';
  if (skip) console.log(`ep_cuda: stand-in mpirun tests skipped: ${skip}`);
  const t = skip ? test.skip : test;
  let lib = '',
    nccl = '';
  beforeAll(() => {
    if (skip) return;
    lib = path.join(tmp, 'fake_libmoecap_cuda.so');
    const cuda = path.join(ROOT, 'cuda');
    execFileSync('g++', [
      '-std=c++17',
      '-O1',
      '-shared',
      '-fPIC',
      '-I',
      path.join(ROOT, 'native', 'core'),
      '-I',
      cuda,
      '-I',
      path.join(cuda, 'test', 'fake_cuda_runtime'),
      '-o',
      lib,
      path.join(cuda, 'test', 'fake_libmoecap_cuda.cc'),
      path.join(cuda, 'nccl_abi.cc'),
      path.join(cuda, 'nccl_transport.cc'),
      '-ldl',
    ]);
    nccl = path.join(tmp, 'fake_libnccl.so');
    execFileSync('cc', ['-shared', '-fPIC', '-o', nccl, path.join(cuda, 'test', 'fake_libnccl.c')]);
  });

  // mpirun -np 2 of test/ep/mpi_rank.js in `mode` with the stand-ins; extra environment in `vars`.
  function ranks(mode: string, vars: Record<string, string> = {}) {
    const dir = fs.mkdtempSync(path.join(tmp, `${mode.replace('+', '-')}-`));
    const r = spawnSync('mpirun', ['-np', '2', '--oversubscribe', 'node', path.join(__dirname, 'mpi_rank.js'), dir, mode], {
      encoding: 'utf8',
      timeout: 120_000,
      env: {
        ...process.env,
        OMPI_ALLOW_RUN_AS_ROOT: '1',
        OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1',
        OMPI_MCA_rmaps_base_oversubscribe: '1',
        MOECAP_CUDA_DRIVER: fakeDriver(tmp, 13000, 1),
        MOECAP_CUDA_LIBRARY: lib,
        FAKE_NCCL_DIR: tmp, // removed with it
        ...vars,
      },
    });
    const file = path.join(dir, 'result.json');
    // The ranks' errors as they wrote them (mpi_rank.js), whatever mpirun forwarded before the abort.
    const errors = fs
      .readdirSync(dir)
      .filter((f) => /^error\.\d+\.txt$/.test(f))
      .map((f) => fs.readFileSync(path.join(dir, f), 'utf8'))
      .join('\n');
    return { r, res: fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : null, errors };
  }

  for (const mode of ['cuda+nccl', 'cuda-int8+nccl']) {
    t(`${mode}: over the stand-in NCCL, equal to the single-process layer bitwise; each exchange one group, counts then rows`, () => {
      const log = path.join(tmp, `${mode}.log`);
      const { r, res } = ranks(mode, { MOECAP_NCCL_LIBRARY: nccl, FAKE_NCCL_LOG: log });
      expect(r.stderr).not.toMatch(/Error/);
      expect(r.status).toBe(0);
      expect(res.transport).toBe('nccl');
      expect(Buffer.from(res.epOutput, 'base64').equals(Buffer.from(res.singleOutput, 'base64'))).toBe(true);
      for (const k of res.ranks) expect(k.rowsSent).toBeGreaterThan(0);
      // Per rank and pass: tokens (8 B a peer), per-expert counts (E·4 = 28 B a peer), rows,
      // results, compute times (8 B a peer); every pair of a group in one ncclGroupStart/End.
      const groups = fs.readFileSync(log, 'utf8').trim().split('\n');
      for (const rank of [0, 1]) {
        const mine = groups.filter((g) => g.startsWith(`rank ${rank} `));
        expect(mine).toHaveLength(5);
        expect(mine[0]).toMatch(/: send 0:8 recv 0:8 send 1:8 recv 1:8$/);
        expect(mine[1]).toMatch(/: send 0:28 recv 0:28 send 1:28 recv 1:28$/);
        expect(mine[4]).toMatch(/: send 0:8 recv 0:8 send 1:8 recv 1:8$/);
      }
      // The rows each rank sent to the other are the bytes the other received from it.
      const bytes = (rank: number, dir: string, peer: number) =>
        Number(new RegExp(`${dir} ${peer}:(\\d+)`).exec(groups.filter((g) => g.startsWith(`rank ${rank} group 2`))[0])![1]);
      expect(bytes(0, 'send', 1)).toBe(bytes(1, 'recv', 0));
      expect(bytes(1, 'send', 0)).toBe(bytes(0, 'recv', 1));
      expect(bytes(0, 'send', 1)).toBeGreaterThan(0);
    });
  }

  t("ep.transport 'nccl' without NCCL: every rank fails with ERR_BACKEND_UNAVAILABLE 'NCCL not installed', nothing written", () => {
    const { r, res, errors } = ranks('cuda+nccl', { MOECAP_NCCL_LIBRARY: path.join(tmp, 'nope', 'libnccl.so.2') });
    expect(r.status).not.toBe(0);
    expect(errors).toMatch(/NCCL not installed: cannot load .*nope\/libnccl\.so\.2/);
    expect(res).toBeNull();
  });

  t('a failing ncclSend: the pass fails naming the NCCL call and its error', () => {
    const { r, res, errors } = ranks('cuda+nccl', { MOECAP_NCCL_LIBRARY: nccl, FAKE_NCCL_FAIL: 'send' });
    expect(r.status).not.toBe(0);
    expect(errors).toMatch(/NCCL exchange: ncclSend\/ncclRecv failed: stand-in: failure asked for by FAKE_NCCL_FAIL \(3\)/);
    expect(res).toBeNull();
  });

  t('offload on GPU ranks: ERR_INVALID_OPTION before MPI starts', () => {
    const r = createWith(
      { MOECAP_CUDA_DRIVER: fakeDriver(tmp, 13000, 1), MOECAP_CUDA_LIBRARY: lib },
      { ...seeded, backend: 'cuda', cudaCacheSlots: 2 },
      { ranks: 2 },
    );
    expect(r).toEqual({ code: 'ERR_INVALID_OPTION', message: 'ep: expert parallelism on the CUDA backend does not work with offload yet' });
  });

  for (const mode of ['cuda', 'cuda-int8', 'cuda-bf16']) {
    t(`${mode}: equal to the single-process layer bitwise, rows crossing both ways`, () => {
      const { r, res } = ranks(mode);
      expect(r.stderr).not.toMatch(/Error/);
      expect(r.status).toBe(0);
      const ep = Buffer.from(res.epOutput, 'base64'),
        single = Buffer.from(res.singleOutput, 'base64');
      expect(ep.length).toBe((mode === 'cuda-bf16' ? 40 : 23) * 64 * 4);
      expect(ep.equals(single)).toBe(true);
      expect(new Float32Array(ep.buffer, ep.byteOffset, ep.length / 4).some((v) => v !== 0)).toBe(true);
      expect(res.backend).toBe('cuda');
      expect(res.devices).toEqual([0, 0]); // one device: both ranks share it
      for (const k of res.ranks) expect(k.rowsSent).toBeGreaterThan(0);
      expect(res.ranks[0].experts.length + res.ranks[1].experts.length).toBe(mode === 'cuda-int8' ? 7 + 2 : 7);
    });
  }
});
