// The CUDA backend's host side, on any machine (GPU checks live in cuda/test/gpu_selftest, run by
// scripts/gpu-check.sh): index arithmetic and weight packing against the CPU core (a small C++
// program built with g++), the run-time loader's choice and its specific reasons (with stand-in
// driver libraries), and the `npm run build:cuda` output when nvcc is present.
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { fakeDriver } from './fake_driver';
import { createMoeLayer } from '../../lib/moe_layer';
import { loadAddon } from '../../lib/native/loader';
import { haveGxx, ROOT, runNativeTest } from '../native_test';

const BUILD = path.join(ROOT, 'build-cuda');
const LIB = path.join(BUILD, 'libmoecap_cuda.so');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-cuda-host-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function which(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}
const nvcc = ['/usr/local/cuda/bin/nvcc', process.env.CUDACXX ?? ''].find((p) => p && fs.existsSync(p)) ?? (which('nvcc') ? 'nvcc' : undefined);
const haveCc = which('cc');

// backendInfo in a fresh Node process with these environment variables (jest gives tests a copy of
// process.env that native getenv() never sees, and the loader caches a library once loaded).
type Info = { backend: string; requested: string; reason: string; library: string | null; driverVersion: number; runtimeVersion: number };
function infoWith(vars: Record<string, string | undefined>, requested: unknown = 'auto'): Info | { error: string; name: string } {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.MOECAP_BACKEND;
  delete env.MOECAP_CUDA_DRIVER;
  delete env.MOECAP_CUDA_LIBRARY;
  for (const [k, v] of Object.entries(vars)) if (v !== undefined) env[k] = v;
  const script = `const a = require('node-gyp-build')(${JSON.stringify(ROOT)});
    try { process.stdout.write(JSON.stringify(a.backendInfo(${JSON.stringify(requested)}))); }
    catch (e) { process.stdout.write(JSON.stringify({ error: e.message, name: e.constructor.name })); }`;
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { env, encoding: 'utf8', cwd: ROOT }));
}

const SPECIFIC = /^(libcuda\.so\.1 not found|no CUDA device|driver supports CUDA \d+\.\d+, library needs \d+\.\d+|libmoecap_cuda\.so not found \(looked in: )/;

describe('index arithmetic and GPU weight layout (C++ on the CPU)', () => {
  (haveGxx ? test : test.skip)('host_index_test passes against the CPU core', () => {
    const sources = [
      'cuda/test/host_index_test.cc',
      'native/core/backend/gpu_weight_pack.cc',
      'native/core/weights/packed_matrix.cc',
      'native/core/weights/weight_source.cc',
      'native/core/weights/dtype.cc',
      'native/core/layer_config.cc',
      'native/core/dispatch/routing_plan.cc',
      'native/core/runtime/thread_pool.cc',
      'native/core/runtime/environment.cc',
      'native/core/kernels/cpu_features.cc',
      'native/core/offload/xxhash64.cc',
      'native/core/weights/block_quant.cc',
    ];
    const out = runNativeTest('host_index_test', sources, [], [`-I${path.join(ROOT, 'cuda')}`, '-pthread']);
    expect(out).toMatch(/all \d+ checks passed/);
    expect(out).toContain('capacity_for == moecap::expert_capacity');
    expect(out).toContain("packed values == CPU core's unpack_lane bitwise (6 dtypes");
    // A release's stored codes reach the GPU layout bitwise (fp8 128×128 block scales, raised mxfp4 scales).
    expect(out.match(/^ok {3}(fp8|mxfp4) \d+x\d+ from stored codes: release's codes, scales and values bitwise/gm)).toHaveLength(5);
    expect(out).toContain('stored-code experts: w13 = gate ‖ up and w2');
    expect(out).toContain("SIMT code decoders == CPU core's");
  });
});

describe('offload slot table (C++ on the CPU)', () => {
  (haveGxx ? test : test.skip)('slot_table_test passes: policies, waves, static pins, prefetch', () => {
    const out = runNativeTest('slot_table_test', ['cuda/test/slot_table_test.cc', 'native/core/offload/slot_table.cc']);
    expect(out).toMatch(/all \d+ checks passed/);
    expect(out).toContain('lru evicts 0 then 2, lfu 1 then 3, lfru 2 then 1, static 1 then 3');
    expect(out).toContain('capacity 1 and 2: misses stream through in waves');
    expect(out).toMatch(/random schedules \(4800 passes/);
  });
});

describe('backend choice', () => {
  const addon = loadAddon();

  test("'auto' falls back to the CPU with a specific reason when CUDA is unusable", () => {
    const info = infoWith({}) as Info;
    expect(info.requested).toBe('auto');
    if (info.backend === 'cpu') expect(info.reason).toMatch(SPECIFIC);
    else expect(info.library).toBeTruthy();
    // The same through this process's addon (what the library API returns).
    expect(['cpu', 'cuda']).toContain(addon.backendInfo('auto').backend);
  });

  test("'cpu' never touches the GPU stack", () => {
    const info = infoWith({}, 'cpu');
    expect(info).toMatchObject({ backend: 'cpu', requested: 'cpu', reason: "backend 'cpu' requested", library: null });
  });

  test('MOECAP_BACKEND overrides the argument and is validated', () => {
    expect(infoWith({ MOECAP_BACKEND: 'cpu' }, 'cuda')).toMatchObject({
      backend: 'cpu',
      requested: 'cpu',
      reason: 'MOECAP_BACKEND=cpu',
    });
    expect(infoWith({ MOECAP_BACKEND: 'gpu' })).toEqual({
      name: 'RangeError',
      error: "MOECAP_BACKEND must be 'cpu', 'cuda' or 'auto', got 'gpu'",
    });
  });

  test('bad arguments name the argument', () => {
    expect(() => addon.backendInfo('tpu' as 'cpu')).toThrow(new RangeError("backend must be 'cpu', 'cuda' or 'auto', got 'tpu'"));
    // Errors made by the addon come from Node's own realm, so compare the class by name.
    let err: unknown;
    try {
      addon.backendInfo(3 as unknown as 'cpu');
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ name: 'TypeError', message: "backend must be a string: 'cpu', 'cuda' or 'auto'" });
  });

  // Stand-in driver libraries reach every reason without a GPU.
  const fake = haveCc ? test : test.skip;

  fake('a missing driver library is named', () => {
    const info = infoWith({ MOECAP_CUDA_DRIVER: path.join(tmp, 'nope', 'libcuda.so.1') }, 'cuda') as Info;
    expect(info.backend).toBe('cpu');
    expect(info.reason).toMatch(/libcuda\.so\.1 not found \(no NVIDIA driver on this machine\)/);
  });

  fake('a driver without devices gives "no CUDA device"', () => {
    const info = infoWith({ MOECAP_CUDA_DRIVER: fakeDriver(tmp, 13000, 0) });
    expect(info).toMatchObject({ backend: 'cpu', reason: 'no CUDA device', driverVersion: 13000 });
  });

  fake('a missing libmoecap_cuda.so lists where it looked', () => {
    const missing = path.join(tmp, 'no-such-dir', 'libmoecap_cuda.so');
    const info = infoWith({ MOECAP_CUDA_DRIVER: fakeDriver(tmp, 13000, 1), MOECAP_CUDA_LIBRARY: missing }) as Info;
    expect(info.backend).toBe('cpu');
    expect(info.reason).toBe(`libmoecap_cuda.so not found (looked in: ${missing}); build it with \`npm run build:cuda\``);
  });

  const withLib = haveCc && fs.existsSync(LIB) ? test : test.skip;
  withLib('an old driver gives "driver supports CUDA X, library needs Y"', () => {
    const info = infoWith({ MOECAP_CUDA_DRIVER: fakeDriver(tmp, 12040, 1), MOECAP_CUDA_LIBRARY: LIB }, 'cuda') as Info;
    expect(info.backend).toBe('cpu');
    expect(info.reason).toMatch(/^driver supports CUDA 12\.4, library needs 13\.\d+ /);
    expect(info.library).toBe(LIB);
    expect(info.runtimeVersion).toBeGreaterThanOrEqual(13000);
  });
});

describe('createMoeLayer backend option', () => {
  const base = { hidden: 48, intermediate: 24, experts: 4, topK: 2, weights: { seed: 7 } };
  const cudaUsable = (infoWith({}) as Info).backend === 'cuda';
  const noGpu = cudaUsable ? test.skip : test;

  noGpu("'auto' (the default) runs on the CPU and says why in info()", async () => {
    const layer = await createMoeLayer(base);
    const info = layer.info();
    expect(info.backend).toBe('cpu');
    if (!process.env.MOECAP_BACKEND) expect(info.backendReason).toMatch(SPECIFIC);
    const r = await layer.forward(new Float32Array(48 * 3).fill(0.25));
    expect(r.output.length).toBe(48 * 3);
    layer.close();
  });

  test("'cpu' says it was asked for", async () => {
    const layer = await createMoeLayer({ ...base, backend: 'cpu' });
    if (!process.env.MOECAP_BACKEND) expect(layer.info()).toMatchObject({ backend: 'cpu', backendReason: "backend 'cpu' requested" });
    layer.close();
  });

  noGpu("an explicit 'cuda' that cannot run rejects with the reason", async () => {
    if (process.env.MOECAP_BACKEND) return;
    await expect(createMoeLayer({ ...base, backend: 'cuda' })).rejects.toThrow(/^backend 'cuda' is not usable here: /);
  });

  test('bad backend options name the option', async () => {
    await expect(createMoeLayer({ ...base, backend: 'gpu' as 'cpu' })).rejects.toThrow("backend must be 'cpu', 'cuda' or 'auto', got 'gpu'");
    await expect(createMoeLayer({ ...base, maxTokens: 0 })).rejects.toThrow('maxTokens must be an integer in [1, 1048576], got 0');
    await expect(createMoeLayer({ ...base, cudaCacheSlots: 1.5 })).rejects.toThrow('cudaCacheSlots must be an integer');
  });
});

describe('npm run build:cuda', () => {
  const t = nvcc ? test : test.skip;
  if (!nvcc) test.skip('skipped: nvcc not found, so build:cuda builds nothing here', () => undefined);

  t('produced build-cuda/libmoecap_cuda.so exporting the versioned C ABI (run npm run build:cuda first)', () => {
    expect(fs.existsSync(LIB)).toBe(true);
    const syms = execFileSync('nm', ['-D', '--defined-only', LIB], { encoding: 'utf8' });
    for (const s of [
      'moecap_cuda_abi_version',
      'moecap_cuda_probe',
      'moecap_cuda_layer_create',
      'moecap_cuda_layer_forward',
      'moecap_cuda_layer_pin_static',
      'moecap_cuda_layer_destroy',
      'moecap_cuda_last_error',
      'moecap_cuda_nvml_sample',
      'moecap_cuda_act_row_bytes',
      'moecap_cuda_layer_ep_route',
      'moecap_cuda_layer_ep_compute',
      'moecap_cuda_layer_ep_combine',
    ])
      expect(syms).toMatch(new RegExp(`\\bT ${s}\\b`));
    // Only the C ABI is exported, and the CUDA runtime is linked statically (the driver is all it needs).
    expect(syms.split('\n').filter((l) => / T /.test(l) && !/ T moecap_cuda_/.test(l) && !/ T _(init|fini)$/.test(l))).toEqual([]);
    const ldd = execFileSync('ldd', [LIB], { encoding: 'utf8' });
    expect(ldd).not.toMatch(/libcudart|libcublas|libnvidia-ml|libcuda\.so/);
  });

  t('the self-test skips with exit code 77 and the reason when there is no usable GPU', () => {
    const exe = path.join(BUILD, 'gpu_selftest');
    expect(fs.existsSync(exe)).toBe(true);
    const info = infoWith({}) as Info;
    if (info.backend === 'cuda') return; // a GPU machine: scripts/gpu-check.sh runs the real thing
    const r = spawnSync(exe, ['--no-bench'], { encoding: 'utf8', timeout: 60000 });
    expect(r.status).toBe(77);
    expect(r.stdout).toMatch(/^no CUDA device: \S/);
  });
});
