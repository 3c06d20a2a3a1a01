// The expert-parallel charts: communication (dispatch and combine) time and share of the pass,
// load imbalance, and each rank's S-MBU / S-MFU, against batch size (one point per ep_results.json),
// drawn with the sweep charts' panels so both pages look and read alike.
import type { TopLevelSpec } from 'vega-lite';
import type { EpResults, EpRankSummary } from '../../ep_run';
import { CHART_CONFIG } from './common';
import { panel, SCHEMA, utilisationPanel, type Row } from './sweep_specs';

/** The x axis: tokens per pass, which is the batch size of a decode run. */
export function epAxisTitle(runs: readonly EpResults[]): string {
  return runs.every((r) => r.phase === 'decode') ? 'batch size (tokens per pass)' : 'tokens per pass (decode: batch size; prefill: batch × seq)';
}

const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / Math.max(1, a.length);

/** Mean over ranks of a phase's time per pass (ms), as the file's per-rank means give it. */
export function meanPhaseMs(r: EpResults, phase: 'dispatch' | 'combine'): number {
  return mean(r.perRank.map((p: EpRankSummary) => (phase === 'dispatch' ? p.dispatchNs : p.combineNs))) / 1e6;
}

export function epCommSpec(runs: readonly EpResults[]): TopLevelSpec {
  const values: Row[] = runs.flatMap((r) =>
    (['dispatch', 'combine'] as const).map((phase) => {
      const ms = meanPhaseMs(r, phase);
      const share = phase === 'dispatch' ? r.dispatchShare : r.combineShare;
      return {
        series: phase,
        batch: r.tokens,
        timeMs: ms,
        share,
        description: `T=${r.tokens}: ${phase} ${ms.toPrecision(3)} ms per pass (mean over ranks), ${(100 * share).toPrecision(3)}% of the pass`,
      };
    }),
  );
  const x = epAxisTitle(runs);
  return {
    $schema: SCHEMA,
    config: CHART_CONFIG,
    hconcat: [
      panel(values, 'timeMs', 'Communication time vs batch', 'time per pass (ms, mean over ranks)', undefined, 'batch', x, 'phase'),
      panel(values, 'share', 'Communication share of the pass vs batch', 'share of the slowest rank’s pass', '.0%', 'batch', x, 'phase'),
    ],
  } as unknown as TopLevelSpec;
}

export function epImbalanceSpec(runs: readonly EpResults[]): TopLevelSpec {
  const values: Row[] = runs.map((r) => ({
    series: 'slowest rank / mean',
    batch: r.tokens,
    imbalance: r.imbalance,
    description: `T=${r.tokens}: imbalance ${r.imbalance.toPrecision(3)} (slowest rank's expert compute / mean)`,
  }));
  return {
    $schema: SCHEMA,
    config: CHART_CONFIG,
    ...panel(values, 'imbalance', 'Load imbalance vs batch', 'expert compute: slowest rank / mean', undefined, 'batch', epAxisTitle(runs), 'imbalance'),
  } as unknown as TopLevelSpec;
}

const value = (u: EpRankSummary['smbu'] | EpRankSummary['smfu']) => ('available' in u ? null : u.value);
const shown = (u: EpRankSummary['smbu'] | EpRankSummary['smfu']) => ('available' in u ? `unavailable (${u.reason})` : `${(100 * u.value).toPrecision(3)}%`);
const cause = (u: EpRankSummary['smbu'] | EpRankSummary['smfu']) => ('available' in u ? null : (u.above1 ?? 'above the ceiling'));

/** Null when no rank of any run has S-MBU or S-MFU (GPU ranks, no ceilings). */
export function epUtilisationSpec(runs: readonly EpResults[]): TopLevelSpec | null {
  const values: Row[] = runs.flatMap((r) =>
    r.perRank.map((p) => ({
      series: `rank ${p.rank}`,
      batch: r.tokens,
      smbu: value(p.smbu),
      smfu: value(p.smfu),
      smbuAbove: `T=${r.tokens} rank ${p.rank}: S-MBU above 100%: ${cause(p.smbu)}`,
      smfuAbove: `T=${r.tokens} rank ${p.rank}: S-MFU above 100%: ${cause(p.smfu)}`,
      description: `T=${r.tokens} rank ${p.rank}: S-MBU ${shown(p.smbu)}, S-MFU ${shown(p.smfu)}`,
    })),
  );
  if (values.every((v) => v.smbu === null && v.smfu === null)) return null;
  const x = epAxisTitle(runs);
  return {
    $schema: SCHEMA,
    config: CHART_CONFIG,
    hconcat: [utilisationPanel(values, 'smbu', 'S-MBU', 'rank', x), utilisationPanel(values, 'smfu', 'S-MFU', 'rank', x)],
  } as unknown as TopLevelSpec;
}
