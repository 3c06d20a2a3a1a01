// Child process of worker_terminate.test.ts: terminates worker_threads while a moecap call is in
// flight in them (createMoeLayer, forward, a model's forward), many times. Exits 0 when the process
// survived every round; an abort (SIGABRT) or a crash is what the test looks for.
'use strict';
const path = require('path');
const { Worker } = require('worker_threads');

const root = path.resolve(__dirname, '..', '..', '..');
const rounds = Number(process.argv[2] || 20);

const workerSource = `
const { parentPort, workerData } = require('worker_threads');
const m = require(workerData.root + '/dist/index.js');
const shape = { hidden: 512, intermediate: 512, experts: 16, topK: 4, threads: 2, dtype: 'f32' };
const T = 64;
const x = new Float32Array(T * shape.hidden).map((_, i) => Math.sin(i * 0.37));
(async () => {
  if (workerData.kind === 'create') {
    const p = [];
    for (let i = 0; i < 4; ++i) p.push(m.createMoeLayer({ ...shape, weights: { seed: i } }));
    parentPort.postMessage('started');
    await Promise.all(p);
  } else if (workerData.kind === 'forward') {
    const layer = await m.createMoeLayer({ ...shape, weights: { seed: 1 } });
    for (;;) {
      const p = [layer.forward(x), layer.forward(x), layer.route(x), layer.reference(x.subarray(0, shape.hidden))];
      parentPort.postMessage('started');
      await Promise.all(p);
    }
  } else if (workerData.kind === 'sync') {
    // Terminated inside a synchronous addon call: option parsing, argument copies, info().
    const layer = await m.createMoeLayer({ ...shape, weights: { seed: 1 } });
    parentPort.postMessage('started');
    for (let i = 0; ; ++i) {
      layer.info();
      layer.forward(x).catch(() => {});
      m.createMoeLayer({ ...shape, weights: { seed: i }, offload: { capacity: 2, policy: 'lru' } }).then((l) => l.close(), () => {});
      m.createMoeLayer({ ...shape, weights: { seed: i }, bogus: 1 }).catch(() => {});
    }
  } else if (workerData.kind === 'close') {
    const layer = await m.createMoeLayer({ ...shape, weights: { seed: 1 } });
    const p = layer.forward(x);
    layer.close();
    parentPort.postMessage('started');
    await p;
  } else {
    const model = await m.createMoeModel({ ...shape, layers: 3, weights: { seed: 1 } });
    for (;;) {
      const p = [model.forward(x), model.forward(x)];
      parentPort.postMessage('started');
      await Promise.all(p);
    }
  }
})();
`;

function round(kind, delayMs) {
  return new Promise((resolve, reject) => {
    const w = new Worker(workerSource, { eval: true, workerData: { root, kind } });
    let done = false;
    w.once('message', () => {
      setTimeout(() => {
        w.terminate().then(() => {
          done = true;
          resolve();
        }, reject);
      }, delayMs);
    });
    w.once('error', reject);
    w.once('exit', () => {
      if (!done) setTimeout(() => resolve(), 0);
    });
  });
}

(async () => {
  const kinds = ['create', 'forward', 'model', 'close', 'sync'];
  for (let i = 0; i < rounds; ++i) {
    for (const kind of kinds) await round(kind, (i * 7) % 5);
  }
  console.log(`survived ${rounds} rounds of ${kinds.join(', ')}`);
})().catch((e) => {
  console.error(e);
  process.exit(3);
});
