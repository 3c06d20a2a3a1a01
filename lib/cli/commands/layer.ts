// `moecap layer`: an OLMoE-shaped layer (H=2048 F=1024 E=64 k=8, seeded random weights) at a few
// token counts. Prints median time per pass, tokens/s, bytes of the distinct experts read per
// second, FLOP/s, and the error against the fp64 reference on a sample of tokens. Every figure is
// measured in this run (native timers) or computed from measured figures.
import { createMoeLayer, type CachePolicy, type DType, type Isa } from '../../moe_layer';
import { fidelity } from '../../fidelity';
import { MoecapRangeError } from '../../errors';
import { median } from '../../cap/metrics';
import { ISA_NAMES } from '../../types';
import { naturalTokens } from '../../cap/routing';
import { checkPassFits } from '../../cap/pass_memory';
import type { OptionSpec } from '../args';
import type { Command } from '../command';

const OPTIONS: OptionSpec[] = [
  { name: 'tokens', type: 'number-list', description: 'token counts per pass', default: [1, 16, 128] },
  { name: 'hidden', type: 'number', description: 'hidden size H', default: 2048 },
  { name: 'intermediate', type: 'number', description: 'expert intermediate size F', default: 1024 },
  { name: 'experts', type: 'number', description: 'routed experts E', default: 64 },
  { name: 'top-k', type: 'number', description: 'experts per token k', default: 8 },
  { name: 'dtype', type: 'string', description: 'weights: f32, bf16, int8, int4, mxfp4, fp8', default: 'f32' },
  { name: 'threads', type: 'number', description: 'compute threads (default: all CPUs)' },
  { name: 'repeats', type: 'number', description: 'timed passes per token count', default: 10 },
  { name: 'seed', type: 'number', description: 'weight seed', default: 1 },
  { name: 'isa', type: 'string', description: ISA_NAMES.join(', ') },
  { name: 'sample', type: 'number', description: 'tokens checked against the fp64 reference', default: 4 },
  { name: 'offload', type: 'number', description: 'fraction of experts resident (0..1]; the rest in a weights file' },
  { name: 'offload-policy', type: 'string', description: 'lru, lfu, lfru, static (with --offload)', default: 'lru' },
  { name: 'cold', type: 'boolean', description: 'with --offload: drop the file page cache so reads reach the device' },
  { name: 'json', type: 'boolean', description: 'print the results as JSON' },
];

export interface LayerRow {
  tokens: number;
  passes: number;
  medianMs: number;
  minMs: number;
  tokensPerSecond: number;
  distinctExperts: number;
  expertBytes: number;
  expertBytesPerSecond: number;
  flopsPerSecond: number;
  relativeL2: number;
  maxAbsError: number;
  routingAgreement: number;
  /** With --offload: cache hit rate and slow-tier bytes/s over the timed passes. */
  hitRate?: number | null;
  tierBytesPerSecond?: number | null;
}

export const layerCommand: Command = {
  name: 'layer',
  summary: 'one MoE layer (default: OLMoE shape) at a few token counts: speed and fp64 error',
  description: 'Runs an OLMoE-shaped MoE layer with random weights and reports speed and fidelity.',
  options: OPTIONS,
  run: async ({ options }, io) => runLayer(options, io.out),
};

/** Refuses bad counts before the layer (and its inputs) are built: every entry of --tokens must be a
 * positive integer whose pass fits in memory; --repeats and --sample at least 1. */
function checkCounts(o: Record<string, unknown>): void {
  for (const name of ['repeats', 'sample'])
    if (!Number.isInteger(o[name]) || (o[name] as number) < 1)
      throw new MoecapRangeError('ERR_INVALID_OPTION', `--${name} must be an integer >= 1, got ${o[name]}`);
  const shape = { hidden: o.hidden as number, intermediate: o.intermediate as number, topK: o['top-k'] as number };
  for (const T of o.tokens as number[]) {
    if (!Number.isInteger(T) || T < 1) throw new MoecapRangeError('ERR_INVALID_OPTION', `--tokens entries must be positive integers, got ${T}`);
    if (Number.isInteger(shape.hidden) && shape.hidden > 0) checkPassFits(T, shape, INPUT_VARIANTS, `--tokens ${T}`);
  }
}

const INPUT_VARIANTS = 4;

async function runLayer(o: Record<string, unknown>, out: (s: string) => void): Promise<number> {
  checkCounts(o);
  const layer = await createMoeLayer({
    hidden: o.hidden as number,
    intermediate: o.intermediate as number,
    experts: o.experts as number,
    topK: o['top-k'] as number,
    scoring: 'softmax',
    renormalize: false,
    dtype: o.dtype as DType,
    threads: o.threads as number | undefined,
    isa: o.isa as Isa | undefined,
    weights: { seed: o.seed as number },
    ...(o.offload !== undefined
      ? {
          offload: {
            capacity: { fraction: o.offload as number },
            policy: o['offload-policy'] as CachePolicy,
            coldCache: Boolean(o.cold),
          },
        }
      : {}),
  });
  const info = layer.info();
  const rows: LayerRow[] = [];
  try {
    if (!o.json)
      out(
        `moecap layer: H=${info.hidden} F=${info.intermediate} E=${info.experts} k=${info.topK} dtype=${info.dtype} ` +
          `isa=${info.isa} threads=${info.threads} (seeded random weights, N(0,1) tokens; native timers, median)\n` +
          (info.offload
            ? `offload: ${info.offload.capacity} of ${info.experts} experts resident, policy ${info.offload.policy}, ` +
              `${info.offload.coldCache ? 'cold' : 'warm'} page cache, ` +
              `${info.offload.scratch ? 'scratch file (removed on exit)' : 'file ' + info.offload.path}\n`
            : ''),
      );
    const repeats = o.repeats as number;
    for (const T of o.tokens as number[]) {
      const inputs = Array.from({ length: INPUT_VARIANTS }, (_, i) => i).map((i) => naturalTokens(T, info.hidden, 1000 * T + i));
      await layer.forward(inputs[0]); // warm-up
      if (info.offload) layer.resetOffloadStats();
      const times: number[] = [];
      let bytes = 0,
        flops = 0,
        distinct = 0;
      for (let r = 0; r < repeats; r++) {
        const res = await layer.forward(inputs[r % inputs.length]);
        times.push(res.stats.timeNs / 1e6);
        bytes += res.stats.expertBytes;
        flops += res.stats.flops;
        distinct += res.stats.distinctExperts;
      }
      const off = info.offload ? layer.offloadStats() : null;
      const x = inputs[0];
      const res = await layer.forward(x);
      const n = Math.min(T, Math.max(1, o.sample as number));
      const sample = Int32Array.from({ length: n }, (_, i) => Math.floor((i * T) / n));
      const ref = await layer.reference(x, sample);
      const fid = fidelity(res.output, res.expertIds, ref, info.hidden, info.topK);
      const total = times.reduce((a, b) => a + b, 0) / 1e3;
      const med = median(times);
      rows.push({
        tokens: T,
        passes: repeats,
        medianMs: med,
        minMs: times.reduce((a, b) => Math.min(a, b), Infinity),
        tokensPerSecond: T / (med / 1e3),
        distinctExperts: distinct / repeats,
        expertBytes: bytes / repeats,
        expertBytesPerSecond: bytes / total,
        flopsPerSecond: flops / total,
        relativeL2: fid.relativeL2,
        maxAbsError: fid.maxAbsError,
        routingAgreement: fid.routingAgreement,
        ...(off ? { hitRate: off.hitRate, tierBytesPerSecond: off.tierBytesPerSecond } : {}),
      });
    }
  } finally {
    layer.close();
  }
  if (o.json) {
    out(JSON.stringify({ layer: info, rows }, null, 2) + '\n');
    return 0;
  }
  const offloaded = info.offload !== null;
  const header = ['tokens', 'ms/pass', 'tokens/s', 'experts A', 'expert GB/s', 'GFLOP/s', 'rel L2 vs fp64', 'routing agree'];
  if (offloaded) header.push('hit rate', 'slow-tier GB/s');
  const table = rows.map((r) => [
    String(r.tokens),
    r.medianMs.toFixed(3),
    r.tokensPerSecond.toFixed(0),
    r.distinctExperts.toFixed(1),
    (r.expertBytesPerSecond / 1e9).toFixed(1),
    (r.flopsPerSecond / 1e9).toFixed(1),
    r.relativeL2.toExponential(2),
    (100 * r.routingAgreement).toFixed(0) + '%',
    ...(offloaded ? [r.hitRate == null ? '–' : r.hitRate.toFixed(3), r.tierBytesPerSecond == null ? '–' : (r.tierBytesPerSecond / 1e9).toFixed(2)] : []),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i])).join('  ');
  out(line(header) + '\n' + table.map(line).join('\n') + '\n');
  out('ms/pass: median; GB/s and GFLOP/s: distinct-expert bytes and FLOPs over the summed pass times.\n');
  if (offloaded) out('hit rate and slow-tier GB/s (bytes read / I/O time) over the timed passes.\n');
  return 0;
}
