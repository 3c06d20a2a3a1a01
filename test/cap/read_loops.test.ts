// The read-bandwidth loops calibrate() times (test/native/read_loops_test.cc): each reads every byte
// of its range exactly once, or the ceiling it reports is wrong by the bytes skipped or read twice.
// Built against the addon's own kernel objects; the AVX-512 loops where this CPU runs them. Skipped
// without g++, on a CPU without AVX2, or where the addon was not built here (no objects).
import * as fs from 'fs';
import * as path from 'path';
import { systemInfo } from '../../lib';
import { haveGxx, ROOT, runNativeTest } from '../native_test';

const objects = (isa: string) => path.join('build', 'Release', 'obj.target', `moecap_isa_${isa}`, 'native', 'core', 'kernels', isa, `peak_${isa}.o`);
const isas = systemInfo().supportedIsas as string[];
const withAvx512 = isas.includes('avx512');
// Both objects are built on every x86-64 machine; the AVX-512 loops only run where the CPU has them.
const runs = haveGxx && isas.includes('avx2') && fs.existsSync(path.join(ROOT, objects('avx2'))) && fs.existsSync(path.join(ROOT, objects('avx512')));

(runs ? test : test.skip)(
  'read_sum and read_sum_prefetched read every byte once (test/native/read_loops_test.cc)',
  () => {
    // cpu_features.cc: the AVX2 prefetched loop asks whether to fetch far ahead on this CPU.
    const sources = ['test/native/read_loops_test.cc', objects('avx2'), objects('avx512'), 'native/core/kernels/cpu_features.cc'];
    const out = runNativeTest('read_loops_test', sources, withAvx512 ? ['avx512'] : []);
    expect(out).toContain(`ok   read_sum and read_sum_prefetched == the words' sum: ${withAvx512 ? 54 : 27} ranges`);
    expect(out).toMatch(/all \d+ checks passed/);
  },
  60_000,
);
