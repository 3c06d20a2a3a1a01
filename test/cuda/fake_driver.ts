// A stand-in CUDA driver library (cuda/test/fake_libcuda.c) reporting `version` and `devices`, built
// once per pair into `dir`: it reaches every refusal of the CUDA loader without a GPU.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

const ROOT = path.join(__dirname, '..', '..');

export function fakeDriver(dir: string, version: number, devices: number): string {
  const so = path.join(dir, `fake_libcuda_${version}_${devices}.so`);
  if (!fs.existsSync(so))
    execFileSync('cc', [
      '-shared',
      '-fPIC',
      `-DFAKE_VERSION=${version}`,
      `-DFAKE_DEVICES=${devices}`,
      '-o',
      so,
      path.join(ROOT, 'cuda', 'test', 'fake_libcuda.c'),
    ]);
  return so;
}
