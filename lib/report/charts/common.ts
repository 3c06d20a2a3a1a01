// What every chart shares: sizes, fonts, and how a config is named in a legend.
import type { Config } from 'vega-lite';
import type { ConfigView } from '../results_view';

export const CHART_CONFIG: Config = {
  font: 'Helvetica, Arial, sans-serif',
  view: { stroke: '#ddd' },
  axis: { labelFontSize: 11, titleFontSize: 12, gridColor: '#eee' },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 360, titleLimit: 300 },
  title: { fontSize: 14, anchor: 'start' },
  range: { category: { scheme: 'tableau10' } },
};

/** One line per series in the sweep charts: dtype, resident fraction (when a config offloads), and phase when the file mixes them. */
export function seriesName(c: ConfigView, mixedPhases: boolean, mixedPresets = false): string {
  const parts = mixedPresets ? [c.preset, c.dtype] : [c.dtype];
  if (c.residentFraction !== null && c.residentFraction < 1) parts.push(`resident ${c.residentFraction}`);
  if (mixedPhases) parts.push(c.phase);
  return parts.join(' · ');
}

export function seriesTitle(configs: ConfigView[]): string {
  const parts = mixedPresets(configs) ? ['preset', 'dtype'] : ['dtype'];
  if (configs.some((c) => c.residentFraction !== null && c.residentFraction < 1)) parts.push('resident fraction');
  if (mixedPhases(configs)) parts.push('phase');
  return parts.join(' · ');
}

export function mixedPhases(configs: ConfigView[]): boolean {
  return new Set(configs.map((c) => c.phase)).size > 1;
}

export function mixedPresets(configs: ConfigView[]): boolean {
  return new Set(configs.map((c) => c.preset)).size > 1;
}
