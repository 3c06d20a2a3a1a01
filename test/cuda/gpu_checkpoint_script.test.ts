// scripts/gpu-checkpoint-check.js (run by scripts/gpu-check.sh on a GPU) kept working here: with
// --backend cpu it writes its fp8 and mxfp4 checkpoints and compares the CPU's native layer with
// itself (six cases pass, errors against f32 printed); asked for CUDA where none is usable it exits
// 77 with the loader's reason.
import { spawnSync } from 'child_process';
import * as path from 'path';
import { backendInfo } from '../../lib/backend';

const SCRIPT = path.join(__dirname, '..', '..', 'scripts', 'gpu-checkpoint-check.js');

test('--backend cpu: six checkpoint cases pass, each with its error against the f32 layer', () => {
  const r = spawnSync(process.execPath, [SCRIPT, '--backend', 'cpu'], { encoding: 'utf8', timeout: 120_000 });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const pass = r.stdout.split('\n').filter((l) => l.startsWith('PASS ckpt'));
  expect(pass).toHaveLength(6);
  for (const l of pass) expect(l).toMatch(/experts equal; ‖Δ‖\/‖f32‖ cpu native \d\.\d\de-\d+/);
  expect(r.stdout).toMatch(/checkpoint on GPU: OK/);
});

(backendInfo('cuda').backend === 'cuda' ? test.skip : test)('no usable CUDA: exit 77 with the reason', () => {
  const r = spawnSync(process.execPath, [SCRIPT], { encoding: 'utf8', timeout: 60_000 });
  expect(r.status).toBe(77);
  expect(r.stdout).toMatch(/^backendInfo\('cuda'\): cpu: \S/);
});
