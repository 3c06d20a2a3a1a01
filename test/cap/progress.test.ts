import { progressSink } from '../../lib/cap/progress';
import type { Progress } from '../../lib/cap/runner';

const p = (over: Partial<Progress>): Progress => ({
  configIndex: 0,
  configCount: 2,
  configId: 'c0',
  stage: 'build',
  samplesDone: 0,
  samplesTarget: 0,
  elapsedSeconds: 0,
  etaSeconds: null,
  ...over,
});

test('a bar with ETA on a terminal', () => {
  let buf = '';
  const tty = {
    isTTY: true,
    columns: 120,
    write: (s: string) => ((buf += s), true),
    cursorTo: () => true,
    clearLine: () => true,
    moveCursor: () => true,
    on() {},
    removeListener() {},
  };
  const sink = progressSink(tty as unknown as NodeJS.WriteStream);
  sink.update(p({}));
  sink.update(p({ stage: 'done', etaSeconds: 1 }));
  sink.stop();
  expect(buf).toMatch(/1\/2 configs \| done c0 \| ETA/);
});

test('plain lines otherwise, only when a config finishes', () => {
  let buf = '';
  const pipe = { isTTY: false, write: (s: string) => ((buf += s), true) };
  const sink = progressSink(pipe as unknown as NodeJS.WriteStream);
  sink.update(p({ stage: 'timed', samplesDone: 1, samplesTarget: 3 }));
  sink.update(p({ configIndex: 1, configId: 'c1', stage: 'skipped' }));
  expect(buf).toBe('[2/2] c1: kept from the earlier run (0.0 s)\n');
});
