// Counters are measured or say why not: never a silent zero.
import { execFileSync } from 'child_process';
import * as path from 'path';
import { Counters, createMoeLayer } from '../../lib';
import { gaussian } from '../helpers';

test('every reading has a value and a source, or a reason and no value', async () => {
  const layer = await createMoeLayer({ hidden: 256, intermediate: 256, experts: 8, topK: 2, weights: { seed: 1 } });
  const x = gaussian(256 * 256, 1);
  await layer.forward(x); // warm-up: creates the pool and libuv threads before counting
  const c = new Counters();
  c.start();
  for (let i = 0; i < 40; i++) await layer.forward(x);
  const readings = c.stop();
  layer.close();
  for (const r of readings) {
    if (r.available) {
      expect(Number.isFinite(r.value)).toBe(true);
      expect(r.source.length).toBeGreaterThan(0);
    } else {
      expect(r).not.toHaveProperty('value');
      expect(r.reason.length).toBeGreaterThan(10);
    }
  }
  const byName = new Map(readings.map((r) => [r.name, r]));
  // getrusage always works; the compute threads did real work.
  const user = byName.get('userCpuTime');
  expect(user && user.available && user.value > 0).toBe(true);
  const wall = byName.get('wallTime');
  expect(wall && wall.available && wall.value > 0).toBe(true);
  // The software task clock counts every thread when perf_event_open is permitted.
  const tc = byName.get('taskClock');
  if (tc?.available) expect(tc.value).toBeGreaterThan(0);
});

test('stop without start is an error', () => {
  expect(() => new Counters().stop()).toThrow(/without start/);
});

test('moecap counters lists availability with reasons', () => {
  const out = execFileSync(process.execPath, [path.join(__dirname, '..', '..', 'bin', 'moecap.js'), 'counters'], { encoding: 'utf8' });
  expect(out).toMatch(/^cycles\s+(available|unavailable)/m);
  expect(out).toMatch(/^energy\S*\s+(available|unavailable)/m);
  expect(out).toMatch(/^gpu\s+(available|unavailable)/m);
});
