// The roofline: each config at (arithmetic intensity = achieved FLOP/s ÷ achieved bytes/s,
// achieved FLOP/s), log-log, under the machine's ceilings from results.json: the memory and
// slow-tier bandwidth slopes and a compute peak per dtype.
import type { TopLevelSpec } from 'vega-lite';
import type { ResultsView } from '../results_view';
import { si } from '../format';
import { CHART_CONFIG, mixedPhases, seriesName } from './common';

interface CeilingRow {
  ceiling: string;
  intensity: number;
  flops: number;
}

export function rooflineSpec(view: ResultsView): TopLevelSpec {
  const mixed = mixedPhases(view.configs);
  const points = view.configs
    .filter((c) => c.achievedBandwidth > 0 && c.achievedFlops > 0)
    .map((c) => {
      const intensity = c.achievedFlops / c.achievedBandwidth;
      const peak = view.peaks.flops[c.dtype];
      const roof = Math.min(view.peaks.memoryBandwidth * intensity, peak ?? Infinity);
      return {
        config: c.id,
        series: seriesName(c, mixed),
        intensity,
        flops: c.achievedFlops,
        description:
          `${c.id}: ${si(c.achievedFlops, 'FLOP/s')}, ${si(c.achievedBandwidth, 'B/s')}, ` +
          `${intensity.toPrecision(3)} FLOP/byte; ${(100 * c.achievedFlops / roof).toPrecision(3)}% of the roof` +
          (peak === undefined ? ' (memory roof only: no compute peak for this dtype)' : ''),
      };
    });
  const xs = points.map((p) => p.intensity);
  const ridges = Object.values(view.peaks.flops).map((f) => f / view.peaks.memoryBandwidth);
  const lo = Math.min(...xs, ...ridges) / 4;
  const hi = Math.max(...xs, ...ridges) * 4;
  const ceilings: CeilingRow[] = [];
  const slope = (name: string, bw: number) =>
    ceilings.push({ ceiling: name, intensity: lo, flops: bw * lo }, { ceiling: name, intensity: hi, flops: bw * hi });
  slope(`memory ${si(view.peaks.memoryBandwidth, 'B/s')}`, view.peaks.memoryBandwidth);
  if (view.peaks.slowTierBandwidth !== null) slope(`slow tier ${si(view.peaks.slowTierBandwidth, 'B/s')}`, view.peaks.slowTierBandwidth);
  for (const [dtype, f] of Object.entries(view.peaks.flops))
    ceilings.push({ ceiling: `${dtype} peak ${si(f, 'FLOP/s')}`, intensity: lo, flops: f }, { ceiling: `${dtype} peak ${si(f, 'FLOP/s')}`, intensity: hi, flops: f });
  const ys = points.map((p) => p.flops);
  const yLo = Math.min(...ys) / 4;
  const yHi = Math.max(...ys, ...Object.values(view.peaks.flops)) * 3;
  const x = { field: 'intensity', type: 'quantitative', title: 'arithmetic intensity (FLOP / byte)', scale: { type: 'log', domain: [lo, hi] } } as const;
  const y = { field: 'flops', type: 'quantitative', title: 'FLOP/s', scale: { type: 'log', domain: [yLo, yHi] }, axis: { format: '.2s' } } as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: `Roofline (${view.peaks.source} ceilings)`,
    width: 520,
    height: 360,
    config: CHART_CONFIG,
    layer: [
      {
        data: { values: ceilings },
        mark: { type: 'line', clip: true, strokeWidth: 1.5 },
        encoding: {
          x,
          y,
          strokeDash: { field: 'ceiling', type: 'nominal', title: 'ceilings' },
          description: { field: 'ceiling' },
          color: { value: '#555' },
          detail: { field: 'ceiling' },
        },
      },
      {
        data: { values: points },
        mark: { type: 'point', filled: true, size: 70, clip: true },
        encoding: {
          x,
          y,
          color: { field: 'series', type: 'nominal', title: 'configs' },
          description: { field: 'description' },
        },
      },
    ],
    resolve: { scale: { color: 'independent' } },
  } as unknown as TopLevelSpec;
}
