// test/arm64/correctness.js is the plain-node suite the arm64 build runs under qemu
// (scripts/test-arm64.sh, in .ci/run). Here it runs on this machine's own addon, so the script
// itself stays in step with the addon's API and every ISA this CPU offers passes it too.
import { execFileSync } from 'child_process';
import * as path from 'path';

const ROOT = path.join(__dirname, '..', '..');
// The binary lib/ loads: build/Release, else the prebuild for this platform.
const addon: string = (require('node-gyp-build') as { path(dir: string): string }).path(ROOT);

test('correctness.js passes on the host addon', () => {
  const out = execFileSync(process.execPath, [path.join(__dirname, 'correctness.js'), addon], { encoding: 'utf8' });
  const last = out.trim().split('\n').pop()!;
  expect(last).toMatch(/^\d+ passed, 0 failed$/);
  expect(Number(last.split(' ')[0])).toBeGreaterThan(100);
});
