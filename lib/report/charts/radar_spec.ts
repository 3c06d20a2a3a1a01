// The CAP radar: three axes (Cost, Accuracy, Performance) at 120° apart, one closed polygon per
// config. Vega-Lite has no radar mark, so the polygon is a line mark over x/y that Vega-Lite
// itself computes (calculate transforms) from each axis's normalised value and angle.
import type { TopLevelSpec } from 'vega-lite';
import type { CapPhaseView } from '../results_view';

type RadarPoint = CapPhaseView['radar'][number];
import { CHART_CONFIG } from './common';

export const RADAR_AXES = ['Cost', 'Accuracy', 'Performance'] as const;

export interface RadarRow {
  config: string;
  axis: string;
  /** axis index; the closing vertex repeats axis 0 as index 3 */
  k: number;
  value: number;
  /** raw figures of the config, for the hover text */
  description: string;
}

export function radarRows(points: RadarPoint[], describe: (id: string) => string): RadarRow[] {
  const rows: RadarRow[] = [];
  for (const p of points) {
    const values = [p.cost, p.accuracy, p.performance];
    for (let k = 0; k <= 3; k++) rows.push({ config: p.id, axis: RADAR_AXES[k % 3], k, value: values[k % 3], description: describe(p.id) });
  }
  return rows;
}

const ANGLE = 'PI / 2 + datum.k * 2 * PI / 3';
// The triangle spans x ∈ [−0.87, 0.87] and y ∈ [−0.5, 1]; margins leave room for the axis labels.
const X = { axis: null, scale: { domain: [-1.25, 1.25], nice: false } };
const Y = { axis: null, scale: { domain: [-0.72, 1.18], nice: false } };
const WIDTH = 380;

export function radarSpec(rows: RadarRow[], title: string): TopLevelSpec {
  const order = [...new Set(rows.map((r) => r.config))]; // legend in the file's config order
  const grid = [0.25, 0.5, 0.75, 1].flatMap((ring) => [0, 1, 2, 3].map((k) => ({ ring, k })));
  const spokes = [0, 1, 2].map((k) => ({ k, axis: RADAR_AXES[k] }));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title,
    width: WIDTH,
    height: Math.round((WIDTH * 1.9) / 2.5),
    config: CHART_CONFIG,
    layer: [
      {
        data: { values: grid },
        transform: [
          { calculate: `datum.ring * cos(${ANGLE})`, as: 'x' },
          { calculate: `datum.ring * sin(${ANGLE})`, as: 'y' },
        ],
        mark: { type: 'line', stroke: '#ccc', strokeWidth: 1, aria: false },
        encoding: {
          x: { field: 'x', type: 'quantitative', ...X },
          y: { field: 'y', type: 'quantitative', ...Y },
          detail: { field: 'ring' },
          order: { field: 'k' },
        },
      },
      {
        data: { values: spokes },
        transform: [
          { calculate: `cos(${ANGLE})`, as: 'x2' },
          { calculate: `sin(${ANGLE})`, as: 'y2' },
          { calculate: `1.17 * cos(${ANGLE})`, as: 'lx' },
          { calculate: `1.1 * sin(${ANGLE}) - 0.06`, as: 'ly' },
          { calculate: '0', as: 'x0' },
        ],
        layer: [
          {
            mark: { type: 'rule', stroke: '#bbb', aria: false },
            encoding: {
              x: { field: 'x0', type: 'quantitative', ...X },
              y: { field: 'x0', type: 'quantitative', ...Y },
              x2: { field: 'x2' },
              y2: { field: 'y2' },
            },
          },
          {
            mark: { type: 'text', fontSize: 13, fontWeight: 'bold', aria: false },
            encoding: {
              x: { field: 'lx', type: 'quantitative', ...X },
              y: { field: 'ly', type: 'quantitative', ...Y },
              text: { field: 'axis' },
            },
          },
        ],
      },
      {
        data: { values: rows },
        transform: [
          { calculate: `datum.value * cos(${ANGLE})`, as: 'x' },
          { calculate: `datum.value * sin(${ANGLE})`, as: 'y' },
        ],
        layer: [
          {
            mark: { type: 'line', strokeWidth: 2, opacity: 0.85, aria: false },
            encoding: {
              x: { field: 'x', type: 'quantitative', ...X },
              y: { field: 'y', type: 'quantitative', ...Y },
              color: { field: 'config', type: 'nominal', title: 'config', scale: { domain: order } },
              order: { field: 'k' },
            },
          },
          {
            transform: [{ filter: 'datum.k < 3' }],
            mark: { type: 'point', filled: true, size: 45 },
            encoding: {
              x: { field: 'x', type: 'quantitative', ...X },
              y: { field: 'y', type: 'quantitative', ...Y },
              color: { field: 'config', type: 'nominal', title: 'config', scale: { domain: order } },
              description: { field: 'description' },
            },
          },
        ],
      },
    ],
  } as unknown as TopLevelSpec;
}
