#!/usr/bin/env node
// Prints a bench/results/*.json file (the newest by default) as the Markdown table used in the
// README's performance section: `node bench/table.js [file]`.
'use strict';
const fs = require('fs');
const path = require('path');

const dir = path.join(__dirname, 'results');
const file =
  process.argv[2] ||
  path.join(
    dir,
    fs
      .readdirSync(dir)
      .filter((f) => /^\d.*\.json$/.test(f))
      .sort()
      .pop(),
  );
const r = JSON.parse(fs.readFileSync(file, 'utf8'));
const c = r.ceilings;
const g = (m, d = 0) => (m ? `${(m.median / 1e9).toFixed(d)} (${(m.min / 1e9).toFixed(d)}–${(m.max / 1e9).toFixed(d)})` : 'n/a');
console.log(`Measured ${r.date} on ${r.machine.cpu} (${r.machine.cpus} CPUs), ${r.threads} threads, isa ${c.isa}, node ${r.machine.node}.`);
console.log(
  `Ceilings in the same run (median (min–max) of ${c.repeats}): read bandwidth ${g(c.readBandwidth, 1)} GB/s; ` +
    `fp32 FMA ${g(c.fp32Flops)} GFLOP/s; bf16 dot ${g(c.bf16Flops)} GFLOP/s; int8 dot ${g(c.int8Ops)} GOP/s.`,
);
const a = r.ceilingsAfter;
if (a) console.log(`Measured again after the runs: read bandwidth ${g(a.readBandwidth, 1)} GB/s; fp32 FMA ${g(a.fp32Flops)} GFLOP/s.`);
console.log('');
console.log('| shape | dtype | T | ms (median) | experts | GB/s | read BW then | % of it | GFLOP/s | % fp32 peak | rel L2 |');
console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const x of r.rows)
  console.log(
    `| ${x.shape} | ${x.dtype} | ${x.tokens} | ${x.medianMs.toFixed(3)} | ${x.distinctExperts} | ${x.expertGBs.toFixed(1)} | ` +
      `${x.bandwidthSteady === false ? '~' : ''}${x.readBandwidthGBs.toFixed(1)} | ${(100 * x.bandwidthRatio).toFixed(0)}% | ${x.gflops.toFixed(0)} | ${(100 * x.fp32PeakRatio).toFixed(0)}% | ${x.relL2.toExponential(1)} |`,
  );
