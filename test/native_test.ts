// Builds and runs one of the plain C++ tests of test/native (no framework: each prints "ok …"
// lines and exits non-zero on a failure) with g++ and the core's headers, in a scratch folder.
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export const ROOT = path.join(__dirname, '..');
export const haveGxx = spawnSync('sh', ['-c', 'command -v g++']).status === 0;

/** Compiles `sources` (paths from the repository root: .cc files or built objects), runs the program with `args` → its stdout. */
export function runNativeTest(name: string, sources: string[], args: string[] = [], flags: string[] = []): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `moecap-${name}-`));
  try {
    const exe = path.join(dir, name);
    const files = sources.map((f) => path.resolve(ROOT, f));
    execFileSync('g++', ['-std=c++17', '-O1', '-Wall', `-I${path.join(ROOT, 'native', 'core')}`, '-o', exe, ...files, ...flags], { stdio: 'pipe' });
    return execFileSync(exe, args, { encoding: 'utf8' });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
