// A worker_thread terminated while a moecap call is in flight must not take the process down:
// the work finishes (or is abandoned) without throwing into the dying environment.
import { spawnSync } from 'child_process';
import * as path from 'path';

test('terminating worker_threads mid-call (create, forward, model forward, close, synchronous calls) leaves the process alive', () => {
  const child = path.join(__dirname, 'worker', 'terminate_child.js');
  // 10 rounds: every kind meets every termination delay ((i·7) mod 5 ms) twice; 20 took ~90 s of the
  // 110 s limit on two loaded cores.
  const r = spawnSync(process.execPath, [child, '10'], { encoding: 'utf8', timeout: 110_000 });
  const detail = `signal ${r.signal}, status ${r.status}\n${r.stdout}\n${r.stderr.slice(-2000)}`;
  expect(r.signal === null ? detail : 'signal').toBe(detail);
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/survived 10 rounds/);
});
