// The roofline: each config at (arithmetic intensity = achieved FLOP/s ÷ achieved bytes/s,
// achieved FLOP/s), log-log, under the machine's ceilings from results.json: the memory and
// slow-tier bandwidth slopes and a compute peak per dtype.
import type { TopLevelSpec } from 'vega-lite';
import type { ResultsView } from '../results_view';
import { si } from '../format';
import { CHART_CONFIG, mixedPhases, mixedPresets, seriesName, seriesTitle } from './common';

interface CeilingRow {
  ceiling: string;
  intensity: number;
  flops: number;
}

/** Null without ceilings (no peaks) or when no config has both achieved figures. */
export function rooflineSpec(view: ResultsView): TopLevelSpec | null {
  if (view.peaks.source === 'unavailable') return null;
  const mixed = mixedPhases(view.configs);
  const presets = mixedPresets(view.configs);
  const bw = view.peaks.memoryBandwidth;
  const points = view.configs
    .filter((c) => c.achievedBandwidth !== null && c.achievedFlops !== null && c.achievedBandwidth > 0 && c.achievedFlops > 0)
    .map((c) => {
      const intensity = c.achievedFlops! / c.achievedBandwidth!;
      const roof = Math.min(bw === null ? Infinity : bw * intensity, c.peakFlops ?? Infinity);
      return {
        config: c.id,
        series: seriesName(c, mixed, presets),
        intensity,
        flops: c.achievedFlops!,
        description:
          `${c.id}: ${si(c.achievedFlops, 'FLOP/s')}, ${si(c.achievedBandwidth, 'B/s')}, ${intensity.toPrecision(3)} FLOP/byte` +
          (Number.isFinite(roof) ? `; ${((100 * c.achievedFlops!) / roof).toPrecision(3)}% of the roof` : ''),
      };
    });
  if (points.length === 0) return null;
  const peaks = Object.entries(view.peaks.flops);
  const xs = points.map((p) => p.intensity);
  const ridges = bw === null ? [] : peaks.map(([, f]) => f / bw);
  const lo = Math.min(...xs, ...ridges) / 4;
  const hi = Math.max(...xs, ...ridges) * 4;
  const ceilings: CeilingRow[] = [];
  // A bandwidth diagonal stops where it meets the highest compute roof (or runs across without one);
  // each compute roof starts where the memory diagonal meets it.
  const topRoof = peaks.length ? Math.max(...peaks.map(([, f]) => f)) : null;
  const slope = (name: string, b: number) => {
    const end = topRoof === null ? hi : Math.min(hi, topRoof / b);
    ceilings.push({ ceiling: name, intensity: lo, flops: b * lo }, { ceiling: name, intensity: end, flops: b * end });
  };
  if (bw !== null) slope(`memory ${si(bw, 'B/s')}`, bw);
  const offloaded = view.configs.some((c) => c.residentFraction !== null && c.residentFraction < 1);
  if (offloaded && view.peaks.slowTierBandwidth !== null) slope(`slow tier ${si(view.peaks.slowTierBandwidth, 'B/s')}`, view.peaks.slowTierBandwidth);
  for (const [dtype, f] of peaks) {
    const name = dtype === 'int8' ? `int8/int4 peak ${si(f, 'OP/s')}` : `${dtype} peak ${si(f, 'FLOP/s')}`;
    const start = bw === null ? lo : Math.max(lo, f / bw);
    ceilings.push({ ceiling: name, intensity: start, flops: f }, { ceiling: name, intensity: hi, flops: f });
  }
  const ys = points.map((p) => p.flops);
  const yLo = Math.min(...ys) / 4;
  const yHi = Math.max(...ys, ...peaks.map(([, f]) => f)) * 3;
  const x = { field: 'intensity', type: 'quantitative', title: 'arithmetic intensity (FLOP / byte)', scale: { type: 'log', domain: [lo, hi] } };
  const y = { field: 'flops', type: 'quantitative', title: 'FLOP/s', scale: { type: 'log', domain: [yLo, yHi] }, axis: { format: '.2s' } };
  const layers: object[] = [];
  if (ceilings.length)
    layers.push({
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
    });
  layers.push({
    data: { values: points },
    mark: { type: 'point', filled: true, size: 70, clip: true },
    encoding: {
      x,
      y,
      color: { field: 'series', type: 'nominal', title: `configs (${seriesTitle(view.configs)})` },
      description: { field: 'description' },
    },
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: `Roofline (${view.peaks.source} ceilings)`,
    width: 520,
    height: 360,
    config: CHART_CONFIG,
    layer: layers,
  } as unknown as TopLevelSpec;
}
