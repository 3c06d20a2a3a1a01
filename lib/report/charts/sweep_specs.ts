// The sweep charts: throughput and latency, utilisation, distinct experts and offload, each
// versus batch (or cache size), one line per dtype / offload fraction.
import type { TopLevelSpec } from 'vega-lite';
import type { ConfigView, ResultsView } from '../results_view';
import { CHART_CONFIG, mixedPhases, mixedPresets, seriesName, seriesTitle } from './common';

export const SCHEMA = 'https://vega.github.io/schema/vega-lite/v5.json';
const W = 300;
const H = 230;

export type Row = Record<string, string | number | null>;

function rows(view: ResultsView, pick: (c: ConfigView) => Row): Row[] {
  const mixed = mixedPhases(view.configs);
  const presets = mixedPresets(view.configs);
  return view.configs.map((c) => ({ config: c.id, series: seriesName(c, mixed, presets), batch: c.batch, ...pick(c) }));
}

/** One panel: a line per series over batch (log scale), with points carrying the config's figures. */
export function panel(values: Row[], field: string, title: string, yTitle: string, format?: string, xField = 'batch', xTitle = 'batch size', legend = 'dtype') {
  const data = values.filter((r) => r[field] !== null);
  return {
    title,
    width: W,
    height: H,
    data: { values: data },
    encoding: {
      x: { field: xField, type: 'quantitative', title: xTitle, scale: { type: 'log' } },
      y: { field, type: 'quantitative', title: yTitle, ...(format ? { axis: { format } } : {}) },
      color: { field: 'series', type: 'nominal', title: legend },
    },
    layer: [
      { mark: { type: 'line', strokeWidth: 2, aria: false } },
      { mark: { type: 'point', filled: true, size: 50 }, encoding: { description: { field: 'description' } } },
    ],
  };
}

function describe(c: ConfigView, what: string): string {
  return `${c.id}: ${what}`;
}

export function throughputSpec(view: ResultsView): TopLevelSpec {
  const values = rows(view, (c) => ({
    tokensPerSecond: c.tokensPerSecond,
    tpotMs: c.tpotMs,
    description: describe(c, `${c.tokensPerSecond.toPrecision(4)} tokens/s, TPOT ${c.tpotMs === null ? 'n/a' : c.tpotMs.toPrecision(4) + ' ms'}`),
  }));
  const legend = seriesTitle(view.configs);
  const panels = [panel(values, 'tokensPerSecond', 'Tokens/s vs batch', 'tokens/s', '.3s', 'batch', 'batch size', legend)];
  if (values.some((r) => r.tpotMs !== null))
    panels.push(panel(values, 'tpotMs', 'TPOT vs batch (decode)', 'TPOT (ms)', undefined, 'batch', 'batch size', legend));
  return { $schema: SCHEMA, config: CHART_CONFIG, hconcat: panels } as unknown as TopLevelSpec;
}

/**
 * A utilisation panel: a line per series, a dashed 100% rule, and a triangle on each point above
 * it (its hover text carries the cause the runner recorded). The y scale always shows 100%.
 */
export function utilisationPanel(values: Row[], field: string, title: string, legend: string, xTitle = 'batch size') {
  const data = values.filter((r) => r[field] !== null);
  const top = Math.max(1.1, ...data.map((r) => (r[field] as number) * 1.1));
  const above = data.filter((r) => (r[field] as number) > 1);
  const x = { field: 'batch', type: 'quantitative', title: xTitle, scale: { type: 'log' } };
  const y = { field, type: 'quantitative', title, axis: { format: '.0%' }, scale: { domain: [0, top] } };
  const color = { field: 'series', type: 'nominal', title: legend };
  return {
    title: `${title} vs batch`,
    width: W,
    height: H,
    layer: [
      { data: { values: data }, mark: { type: 'line', strokeWidth: 2, aria: false }, encoding: { x, y, color } },
      { data: { values: data }, mark: { type: 'point', filled: true, size: 50 }, encoding: { x, y, color, description: { field: 'description' } } },
      {
        data: { values: [{ full: 1, label: '100%' }] },
        mark: { type: 'rule', strokeDash: [5, 4], color: '#b35900' },
        encoding: { y: { field: 'full', type: 'quantitative', scale: { domain: [0, top] } }, description: { field: 'label' } },
      },
      // Only when a point is above: an empty layer leaves vega an infinite x extent to warn about.
      ...(above.length
        ? [
            {
              data: { values: above },
              mark: { type: 'point', shape: 'triangle-up', filled: true, size: 160, color: '#b35900' },
              encoding: { x, y, description: { field: `${field}Above` } },
            },
          ]
        : []),
    ],
  };
}

/** Null when neither S-MBU nor S-MFU is available for any config (no peaks). */
export function utilisationSpec(view: ResultsView): TopLevelSpec | null {
  if (view.configs.every((c) => c.smbu === null && c.smfu === null)) return null;
  const values = rows(view, (c) => ({
    smbu: c.smbu,
    smfu: c.smfu,
    smbuAbove: `${c.id}: S-MBU above 100%: ${c.smbuAbove1 ?? 'above the ceiling'}`,
    smfuAbove: `${c.id}: S-MFU above 100%: ${c.smfuAbove1 ?? 'above the ceiling'}`,
    description: describe(
      c,
      `S-MBU ${c.smbu === null ? 'unavailable' : (100 * c.smbu).toPrecision(3) + '%'}, S-MFU ${c.smfu === null ? 'unavailable' : (100 * c.smfu).toPrecision(3) + '%'}`,
    ),
  }));
  return {
    $schema: SCHEMA,
    config: CHART_CONFIG,
    hconcat: [utilisationPanel(values, 'smbu', 'S-MBU', seriesTitle(view.configs)), utilisationPanel(values, 'smfu', 'S-MFU', seriesTitle(view.configs))],
  } as unknown as TopLevelSpec;
}

/** Measured distinct experts per layer beside the uniform-routing expectation E·(1−(1−k/E)^T). */
export function expertsSpec(view: ResultsView): TopLevelSpec {
  const values = rows(view, (c) => ({
    tokens: c.tokensPerPass,
    distinct: c.distinctExpertsPerLayer,
    description: describe(
      c,
      `${c.distinctExpertsPerLayer.toPrecision(3)} distinct experts per layer at T = ${c.tokensPerPass} (uniform routing: ${c.expectedUniform.toPrecision(3)})`,
    ),
  }));
  const maxT = Math.max(...view.configs.map((c) => c.tokensPerPass)) * 1.5;
  const maxE = Math.max(...view.configs.map((c) => c.experts));
  const x = { field: 'tokens', type: 'quantitative', title: 'tokens per pass T (decode: batch size)', scale: { type: 'log' } };
  const y = { field: 'distinct', type: 'quantitative', title: 'distinct experts per layer A', scale: { domain: [0, maxE] } };
  // One expectation curve per (E, k) in the sweep, drawn by Vega-Lite from E and k of the results file.
  const shapes = [...new Map(view.configs.map((c) => [`${c.experts},${c.topK}`, { E: c.experts, k: c.topK }])).values()];
  const curves = shapes.map(({ E, k }) => ({
    data: { sequence: { start: 0, stop: 1.0001, step: 0.01, as: 'u' } },
    transform: [
      { calculate: `exp(datum.u * log(${maxT}))`, as: 'tokens' },
      { calculate: `${E} * (1 - pow(1 - ${k} / ${E}, datum.tokens))`, as: 'distinct' },
      { calculate: `'E·(1−(1−k/E)^T), E=${E}, k=${k}'`, as: 'series' },
    ],
    mark: { type: 'line', strokeDash: [6, 4], color: '#666', strokeWidth: 1.5 },
    encoding: { x, y, strokeDash: { field: 'series', type: 'nominal', title: 'uniform-routing expectation' }, description: { field: 'series' } },
  }));
  return {
    $schema: SCHEMA,
    config: CHART_CONFIG,
    title: 'Distinct experts per layer vs batch',
    width: 420,
    height: H,
    layer: [
      ...curves,
      {
        data: { values },
        mark: { type: 'point', filled: true, size: 60 },
        encoding: {
          x,
          y,
          color: { field: 'series', type: 'nominal', title: `measured A (${seriesTitle(view.configs)})` },
          description: { field: 'description' },
        },
      },
    ],
    resolve: { scale: { color: 'independent', strokeDash: 'independent' } },
  } as unknown as TopLevelSpec;
}

/** Offload hit rate and stall time vs cache size; null when no config has offload figures. */
export function offloadSpec(view: ResultsView): TopLevelSpec | null {
  const withCache = view.configs.filter((c) => c.offload && c.offload.cacheExperts !== null && (c.offload.hitRate !== null || c.offload.stallMs !== null));
  if (withCache.length === 0) return null;
  const values = withCache.map((c) => ({
    config: c.id,
    series: `${c.dtype} · batch ${c.batch}`,
    cache: c.offload!.cacheExperts,
    hitRate: c.offload!.hitRate,
    stallMs: c.offload!.stallMs,
    description: `${c.id}: cache ${c.offload!.cacheExperts} experts, hit rate ${c.offload!.hitRate === null ? 'unavailable' : (100 * c.offload!.hitRate).toPrecision(3) + '%'}, stall ${c.offload!.stallMs === null ? 'unavailable' : c.offload!.stallMs.toPrecision(3) + ' ms'}`,
  }));
  const p = (field: string, title: string, yTitle: string, format?: string) => {
    const s = panel(values, field, title, yTitle, format, 'cache', 'cache size (experts)');
    s.encoding.x.scale = { type: 'linear' } as never;
    s.encoding.color.title = 'dtype · batch'; // overrides the panel's legend title
    return s;
  };
  return {
    $schema: SCHEMA,
    config: CHART_CONFIG,
    hconcat: [p('hitRate', 'Offload hit rate vs cache size', 'hit rate', '.0%'), p('stallMs', 'Stall time vs cache size', 'stall per pass (ms)')],
  } as unknown as TopLevelSpec;
}
