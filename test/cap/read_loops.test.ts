// The read-bandwidth loops calibrate() times (test/native/read_loops_test.cc): each reads every byte
// of its range exactly once, or the ceiling it reports is wrong by the bytes skipped or read twice.
// Built against the addon's own kernel objects; the AVX-512 loops where this CPU runs them. Skipped
// without g++, on a CPU without AVX2, or where the addon was not built here (no objects).
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { systemInfo } from '../../lib';

const root = path.join(__dirname, '..', '..');
const objects = (isa: string) => path.join(root, 'build', 'Release', 'obj.target', `moecap_isa_${isa}`, 'native', 'core', 'kernels', isa, `peak_${isa}.o`);
const isas = systemInfo().supportedIsas as string[];
const haveCxx = spawnSync('sh', ['-c', 'command -v g++']).status === 0;
const withAvx512 = isas.includes('avx512');
// Both objects are built on every x86-64 machine; the AVX-512 loops only run where the CPU has them.
const runs = haveCxx && isas.includes('avx2') && fs.existsSync(objects('avx2')) && fs.existsSync(objects('avx512'));

(runs ? test : test.skip)(
  'read_sum and read_sum_prefetched read every byte once (test/native/read_loops_test.cc)',
  () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-read-loops-'));
    try {
      const exe = path.join(dir, 'read_loops_test');
      const objs = [objects('avx2'), objects('avx512')];
      execFileSync(
        'g++',
        ['-std=c++17', '-O1', '-Wall', `-I${path.join(root, 'native', 'core')}`, '-o', exe, path.join(root, 'test/native/read_loops_test.cc'), ...objs],
        {
          stdio: 'pipe',
        },
      );
      const out = execFileSync(exe, withAvx512 ? ['avx512'] : [], { encoding: 'utf8' });
      expect(out).toContain(`ok   read_sum and read_sum_prefetched == the words' sum: ${withAvx512 ? 54 : 27} ranges`);
      expect(out).toMatch(/all \d+ checks passed/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
  60_000,
);
