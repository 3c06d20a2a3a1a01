// The readable summary `moecap run` prints: one row per config, then the CAP frontier and the
// inputs behind cost and the peaks. Every cell is measured or computed from measured figures;
// '–' marks a figure that is unavailable (the reason is printed below the table).
import type { ConfigResult, Results } from './results';
import { formatBillOfMaterials, formatUsd } from './bill_of_materials';

/** Percentiles resting on fewer samples than this are marked: p99 of 8 samples is the maximum. */
export const FEW_SAMPLES = 20;

/** A utilisation cell: the value, '!' when above 1 (the cause is printed below the table). */
function utilCell(u: ConfigResult['smbu'] | ConfigResult['smfu']): string {
  if (!('value' in u)) return '–';
  return fmt(u.value) + (u.above1 ? '!' : '');
}

/** What the peaks were, their values and the windows behind each. */
export function peaksLines(r: Results): string[] {
  const p = r.peaks;
  if ('available' in p) return [`S-MBU/S-MFU: unavailable — ${p.reason}`];
  const out: string[] = [];
  const d = p.detail ?? {};
  const part = (name: string, v: number | null, scale: number, unit: string, det?: { statistic: string; samples: number }) =>
    v === null ? null : `${name} ${fmt(v / scale)} ${unit}${det ? ` (${det.statistic})` : ''}`;
  const parts = [
    part('memory', p.memoryBandwidth, 1e9, 'GB/s', d.memoryBandwidth),
    part('fp32', p.peakFlops.f32, 1e9, 'GFLOP/s', d.f32),
    part('bf16', p.peakFlops.bf16, 1e9, 'GFLOP/s', d.bf16),
    part('int8/int4', p.peakFlops.int8, 1e9, 'GOP/s', d.int8),
  ].filter((x): x is string => x !== null);
  if (r.projected)
    out.push(`peaks: projected for ${r.projected.device} from ${r.device?.kind === 'gpu' ? r.device.name : 'CPU'} measurements — ${r.projected.method}`);
  out.push(`peaks: ${p.kind} ${p.name} (${p.source}): ${parts.join(', ')}`);
  if (p.kind === 'measured' && r.configs.some((c) => 'bandwidthNow' in c.smbu && c.smbu.bandwidthNow))
    out.push(
      'S-MBU: against the read bandwidth measured right before and after each config (as `npm run bench` does); against the calibrated figure in results.json (smbu.calibrated)',
    );
  for (const w of p.warnings ?? []) out.push(`warning: ${w}`);
  return out;
}

function fmt(v: number, digits = 3): string {
  if (!Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  if (v !== 0 && (a >= 1e9 || a < 1e-3)) return v.toExponential(2);
  if (a >= 10 ** digits) return Math.round(v).toString();
  return v.toPrecision(digits);
}

export function renderTable(r: Results): string {
  const header = [
    'config',
    'tokens',
    'n',
    'p50 ms',
    'p90 ms',
    'p99 ms',
    'tokens/s',
    'A/layer (unif.)',
    'GB/s',
    'GFLOP/s',
    'S-MBU',
    'S-MFU',
    '$/1M tok',
    'rel L2',
    'route agree',
  ];
  const anyOffload = r.configs.some((c) => 'bytesMoved' in c.offload);
  if (anyOffload) header.push('hit rate', 'tier GB/s');
  const rows = r.configs.map((c) => {
    const t = c.timing.passSeconds;
    return [
      c.id,
      String(c.tokensPerPass),
      String(t.n) + (t.n < FEW_SAMPLES ? '*' : ''),
      fmt(t.p50 * 1e3),
      fmt(t.p90 * 1e3),
      fmt(t.p99 * 1e3),
      fmt(c.tokensPerSecond, 4),
      `${fmt(c.routing.meanDistinctExperts)} (${fmt(c.routing.expectedUniform)})`,
      c.achieved ? fmt(c.achieved.bytesPerSecond / 1e9) : '–',
      c.achieved ? fmt(c.achieved.flopsPerSecond / 1e9) : '–',
      utilCell(c.smbu),
      utilCell(c.smfu),
      'usdPer1MTokens' in c.cost ? formatUsd(c.cost.usdPer1MTokens) : '–',
      'relativeL2' in c.fidelity ? c.fidelity.relativeL2.toExponential(2) : '–',
      'routingAgreement' in c.fidelity ? `${(100 * c.fidelity.routingAgreement).toFixed(0)}%` : '–',
      ...(anyOffload
        ? 'bytesMoved' in c.offload
          ? [c.offload.hitRate === null ? '–' : `${(100 * c.offload.hitRate).toFixed(0)}%`, fmt(c.offload.tierBandwidth / 1e9)]
          : ['–', '–']
        : []),
    ];
  });
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  const out: string[] = [line(header), ...rows.map(line)];
  out.push('');
  out.push('times: native pass timers summed over the layers of a sample (prefill: one pass = TTFT-equivalent; decode: one step = TPOT);');
  out.push(
    'percentiles: linear interpolation between closest ranks. A: distinct experts per layer measured from the routing (median), uniform-routing expectation in brackets.',
  );
  if (r.configs.some((c) => c.timing.passSeconds.n < FEW_SAMPLES))
    out.push(`n*: fewer than ${FEW_SAMPLES} timed samples: p90/p99 rest on few samples (p99 is then about the maximum); raise --repeats or --steps`);
  out.push(`ran on: ${r.device ? `${r.device.kind} ${r.device.name}` : 'cpu'}`);
  out.push(...peaksLines(r));
  for (const c of r.configs)
    for (const [name, u] of [
      ['S-MBU', c.smbu],
      ['S-MFU', c.smfu],
    ] as const)
      if ('value' in u && u.above1) out.push(`! ${c.id}: ${name} ${fmt(u.value)} is above 1: ${u.above1}`);
  const priced = r.configs.filter((c) => 'inputs' in c.cost);
  if (priced.length) {
    const i0 = (priced[0].cost as Extract<ConfigResult['cost'], { inputs: unknown }>).inputs;
    out.push(
      `cost: the hardware each config needs, ${i0.amortisationYears} y, utilisation ${i0.utilisation}, $${i0.usdPerKWh}/kWh; prices are assumptions (--prices FILE overrides):`,
    );
    for (const c of priced) {
      if (!('inputs' in c.cost)) continue;
      const i = c.cost.inputs;
      out.push(`  ${c.id}: $${formatUsd(c.cost.hardwarePriceUsd)}, power ${i.power.watts.toPrecision(3)} W (${i.power.kind})`);
      for (const l of formatBillOfMaterials(i.components)) out.push(`    ${l}`);
    }
  }
  if (r.cap) {
    out.push(`accuracy axis: ${r.cap.accuracyAxis}`);
    for (const [phase, p] of Object.entries(r.cap.phases)) {
      if (!p) continue;
      out.push(`CAP ${phase}: Pareto frontier (cost↓ accuracy↑ tokens/s↑): ${p.pareto.frontier.join(', ') || '–'}`);
      for (const [d, by] of Object.entries(p.pareto.dominatedBy)) out.push(`  ${d} is dominated by ${by}`);
      for (const x of p.excluded) out.push(`  ${x.id} left out: ${x.reason}`);
      out.push(`  radar (${r.cap.radarMethod}: ${r.cap.radarNormalisation}):`);
      for (const s of p.radar) out.push(`    ${s.id}: cost ${s.cost.toFixed(2)}  accuracy ${s.accuracy.toFixed(2)}  performance ${s.performance.toFixed(2)}`);
    }
  }
  if (r.status !== 'complete') out.push(`status: ${r.status}${r.error ? ` (${r.error})` : ''} — ${r.configs.length} config(s) kept; --resume continues`);
  return out.join('\n') + '\n';
}
