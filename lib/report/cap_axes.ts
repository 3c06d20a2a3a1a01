// The CAP radar coordinates and the Pareto frontier for the report. The runner computes both and
// saves them in results.json; the report uses those when present. For a file without them, this
// file derives them from the file's own figures (no new measurement), and the page says so.
import type { ConfigView, ParetoView, ResultsView } from './results_view';

export interface RadarPoint {
  id: string;
  cost: number;
  accuracy: number;
  performance: number;
}

export interface RadarAxes {
  points: RadarPoint[];
  /** how the axes were normalised, shown under the chart */
  note: string;
  /** configs left off the radar and why */
  omitted: { id: string; reason: string }[];
}

/** The accuracy figure a config is compared on: the task accuracy when every config has one. */
export function accuracyFigure(view: ResultsView): { of: (c: ConfigView) => number; label: string } {
  const task = view.configs.every((c) => c.accuracy.task !== null);
  return task
    ? { of: (c) => c.accuracy.task!.value, label: `task accuracy (${view.configs[0].accuracy.task!.name})` }
    : { of: (c) => 1 - c.accuracy.relativeL2, label: '1 − relative L2 error vs fp64 (layer fidelity)' };
}

export function radarAxes(view: ResultsView): RadarAxes {
  if (view.configs.every((c) => c.radar !== null))
    return {
      points: view.configs.map((c) => ({ id: c.id, ...c.radar! })),
      note: view.radarNote ?? "axes normalised by the CAP runner (results.json 'radar')",
      omitted: [],
    };
  const omitted: { id: string; reason: string }[] = [];
  const usable = view.configs.filter((c) => {
    if (c.costPerMillionTokens === null || c.costPerMillionTokens <= 0) {
      omitted.push({ id: c.id, reason: 'no cost per 1M tokens in the results' });
      return false;
    }
    return true;
  });
  const acc = accuracyFigure(view);
  const maxTps = Math.max(...usable.map((c) => c.tokensPerSecond));
  const minCost = Math.min(...usable.map((c) => c.costPerMillionTokens!));
  const maxAcc = Math.max(...usable.map(acc.of));
  return {
    points: usable.map((c) => ({
      id: c.id,
      performance: c.tokensPerSecond / maxTps,
      cost: minCost / c.costPerMillionTokens!,
      accuracy: maxAcc > 0 ? Math.max(0, acc.of(c)) / maxAcc : 0,
    })),
    note:
      'results.json has no radar coordinates; the report normalised each axis to the best config of this file ' +
      `(1 = best): Performance = tokens/s ÷ max, Cost = min cost ÷ cost, Accuracy = ${acc.label} ÷ max`,
    omitted,
  };
}

export interface Frontier extends ParetoView {
  note: string;
}

/** The runner's frontier, or one computed here: within a phase, lower cost, higher accuracy and higher tokens/s. */
export function paretoFrontier(view: ResultsView): Frontier {
  if (view.pareto) return { ...view.pareto, note: "frontier from the CAP runner (results.json 'pareto')" };
  const acc = accuracyFigure(view);
  const cost = (c: ConfigView) => c.costPerMillionTokens ?? Infinity;
  const dominates = (a: ConfigView, b: ConfigView) =>
    a.phase === b.phase &&
    cost(a) <= cost(b) && acc.of(a) >= acc.of(b) && a.tokensPerSecond >= b.tokensPerSecond &&
    (cost(a) < cost(b) || acc.of(a) > acc.of(b) || a.tokensPerSecond > b.tokensPerSecond);
  const frontier: string[] = [];
  const dominatedBy: Record<string, string> = {};
  for (const c of view.configs) {
    const doms = view.configs.filter((d) => d !== c && dominates(d, c));
    if (doms.length === 0) frontier.push(c.id);
    else {
      // Name the strongest dominator: one that no other dominator of c dominates.
      const top = doms.find((d) => !doms.some((e) => e !== d && dominates(e, d))) ?? doms[0];
      dominatedBy[c.id] = top.id;
    }
  }
  return {
    frontier,
    dominatedBy,
    note:
      'results.json has no frontier; the report computed it from the file: a config is dominated when another of the same phase ' +
      `has no higher cost per 1M tokens, no lower ${acc.label} and no lower tokens/s, and is better in one of them`,
  };
}
