// The CAP radar coordinates and Pareto frontier the page draws: the runner's (results.json 'cap'),
// or, for a file without them (a run still in progress), the same computation done here with the
// runner's own radar.ts and pareto.ts on the file's figures, and the page says so.
import { radarScores } from '../cap/radar';
import { paretoFrontier } from '../cap/pareto';
import type { CapPhaseView, CapView, ResultsView } from './results_view';

export interface ReportCap extends CapView {
  /** 'runner': read from results.json; 'report': computed here from the file's figures */
  origin: 'runner' | 'report';
}

export function reportCap(view: ResultsView): ReportCap {
  if (view.cap) return { ...view.cap, origin: 'runner' };
  const phases: CapPhaseView[] = [];
  const task = view.configs.some((c) => c.task !== null);
  for (const phase of ['decode', 'prefill'] as const) {
    const cs = view.configs.filter((c) => c.phase === phase);
    if (cs.length === 0) continue;
    const points: CapPhaseView['points'] = [];
    const excluded: CapPhaseView['excluded'] = [];
    for (const c of cs) {
      const acc = c.task ? c.task.value : c.accuracy ? Math.max(0, 1 - c.accuracy.relativeL2) : null;
      if (c.costPerMillionTokens === null) excluded.push({ id: c.id, reason: 'no cost per 1M tokens in the results' });
      else if (acc === null) excluded.push({ id: c.id, reason: `no accuracy figure (${c.accuracyReason ?? 'none given'})` });
      else points.push({ id: c.id, cost: c.costPerMillionTokens, accuracy: acc, performance: c.tokensPerSecond });
    }
    const pareto = paretoFrontier(points);
    phases.push({ phase, points, radar: radarScores(points, 'ratio-to-best'), frontier: pareto.frontier, dominatedBy: pareto.dominatedBy, excluded });
  }
  return {
    origin: 'report',
    accuracyAxis: task ? 'task accuracy where given, else 1 − relative L2 vs fp64' : '1 − relative L2 error of the layer output vs the fp64 reference',
    performanceAxis: 'tokens/s',
    costAxis: 'USD per 1M tokens',
    normalisation:
      "results.json has no CAP summary (run not finished); computed by the report with the runner's ratio-to-best radar and Pareto code, per phase",
    phases,
  };
}
