// Writes the two traces of the predicted-vs-measured offload check (README "Predicted vs measured"):
//   run.trace.jsonl  — what `moecap run --trace` replays: V input variants × T tokens per layer,
//                      one pass per variant, cycled (the runner's inputVariants for decode T=4 is 4);
//   plan.trace.jsonl — the same pass sequence the timed run sees, written out CYCLES times, for
//                      `moecap plan-cache --batch T`.
// Routing: Zipf(SKEW) over E experts per layer, seeded. node bench/offload_traces.js OUTDIR
const fs = require('fs');
const path = require('path');
const { sampleRouting, zipfWeights } = require('../dist/cap/routing.js');

const out = process.argv[2] || 'offload-check';
const E = Number(process.env.E || 64),
  K = Number(process.env.K || 8),
  L = Number(process.env.LAYERS || 2);
const T = Number(process.env.T || 4),
  V = Number(process.env.V || 4),
  CYCLES = Number(process.env.CYCLES || 64);
const SKEW = Number(process.env.SKEW || 1.0),
  SEED = Number(process.env.SEED || 7);
fs.mkdirSync(out, { recursive: true });
const ids = [];
for (let l = 0; l < L; l++) ids.push(sampleRouting(V * T, K, zipfWeights(E, SKEW), SEED + l));
const write = (file, cycles) => {
  const lines = [];
  for (let l = 0; l < L; l++)
    for (let c = 0; c < cycles; c++)
      for (let t = 0; t < V * T; t++) lines.push(JSON.stringify({ layer: l, token: c * V * T + t, experts: Array.from(ids[l].subarray(t * K, t * K + K)) }));
  fs.writeFileSync(path.join(out, file), lines.join('\n') + '\n');
};
write('run.trace.jsonl', 1);
write('plan.trace.jsonl', CYCLES);
console.log(
  `${out}: run.trace.jsonl (${V * T} tokens × ${L} layers), plan.trace.jsonl (${V * T * CYCLES} tokens × ${L} layers), E=${E} k=${K} Zipf(${SKEW}) seed ${SEED}`,
);
