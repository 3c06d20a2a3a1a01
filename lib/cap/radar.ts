// CAP radar scores: each axis mapped to (0, 1] over the compared set, 1 = best, so that larger is
// better on every axis. MoE-CAP draws cost, accuracy and performance on one radar; its public code
// does not pin down a normalisation, so ours is stated here and recorded in every result:
//   'ratio-to-best' (default): performance p/max(p), accuracy a/max(a), cost min(c)/c.
//       Proportional: a config half as fast scores 0.5; never 0 for a working config.
//   'min-max': (v − min)/(max − min), cost inverted (max − c)/(max − min); the worst scores 0.
//       When all values of an axis are equal, every config scores 1 on it.
import { MoecapRangeError } from '../errors';
import type { CapPoint } from './pareto';

export type RadarMethod = 'ratio-to-best' | 'min-max';

export interface RadarScore {
  id: string;
  cost: number;
  accuracy: number;
  performance: number;
}

export function radarScores(points: readonly CapPoint[], method: RadarMethod = 'ratio-to-best'): RadarScore[] {
  if (points.length === 0) return [];
  for (const p of points) {
    if (!(p.cost > 0) && method === 'ratio-to-best') throw new MoecapRangeError('ERR_INVALID_ARGUMENT', `config '${p.id}': cost must be > 0 for ratio-to-best`);
    if (!(p.performance >= 0) || !(p.accuracy >= 0))
      throw new MoecapRangeError('ERR_INVALID_ARGUMENT', `config '${p.id}': accuracy and performance must be >= 0`);
  }
  const axis = (k: 'cost' | 'accuracy' | 'performance') => points.map((p) => p[k]);
  const [c, a, f] = [axis('cost'), axis('accuracy'), axis('performance')];
  const min = (v: number[]) => Math.min(...v);
  const max = (v: number[]) => Math.max(...v);
  if (method === 'ratio-to-best') {
    const cMin = min(c),
      aMax = max(a),
      fMax = max(f);
    return points.map((p) => ({
      id: p.id,
      cost: cMin / p.cost,
      accuracy: aMax > 0 ? p.accuracy / aMax : 1,
      performance: fMax > 0 ? p.performance / fMax : 1,
    }));
  }
  const scale = (v: number, lo: number, hi: number, invert: boolean) => (hi === lo ? 1 : invert ? (hi - v) / (hi - lo) : (v - lo) / (hi - lo));
  return points.map((p) => ({
    id: p.id,
    cost: scale(p.cost, min(c), max(c), true),
    accuracy: scale(p.accuracy, min(a), max(a), false),
    performance: scale(p.performance, min(f), max(f), false),
  }));
}
