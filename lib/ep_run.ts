// `moecap run --ep N` under `mpirun -np N`: one preset layer with its experts placed over the
// ranks; every rank routes its share of the tokens and computes the rows its experts receive.
// Measured per pass and per rank: dispatch/compute/combine time, bytes, imbalance (slowest
// rank's expert compute over the mean) and tokens/s; the link calibrated in the same run.
// Rank 0 writes ep_results.json (whole or not at all); the other ranks only compute.
import * as fs from 'fs';
import * as path from 'path';
import { UsageError } from './errors';
import {
  calibrateLink,
  createEpLayer,
  finalizeEp,
  imbalance,
  initEp,
  rankFirstToken,
  type EpPlacementKind,
  type EpRankStats,
  type LinkCalibration,
} from './ep';
import { findPreset, presetLayerOptions } from './cap/presets';
import { naturalTokens, parseTrace } from './cap/routing';
import type { DType, MoeLayerOptions } from './moe_layer';

export interface EpRunPlan {
  ranks: number;
  placement: EpPlacementKind;
  redundant: number;
  preset: string;
  phase: 'prefill' | 'decode';
  batch: number;
  seqLen: number;
  dtype: string;
  threads: number | null;
  seed: number;
  repeats: number;
  warmup: number;
  trace: string | null;
}

export interface EpRankSummary {
  rank: number;
  experts: number[];
  dispatchNs: number;
  computeNs: number;
  combineNs: number;
  totalNs: number;
  bytesSent: number;
  bytesReceived: number;
  rowsSent: number;
  rowsReceived: number;
}

export interface EpResults {
  schema: 'moecap-ep/1';
  ranks: number;
  placement: EpPlacementKind;
  redundant: number;
  preset: string;
  phase: string;
  tokens: number;
  dtype: string;
  mpi: { library: string; built: string; runtime: string };
  link: LinkCalibration;
  /** Per rank, means over the timed passes. */
  perRank: EpRankSummary[];
  /** Means over passes: the slowest rank's pass time, dispatch and combine share of it, imbalance. */
  passNs: number;
  dispatchShare: number;
  combineShare: number;
  imbalance: number;
  tokensPerSecond: number;
}

const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / Math.max(1, a.length);

function layerOptions(plan: EpRunPlan): MoeLayerOptions {
  return presetLayerOptions(findPreset(plan.preset), { dtype: plan.dtype as DType, seed: plan.seed, threads: plan.threads });
}

// Per-expert loads for balanced / redundant placement: the routing trace's first layer, else this
// run's own input routed by the layer's router (every rank gets the same counts).
async function expertLoads(plan: EpRunPlan, opts: MoeLayerOptions, x: Float32Array): Promise<number[] | undefined> {
  if (plan.placement === 'contiguous' && plan.redundant === 0) return undefined;
  const loads = new Array<number>(opts.experts).fill(0);
  if (plan.trace) {
    for (const e of parseTrace(plan.trace, opts.experts, opts.topK).layers[0] ?? []) loads[e]++;
    return loads;
  }
  const probe = await createEpLayer(opts, { ranks: plan.ranks });
  for (const e of await probe.route(x)) loads[e]++;
  return loads;
}

function summarise(
  plan: EpRunPlan,
  T: number,
  world: ReturnType<typeof initEp>,
  link: LinkCalibration,
  perRankPasses: EpRankStats[][],
  experts: number[][],
): EpResults {
  const P = plan.ranks,
    passes = perRankPasses[0].length;
  const passNs: number[] = [],
    dispatch: number[] = [],
    combine: number[] = [],
    imb: number[] = [];
  for (let i = 0; i < passes; i++) {
    const slowest = Math.max(...perRankPasses.map((r) => r[i].totalNs));
    passNs.push(slowest);
    dispatch.push(mean(perRankPasses.map((r) => r[i].dispatchNs)) / slowest);
    combine.push(mean(perRankPasses.map((r) => r[i].combineNs)) / slowest);
    imb.push(imbalance(perRankPasses[0][i].rankComputeNs));
  }
  const perRank: EpRankSummary[] = perRankPasses.map((r, rank) => ({
    rank,
    experts: experts[rank],
    dispatchNs: mean(r.map((s) => s.dispatchNs)),
    computeNs: mean(r.map((s) => s.computeNs)),
    combineNs: mean(r.map((s) => s.combineNs)),
    totalNs: mean(r.map((s) => s.totalNs)),
    bytesSent: mean(r.map((s) => s.bytesSent)),
    bytesReceived: mean(r.map((s) => s.bytesReceived)),
    rowsSent: mean(r.map((s) => s.rowsSent)),
    rowsReceived: mean(r.map((s) => s.rowsReceived)),
  }));
  return {
    schema: 'moecap-ep/1',
    ranks: P,
    placement: plan.placement,
    redundant: plan.redundant,
    preset: plan.preset,
    phase: plan.phase,
    tokens: T,
    dtype: plan.dtype,
    mpi: { library: world.library, built: world.builtMpi, runtime: world.runtimeMpi },
    link,
    perRank,
    passNs: mean(passNs),
    dispatchShare: mean(dispatch),
    combineShare: mean(combine),
    imbalance: mean(imb),
    tokensPerSecond: T / (mean(passNs) / 1e9),
  };
}

export function renderEp(r: EpResults): string {
  const ms = (ns: number) => (ns / 1e6).toFixed(3);
  const lines = [
    `expert parallelism: ${r.ranks} ranks, ${r.placement}${r.redundant ? ` + ${r.redundant} replicas` : ''}, ${r.preset} ${r.phase} T=${r.tokens} ${r.dtype} (${r.mpi.runtime})`,
    `link: latency ${(r.link.latencySeconds * 1e6).toFixed(2)} µs, bandwidth ${(r.link.bandwidthBytesPerSecond / 1e9).toFixed(2)} GB/s (ping-pong 4 MiB)`,
    'rank  experts  dispatch ms  compute ms  combine ms  total ms  sent KiB  recv KiB',
    ...r.perRank.map(
      (p) =>
        `${String(p.rank).padStart(4)}  ${String(p.experts.length).padStart(7)}  ${ms(p.dispatchNs).padStart(11)}  ${ms(p.computeNs).padStart(10)}  ${ms(p.combineNs).padStart(10)}  ${ms(p.totalNs).padStart(8)}  ${(p.bytesSent / 1024).toFixed(1).padStart(8)}  ${(p.bytesReceived / 1024).toFixed(1).padStart(8)}`,
    ),
    `pass ${ms(r.passNs)} ms (slowest rank), dispatch ${(100 * r.dispatchShare).toFixed(1)}%, combine ${(100 * r.combineShare).toFixed(1)}%, imbalance ${r.imbalance.toFixed(2)}, ${r.tokensPerSecond.toFixed(0)} tokens/s`,
  ];
  return lines.join('\n') + '\n';
}

/** One rank's part of the run; rank 0 writes `${outDir}/ep_results.json` and returns the results. */
export async function runEp(plan: EpRunPlan, outDir: string): Promise<EpResults | null> {
  const world = initEp(plan.ranks);
  const opts = layerOptions(plan);
  const H = opts.hidden;
  const T = plan.phase === 'prefill' ? plan.batch * plan.seqLen : plan.batch;
  const x = naturalTokens(T, H, plan.seed);
  const loads = await expertLoads(plan, opts, x);
  const layer = await createEpLayer(opts, { ranks: plan.ranks, placement: plan.placement, redundant: plan.redundant, loads });
  const link = await calibrateLink();
  const t0 = rankFirstToken(T, plan.ranks, world.rank),
    t1 = rankFirstToken(T, plan.ranks, world.rank + 1);
  const mine = x.subarray(t0 * H, t1 * H);
  const passes: EpRankStats[] = [];
  for (let i = 0; i < plan.warmup + plan.repeats; i++) {
    const r = await layer.forward(mine);
    if (i >= plan.warmup) passes.push(r.stats);
  }
  const all = await layer.gather(Buffer.from(JSON.stringify({ passes, experts: Array.from(layer.experts) })));
  let results: EpResults | null = null;
  if (world.rank === 0) {
    const parsed = all.map((b) => JSON.parse(Buffer.from(b).toString()) as { passes: EpRankStats[]; experts: number[] });
    results = summarise(
      plan,
      T,
      world,
      link,
      parsed.map((p) => p.passes),
      parsed.map((p) => p.experts),
    );
    fs.mkdirSync(outDir, { recursive: true });
    const file = path.join(outDir, 'ep_results.json');
    fs.writeFileSync(file + '.tmp', JSON.stringify(results, null, 2) + '\n');
    fs.renameSync(file + '.tmp', file);
  }
  finalizeEp();
  return results;
}

/** The `moecap run` options → plan, refusing what expert parallelism does not do yet. */
export function epPlanFromArgs(o: Record<string, unknown>, given: ReadonlySet<string>): EpRunPlan {
  const ranks = o.ep as number;
  if (!Number.isInteger(ranks) || ranks < 1) throw new UsageError(`--ep must be an integer >= 1 (the ranks mpirun starts), got ${String(o.ep)}`);
  const placement = o['ep-placement'] as string;
  if (placement !== 'contiguous' && placement !== 'balanced') throw new UsageError(`--ep-placement must be contiguous or balanced, got '${placement}'`);
  const redundant = o['ep-redundant'] as number;
  if (!Number.isInteger(redundant) || redundant < 0) throw new UsageError(`--ep-redundant must be an integer >= 0, got ${String(redundant)}`);
  for (const f of ['offload', 'capacity-factor', 'resume', 'skew', 'layers', 'report'])
    if (given.has(f)) throw new UsageError(`--${f} does not work with --ep yet`);
  const one = <T>(k: string): T => {
    const v = o[k] as T[] | undefined;
    if (Array.isArray(v) && v.length > 1 && given.has(k)) throw new UsageError(`--${k}: with --ep give one value, got ${v.join(',')}`);
    return (Array.isArray(v) ? v[0] : v) as T;
  };
  const phase = one<string>('phase');
  if (phase !== 'prefill' && phase !== 'decode') throw new UsageError(`--phase must be prefill or decode, got '${phase}'`);
  const trace = o.trace === undefined ? null : path.resolve(String(o.trace));
  return {
    ranks,
    placement,
    redundant,
    preset: one<string>('preset'),
    phase,
    batch: one<number>('batch'),
    seqLen: one<number>('seq'),
    dtype: one<string>('dtype'),
    threads: one<number | undefined>('threads') ?? null,
    seed: o.seed as number,
    repeats: o.repeats as number,
    warmup: o.warmup as number,
    trace,
  };
}
