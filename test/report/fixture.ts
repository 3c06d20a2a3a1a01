// A results.json made by a real tiny run: the lead's createMoeLayer at a few batches and dtypes,
// timed with the native timers, checked against the fp64 reference, counters read around the
// sweep. It follows lib/report/results_view.ts (the fields the report reads) until the CAP
// runner's schema lands. Figures that are not measured here are stated as such in the file:
// the peaks (REFERENCE.md's figures for this 2-core box, no bf16/int8 peak) and the cost inputs.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createMoeLayer, systemInfo, type DType } from '../../lib/moe_layer';
import { fidelity } from '../../lib/fidelity';
import { Counters } from '../../lib/counters';
import { VERSION } from '../../lib/version';
import { SUPPORTED_SCHEMA_VERSION } from '../../lib/report/results_view';
import { gaussian } from '../helpers';

const SHAPE = { hidden: 128, intermediate: 64, experts: 16, topK: 2 };
const PEAKS = {
  source: 'datasheet',
  detail: "REFERENCE.md's figures for the 2-core Zen 5 test box (fp32 210 GFLOP/s, DRAM 33 GB/s); no bf16/int8 peak given",
  memoryBandwidth: 33e9,
  slowTierBandwidth: null,
  flops: { f32: 210e9 },
};
// Stated cost inputs (not measured): hardware price, lifetime, a TDP power model, $/kWh.
const COST = { priceUsd: 2500, hours: 3 * 8760, watts: 120, usdPerKwh: 0.15 };
const COST_BASIS = `test fixture inputs: $${COST.priceUsd} hardware over ${COST.hours} h, TDP model ${COST.watts} W (no energy counter), $${COST.usdPerKwh}/kWh`;

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

interface Plan {
  phase: 'prefill' | 'decode';
  dtype: DType;
  batch: number;
  seq: number;
}

export async function makeFixtureResults(opts: { dtypes?: DType[]; batches?: number[]; repeats?: number } = {}): Promise<object> {
  const dtypes = opts.dtypes ?? ['f32', 'bf16', 'int8'];
  const batches = opts.batches ?? [1, 4, 16, 64];
  const repeats = opts.repeats ?? 5;
  const plans: Plan[] = [];
  for (const dtype of dtypes) for (const batch of batches) plans.push({ phase: 'decode', dtype, batch, seq: 1 });
  plans.push({ phase: 'prefill', dtype: dtypes[0], batch: 1, seq: 8 }, { phase: 'prefill', dtype: dtypes[0], batch: 4, seq: 8 });

  const counters = new Counters();
  let readings: object[] | null = null;
  const configs: object[] = [];
  let isa = '';
  for (const dtype of dtypes) {
    const layer = await createMoeLayer({ ...SHAPE, scoring: 'softmax', renormalize: true, dtype, threads: 2, weights: { seed: 7 } });
    isa = layer.info().isa;
    try {
      await layer.forward(gaussian(SHAPE.hidden, 1));  // warm-up, so the compute threads exist for the counters
      if (readings === null) counters.start();
      for (const p of plans.filter((q) => q.dtype === dtype)) {
        const T = p.batch * p.seq;
        const x = gaussian(T * SHAPE.hidden, 100 + T);
        await layer.forward(x);
        const times: number[] = [];
        let bytes = 0, flops = 0, distinct = 0, dropped = 0, assignments = 0;
        let last = await layer.forward(x);
        for (let r = 0; r < repeats; r++) {
          last = await layer.forward(x);
          const s = last.stats;
          times.push(s.timeNs / 1e9);
          bytes += s.expertBytes + s.routerBytes + s.sharedBytes;
          flops += s.flops;
          distinct += s.distinctExperts;
          dropped += s.dropped;
          assignments += s.assignments;
        }
        const t = median(times);
        const total = times.reduce((a, b) => a + b, 0);
        const n = Math.min(T, 4);
        const ref = await layer.reference(x, Int32Array.from({ length: n }, (_, i) => Math.floor((i * T) / n)));
        const fid = fidelity(last.output, last.expertIds, ref, SHAPE.hidden, SHAPE.topK);
        const tps = T / t;
        const bw = bytes / total, fl = flops / total;
        const peak = (PEAKS.flops as Record<string, number>)[dtype];
        configs.push({
          id: `${p.phase} ${dtype} b${p.batch}${p.phase === 'prefill' ? ` s${p.seq}` : ''}`,
          phase: p.phase,
          dtype,
          batch: p.batch,
          tokensPerPass: T,
          offloadFraction: 0,
          tokensPerSecond: tps,
          tpotMs: p.phase === 'decode' ? t * 1e3 : null,
          ttftMs: p.phase === 'prefill' ? t * 1e3 : null,
          smbu: bw / PEAKS.memoryBandwidth,
          smfu: peak === undefined ? null : fl / peak,
          achievedBandwidth: bw,
          achievedFlops: fl,
          slowTierBandwidth: null,
          distinctExpertsPerLayer: distinct / repeats,
          costPerMillionTokens: ((COST.priceUsd / COST.hours + (COST.watts / 1000) * COST.usdPerKwh) * (1e6 / tps)) / 3600,
          costBasis: COST_BASIS,
          accuracy: {
            relativeL2: fid.relativeL2,
            maxAbsError: fid.maxAbsError,
            cosine: fid.cosine,
            routingAgreement: fid.routingAgreement,
            dropRate: assignments ? dropped / assignments : 0,
            task: null,
          },
          offload: null,
        });
      }
    } finally {
      layer.close();
    }
  }
  readings = counters.stop();
  const sys = systemInfo();
  return {
    schemaVersion: SUPPORTED_SCHEMA_VERSION,
    moecapVersion: VERSION,
    createdAt: new Date().toISOString(),
    model: { preset: 'tiny (report test fixture)', layers: 1, ...SHAPE },
    machine: {
      cpu: os.cpus()[0]?.model ?? 'unknown CPU',
      gpu: null,
      cores: sys.hardwareThreads,
      memoryBytes: sys.totalMemory,
      isa,
      backend: 'cpu (native addon)',
    },
    peaks: PEAKS,
    counters: readings,
    configs,
  };
}

/** Writes the fixture into a fresh temporary folder; returns the folder. */
export async function writeFixture(results?: object): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-report-'));
  fs.writeFileSync(path.join(dir, 'results.json'), JSON.stringify(results ?? (await makeFixtureResults()), null, 2));
  return dir;
}
