// The readable summary `moecap run` prints: one row per config, then the CAP frontier and the
// inputs behind cost and the peaks. Every cell is measured or computed from measured figures;
// '–' marks a figure that is unavailable (the reason is printed below the table).
import type { Results } from './results';

function fmt(v: number, digits = 3): string {
  if (!Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  if (v !== 0 && (a >= 1e9 || a < 1e-3)) return v.toExponential(2);
  if (a >= 10 ** digits) return Math.round(v).toString();
  return v.toPrecision(digits);
}

export function renderTable(r: Results): string {
  const header = ['config', 'tokens', 'p50 ms', 'p90 ms', 'p99 ms', 'tokens/s', 'A/layer (unif.)', 'S-MBU', 'S-MFU', '$/1M tok', 'rel L2', 'route agree'];
  const anyOffload = r.configs.some((c) => 'bytesMoved' in c.offload);
  if (anyOffload) header.push('hit rate', 'tier GB/s');
  const rows = r.configs.map((c) => {
    const t = c.timing.passSeconds;
    return [
      c.id,
      String(c.tokensPerPass),
      fmt(t.p50 * 1e3), fmt(t.p90 * 1e3), fmt(t.p99 * 1e3),
      fmt(c.tokensPerSecond, 4),
      `${fmt(c.routing.meanDistinctExperts)} (${fmt(c.routing.expectedUniform)})`,
      'value' in c.smbu ? fmt(c.smbu.value) : '–',
      'value' in c.smfu ? fmt(c.smfu.value) : '–',
      'usdPer1MTokens' in c.cost ? fmt(c.cost.usdPer1MTokens) : '–',
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
  out.push('percentiles: linear interpolation between closest ranks. A: distinct experts per layer measured from the routing (median), uniform-routing expectation in brackets.');
  const peaks = r.peaks;
  out.push('available' in peaks ? `S-MBU/S-MFU: unavailable — ${peaks.reason}` : `peaks: ${peaks.kind} ${peaks.name} (${peaks.source})`);
  const c0 = r.configs.find((c) => 'inputs' in c.cost);
  if (c0 && 'inputs' in c0.cost) {
    const i = c0.cost.inputs;
    out.push(
      `cost: ${i.components.map((c) => `${c.name} $${c.priceUsd.toFixed(0)}`).join(' + ')}, ${i.amortisationYears} y, utilisation ${i.utilisation}, ` +
        `$${i.usdPerKWh}/kWh, power ${i.power.watts.toFixed(1)} W (${i.power.kind}: ${i.power.source}); prices are assumptions (--prices FILE overrides)`,
    );
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
