// Pareto frontier of a sweep on the CAP axes: cost (lower is better), accuracy and performance
// (higher is better). A config is dominated when another is at least as good on all three axes and
// strictly better on one; each dominated config names one frontier config that dominates it.
import { MoecapRangeError } from '../errors';

export interface CapPoint {
  id: string;
  cost: number;
  accuracy: number;
  performance: number;
}

export interface ParetoResult {
  frontier: string[];
  /** id → the id of a frontier config that dominates it (first in input order). */
  dominatedBy: Record<string, string>;
}

export function dominates(a: CapPoint, b: CapPoint): boolean {
  const noWorse = a.cost <= b.cost && a.accuracy >= b.accuracy && a.performance >= b.performance;
  const better = a.cost < b.cost || a.accuracy > b.accuracy || a.performance > b.performance;
  return noWorse && better;
}

export function paretoFrontier(points: readonly CapPoint[]): ParetoResult {
  const ids = new Set<string>();
  for (const p of points) {
    if (ids.has(p.id)) throw new MoecapRangeError('ERR_INVALID_ARGUMENT', `duplicate config id '${p.id}'`);
    ids.add(p.id);
    for (const k of ['cost', 'accuracy', 'performance'] as const)
      if (!Number.isFinite(p[k])) throw new MoecapRangeError('ERR_INVALID_ARGUMENT', `config '${p.id}': ${k} must be a finite number, got ${p[k]}`);
  }
  const frontierPts = points.filter((p) => !points.some((q) => q !== p && dominates(q, p)));
  const dominatedBy: Record<string, string> = {};
  for (const p of points) {
    if (frontierPts.includes(p)) continue;
    // Dominance is transitive and the set is finite, so some frontier point dominates p.
    dominatedBy[p.id] = frontierPts.find((f) => dominates(f, p))!.id;
  }
  return { frontier: frontierPts.map((p) => p.id), dominatedBy };
}
