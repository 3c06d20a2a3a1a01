// Labels follow the device that ran: another device's datasheet is a projection; a CUDA run takes its
// GPU's name from NVML, that GPU's datasheet peaks and price, and NVML energy. The GPU paths are fed
// injected names and counter readings here (this machine has no GPU).
import { deviceAndPeaks } from '../../lib/cap/runner';
import { validatePlan } from '../../lib/cap/plan';
import { datasheetForGpuName } from '../../lib/cap/hardware';
import { nvmlDeviceNames, nvmlEnergy } from '../../lib/cap/energy';
import { configCost } from '../../lib/cap/scoring';
import { DEFAULT_PRICES } from '../../lib/cap/cost';
import type { Counter } from '../../lib/cap/results';

const plan = (o: object) => validatePlan({ presets: ['tiny'], calibrateIfMissing: false, ...o });

test('NVML and driver names map to datasheets', () => {
  expect(datasheetForGpuName('NVIDIA H100 80GB HBM3')?.name).toBe('h100-sxm');
  expect(datasheetForGpuName('NVIDIA H100 PCIe')?.name).toBe('h100-pcie');
  expect(datasheetForGpuName('NVIDIA H200')?.name).toBe('h200');
  expect(datasheetForGpuName('NVIDIA A100-SXM4-80GB')?.name).toBe('a100-sxm');
  expect(datasheetForGpuName('NVIDIA A100-PCIE-40GB')?.name).toBe('a100-pcie');
  expect(datasheetForGpuName('NVIDIA GeForce RTX 4090')?.name).toBe('rtx-4090');
  expect(datasheetForGpuName('NVIDIA RTX A6000')?.name).toBe('a6000');
  expect(datasheetForGpuName('NVIDIA L40S')?.name).toBe('l40s');
  expect(datasheetForGpuName('NVIDIA T4')).toBeNull();
});

test('a CPU run with --hardware is a projection, the device stays the CPU', () => {
  const d = deviceAndPeaks(plan({ hardware: 'h100-sxm' }));
  expect(d.device.kind).toBe('cpu');
  expect(d.projected).toEqual({ device: 'h100-sxm', method: expect.stringMatching(/measured on the CPU/) });
  expect(d.costDevice).toEqual({ kind: 'cpu', cores: 1 });
});

test("a CUDA run: the GPU NVML names, its datasheet peaks and price; another GPU's --hardware is a projection", () => {
  const d = deviceAndPeaks(plan({ backend: 'cuda' }), 'NVIDIA H100 80GB HBM3');
  expect(d.device).toEqual({ kind: 'gpu', name: 'NVIDIA H100 80GB HBM3', count: 1 });
  expect(d.projected).toBeNull();
  expect(d.peaks).toMatchObject({ kind: 'datasheet', name: 'h100-sxm', memoryBandwidth: 3.35e12 });
  expect(d.costDevice).toMatchObject({ kind: 'gpu', gpu: 'h100-sxm' });
  const p = deviceAndPeaks(plan({ backend: 'cuda', hardware: 'h200' }), 'NVIDIA A100-SXM4-80GB');
  expect(p.device.name).toBe('NVIDIA A100-SXM4-80GB');
  expect(p.projected).toEqual({ device: 'h200', method: expect.stringMatching(/measured on the NVIDIA A100-SXM4-80GB/) });
  expect(p.costDevice).toMatchObject({ gpu: 'a100-sxm' }); // priced as the GPU that ran
  const none = deviceAndPeaks(plan({ backend: 'cuda' }), null);
  expect(none.peaks).toEqual({ available: false, reason: expect.stringMatching(/NVML did not name the GPU; pass --hardware NAME/) });
  expect(none.costDevice).toBeNull();
});

test('NVML energy prices a GPU configuration; device names come from the counters', () => {
  const counters: Counter[] = [
    { name: 'gpuEnergy:0', available: true, value: 700, unit: 'J', source: 'nvml:0 (NVIDIA H100 80GB HBM3)' },
    { name: 'gpuEnergy:1', available: true, value: 300, unit: 'J', source: 'nvml:1 (NVIDIA H100 80GB HBM3)' },
    { name: 'energy:package-0 (intel-rapl:0)', available: true, value: 50, unit: 'J', source: 'powercap' },
  ];
  expect(nvmlDeviceNames(counters)).toEqual(['NVIDIA H100 80GB HBM3', 'NVIDIA H100 80GB HBM3']);
  expect(nvmlEnergy(counters)?.joules).toBe(1000);
  const need = { residentWeightBytes: 10e9, bufferBytes: 0, kvCacheBytes: 0, offloadedBytes: 0 };
  const c = configCost(DEFAULT_PRICES, {
    device: { kind: 'gpu', gpu: 'h100-sxm', gpuMemoryBytes: 80 * 1024 ** 3 },
    need,
    counters,
    wallSeconds: 2,
    tokensPerSecond: 1000,
  });
  if (!('inputs' in c)) throw new Error('expected a cost');
  expect(c.inputs.power).toMatchObject({ kind: 'measured', watts: 500 }); // 1000 J over 2 s, NVML only
  expect(c.hardwarePriceUsd).toBe(30000);
});
