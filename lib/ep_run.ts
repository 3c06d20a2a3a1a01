// `moecap run --ep N` under `mpirun -np N`: the preset's MoE layers (--layers L, each with its own
// seeded weights and input, run in sequence as the single-process run does) with their experts
// placed over the ranks; every rank routes its share of the tokens and computes the rows its
// experts receive, one exchange per layer. With --offload F each rank's experts stream from its own
// weights file through a cache of F of the experts it holds. Measured per pass, layer and rank:
// dispatch/compute/combine time, bytes, offload hits/misses/bytes read, imbalance (slowest rank's
// expert compute over the mean) and tokens/s; the link calibrated in the same run; each rank's
// S-MBU and S-MFU against the ceilings it measured itself in the same run (ep_utilisation.ts).
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
  type EpTransportKind,
  type LinkCalibration,
} from './ep';
import { findPreset, presetLayerOptions } from './cap/presets';
import { naturalTokens, readRoutingTrace, type RoutingTrace } from './cap/routing';
import { ceilingsNow } from './cap/calibrate';
import type { Unavailable } from './cap/results';
import {
  meanWork,
  passWork,
  rankCeiling,
  rankUtilisation,
  type LayerShape,
  type RankCeiling,
  type RankSmbu,
  type RankSmfu,
  type RankWork,
} from './ep_utilisation';
import type { CachePolicy, DType, MoeLayerOptions } from './moe_layer';

export interface EpRunPlan {
  ranks: number;
  placement: EpPlacementKind;
  redundant: number;
  preset: string;
  /** MoE layers run in sequence (one exchange each per pass). */
  layers: number;
  /** Share of each rank's experts resident (null: all resident, no offload). */
  residentFraction: number | null;
  offloadPolicy: CachePolicy;
  cold: boolean;
  phase: 'prefill' | 'decode';
  batch: number;
  seqLen: number;
  dtype: string;
  threads: number | null;
  seed: number;
  repeats: number;
  warmup: number;
  trace: string | null;
  /** Where each rank's experts compute: 'cuda' = its GPU (local rank modulo the node's devices). */
  backend: 'cpu' | 'cuda';
  transport: EpTransportKind;
  /** Expert capacity factor (0 = unlimited): drops decided over every rank's tokens, as one process would. */
  capacityFactor: number;
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
  /** Assignments of this rank's tokens dropped by the capacity factor. */
  dropped: number;
  /** Offloaded: this rank's cache over the timed passes (all layers); null when resident. */
  offload: { hits: number; misses: number; hitRate: number | null; bytesRead: number; loads: number } | null;
  /** Its expert compute per pass (means): time, rows, experts, bytes read, FLOPs. */
  compute: RankWork;
  /** Against this rank's own ceilings (EpResults.ceilings[rank]). */
  smbu: RankSmbu;
  smfu: RankSmfu;
}

/** One layer's figures (the whole run's have the same meaning, summed over its layers). */
export interface EpLayerSummary {
  layer: number;
  perRank: EpRankSummary[];
  passNs: number;
  dispatchShare: number;
  combineShare: number;
  imbalance: number;
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
  layers: number;
  /** Share of each rank's experts resident, or null (no offload). */
  residentFraction: number | null;
  /** Expert capacity factor (0 = unlimited). */
  capacityFactor: number;
  backend: 'cpu' | 'cuda';
  /** How the pass's rows crossed: 'mpi' or 'nccl' (--ep-transport; 'auto' is 'mpi'). */
  transport: 'mpi' | 'nccl';
  mpi: { library: string; built: string; runtime: string };
  link: LinkCalibration;
  /** [rank] the ceilings each rank measured in this run, every rank at once (GPU ranks: unavailable). */
  ceilings: Array<RankCeiling | Unavailable>;
  /** Per rank, means over the timed passes of the sum over layers (offload: totals); `experts`
   *  are the first layer's (perLayer has each layer's). */
  perRank: EpRankSummary[];
  /** Each layer's figures. */
  perLayer: EpLayerSummary[];
  /** Means over passes of the whole (all layers): the slowest rank's pass time, dispatch and
   *  combine share of it, imbalance (slowest rank's expert compute over the mean). */
  passNs: number;
  dispatchShare: number;
  combineShare: number;
  imbalance: number;
  tokensPerSecond: number;
}

const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / Math.max(1, a.length);

// Layer l's weights: the preset's, seeded seed + l (as the single-process run builds its layers).
function layerOptions(plan: EpRunPlan, l: number): MoeLayerOptions {
  const o = presetLayerOptions(findPreset(plan.preset), { dtype: plan.dtype as DType, seed: plan.seed + l, threads: plan.threads });
  if (plan.backend === 'cuda') o.backend = 'cuda';
  if (plan.capacityFactor > 0) o.capacityFactor = plan.capacityFactor;
  if (plan.residentFraction !== null && plan.residentFraction < 1)
    o.offload = { capacity: { fraction: plan.residentFraction }, policy: plan.offloadPolicy, prefetch: true, coldCache: plan.cold };
  return o;
}

// Whether placement needs per-expert loads (contiguous placement without copies does not).
const needsLoads = (plan: EpRunPlan) => plan.placement !== 'contiguous' || plan.redundant > 0;

// Per-expert loads for balanced / redundant placement: the routing trace's layer l (l mod its layers, as a run replays it), else this
// run's own input routed by the layer's router (every rank gets the same counts).
async function expertLoads(plan: EpRunPlan, trace: RoutingTrace | null, opts: MoeLayerOptions, x: Float32Array, l: number): Promise<number[] | undefined> {
  if (!needsLoads(plan)) return undefined;
  const loads = new Array<number>(opts.experts).fill(0);
  if (trace) {
    for (const e of trace.layers[l % trace.layers.length]) loads[e]++;
    return loads;
  }
  const probe = await createEpLayer({ ...opts, offload: undefined }, { ranks: plan.ranks });
  for (const e of await probe.route(x)) loads[e]++;
  return loads;
}

// One rank's passes over the layers: [pass][layer].
type RankPasses = EpRankStats[][];

const sum = (a: number[]) => a.reduce((s, v) => s + v, 0);

// What the per-rank utilisation needs beyond the counts: the layer's shape, the dtype, the ceilings.
interface UtilisationContext {
  shape: LayerShape;
  dtype: string;
  ceilings: Array<RankCeiling | Unavailable>;
}

function rankSummary(rank: number, experts: number[], passes: EpRankStats[][], u: UtilisationContext): EpRankSummary {
  // Per pass the sum over the given layers, then the mean over passes.
  const per = (k: 'dispatchNs' | 'computeNs' | 'combineNs' | 'totalNs' | 'bytesSent' | 'bytesReceived' | 'rowsSent' | 'rowsReceived' | 'dropped') =>
    mean(passes.map((p) => sum(p.map((s) => s[k]))));
  const all = passes.flat().filter((s) => s.offload);
  const hits = sum(all.map((s) => s.offload!.hits)),
    misses = sum(all.map((s) => s.offload!.misses));
  const compute = meanWork(passes.map((p) => passWork(p, u.shape)));
  return {
    rank,
    experts,
    dispatchNs: per('dispatchNs'),
    computeNs: per('computeNs'),
    combineNs: per('combineNs'),
    totalNs: per('totalNs'),
    bytesSent: per('bytesSent'),
    bytesReceived: per('bytesReceived'),
    rowsSent: per('rowsSent'),
    rowsReceived: per('rowsReceived'),
    dropped: per('dropped'),
    offload: all.length
      ? {
          hits,
          misses,
          hitRate: hits + misses > 0 ? hits / (hits + misses) : null,
          bytesRead: sum(all.map((s) => s.offload!.bytesRead)),
          loads: sum(all.map((s) => s.offload!.loads)),
        }
      : null,
    compute,
    ...rankUtilisation(compute, u.ceilings[rank], u.dtype),
  };
}

// The figures over the given layers of every rank's passes ([rank][pass][layer]).
// `experts`: [rank] the experts each rank holds (of the first of `layers`).
function figures(ranks: RankPasses[], experts: number[][], layers: number[], u: UtilisationContext) {
  const pick = (r: RankPasses) => r.map((p) => layers.map((l) => p[l]));
  const picked = ranks.map(pick);
  const passes = picked[0].length;
  const passNs: number[] = [],
    dispatch: number[] = [],
    combine: number[] = [],
    imb: number[] = [];
  for (let i = 0; i < passes; i++) {
    const total = (r: EpRankStats[][], k: 'totalNs' | 'dispatchNs' | 'combineNs') => sum(r[i].map((s) => s[k]));
    const slowest = Math.max(...picked.map((r) => total(r, 'totalNs')));
    passNs.push(slowest);
    dispatch.push(mean(picked.map((r) => total(r, 'dispatchNs'))) / slowest);
    combine.push(mean(picked.map((r) => total(r, 'combineNs'))) / slowest);
    // Every rank's expert compute of this pass, summed over the layers.
    const compute = picked[0][i][0].rankComputeNs.map((_, q) => sum(picked[0][i].map((s) => s.rankComputeNs[q])));
    imb.push(imbalance(compute));
  }
  return {
    perRank: picked.map((r, rank) => rankSummary(rank, experts[rank], r, u)),
    passNs: mean(passNs),
    dispatchShare: mean(dispatch),
    combineShare: mean(combine),
    imbalance: mean(imb),
  };
}

// experts: [rank][layer] the experts each rank holds.
function summarise(
  plan: EpRunPlan,
  T: number,
  world: ReturnType<typeof initEp>,
  link: LinkCalibration,
  ranks: RankPasses[],
  experts: number[][][],
  ceilings: Array<RankCeiling | Unavailable>,
): EpResults {
  const all = Array.from({ length: plan.layers }, (_, l) => l);
  const p = findPreset(plan.preset);
  const u: UtilisationContext = {
    shape: { hidden: p.hidden, intermediate: p.intermediate, sharedIntermediate: p.shared?.intermediate ?? 0 },
    dtype: plan.dtype,
    ceilings,
  };
  const whole = figures(
    ranks,
    experts.map((e) => e[0]),
    all,
    u,
  );
  return {
    schema: 'moecap-ep/1',
    ranks: plan.ranks,
    placement: plan.placement,
    redundant: plan.redundant,
    preset: plan.preset,
    phase: plan.phase,
    tokens: T,
    dtype: plan.dtype,
    layers: plan.layers,
    residentFraction: plan.residentFraction,
    capacityFactor: plan.capacityFactor,
    backend: plan.backend,
    transport: plan.transport === 'nccl' ? 'nccl' : 'mpi',
    mpi: { library: world.library, built: world.builtMpi, runtime: world.runtimeMpi },
    link,
    ceilings,
    perRank: whole.perRank,
    perLayer: all.map((l) => {
      const f = figures(
        ranks,
        experts.map((e) => e[l]),
        [l],
        u,
      );
      return { layer: l, ...f };
    }),
    passNs: whole.passNs,
    dispatchShare: whole.dispatchShare,
    combineShare: whole.combineShare,
    imbalance: whole.imbalance,
    tokensPerSecond: T / (whole.passNs / 1e9),
  };
}

const ratio = (u: RankSmbu | RankSmfu) => ('available' in u ? 'n/a' : u.value.toFixed(3));

// How a rank's S-MBU and S-MFU were computed: its bytes, FLOPs and time per pass, its ceilings.
function utilisationLine(p: EpRankSummary, c: RankCeiling | Unavailable): string {
  const w = p.compute;
  const work = `${(w.bytes.total / 2 ** 20).toFixed(2)} MiB (experts ${(w.bytes.experts / 2 ** 20).toFixed(2)}, shared ${(w.bytes.shared / 2 ** 20).toFixed(2)}, activations ${(w.bytes.activations / 2 ** 20).toFixed(2)}) and ${(w.flops / 1e9).toFixed(3)} GFLOP in ${(w.seconds * 1e3).toFixed(3)} ms per pass (${w.rows.toFixed(0)} routed rows over ${w.experts.toFixed(1)} experts, ${w.sharedRows.toFixed(0)} shared rows)`;
  if ('available' in c) return `${work}; S-MBU/S-MFU unavailable: ${c.reason}`;
  const peak =
    'available' in p.smfu ? p.smfu.reason : `${p.smfu.peakDtype} peak ${(p.smfu.peakFlops / 1e9).toFixed(1)} G${p.smfu.peakDtype === 'int8' ? 'OP' : 'FLOP'}/s`;
  return `${work}; its ceilings (measured in this run, ${c.threads} threads, every rank at once): read ${(Math.max(c.bandwidthBefore, c.bandwidthAfter) / 1e9).toFixed(1)} GB/s (${(c.bandwidthBefore / 1e9).toFixed(1)} before, ${(c.bandwidthAfter / 1e9).toFixed(1)} after), ${peak}`;
}

export function renderEp(r: EpResults): string {
  const ms = (ns: number) => (ns / 1e6).toFixed(3);
  const lines = [
    `expert parallelism: ${r.ranks} ranks, ${r.placement}${r.redundant ? ` + ${r.redundant} replicas` : ''}, ${r.preset} ${r.layers} layer${r.layers > 1 ? 's' : ''} ${r.phase} T=${r.tokens} ${r.dtype}${r.residentFraction !== null ? ` offload ${r.residentFraction}` : ''}${r.backend === 'cuda' ? ` on GPUs, rows over ${r.transport === 'nccl' ? 'NCCL' : 'MPI'}` : ''} (${r.mpi.runtime})`,
    `link: latency ${(r.link.latencySeconds * 1e6).toFixed(2)} µs, bandwidth ${(r.link.bandwidthBytesPerSecond / 1e9).toFixed(2)} GB/s (MPI ping-pong 4 MiB${r.transport === 'nccl' ? '; the rows went over NCCL, whose link is not calibrated: these are the MPI path between the hosts' : ''})`,
    'rank  experts  dispatch ms  compute ms  combine ms  total ms  sent KiB  recv KiB  S-MBU  S-MFU',
    ...r.perRank.map(
      (p) =>
        `${String(p.rank).padStart(4)}  ${String(p.experts.length).padStart(7)}  ${ms(p.dispatchNs).padStart(11)}  ${ms(p.computeNs).padStart(10)}  ${ms(p.combineNs).padStart(10)}  ${ms(p.totalNs).padStart(8)}  ${(p.bytesSent / 1024).toFixed(1).padStart(8)}  ${(p.bytesReceived / 1024).toFixed(1).padStart(8)}  ${ratio(p.smbu).padStart(5)}  ${ratio(p.smfu).padStart(5)}`,
    ),
    ...r.perRank.map((p) => `rank ${p.rank} utilisation: ${utilisationLine(p, r.ceilings[p.rank])}`),
    ...r.perRank.flatMap((p) =>
      (
        [
          ['S-MBU', p.smbu],
          ['S-MFU', p.smfu],
        ] as const
      ).flatMap(([name, u]) => ('above1' in u && u.above1 ? [`rank ${p.rank} ${name} above 1: likely ${u.above1}`] : [])),
    ),
    ...r.perRank
      .filter((p) => p.offload)
      .map(
        (p) =>
          `rank ${p.rank} offload: hit rate ${p.offload!.hitRate === null ? 'n/a' : (100 * p.offload!.hitRate).toFixed(1) + '%'} (${p.offload!.hits} hits, ${p.offload!.misses} misses), ${(p.offload!.bytesRead / 2 ** 20).toFixed(1)} MiB read`,
      ),
    ...(r.capacityFactor > 0
      ? [
          `capacity factor ${r.capacityFactor}: assignments dropped per pass (mean, all layers), by the token's rank: ${r.perRank.map((p) => `rank ${p.rank} ${p.dropped.toFixed(1)}`).join(', ')}`,
        ]
      : []),
    ...(r.layers > 1
      ? r.perLayer.map(
          (l) =>
            `layer ${l.layer}: pass ${ms(l.passNs)} ms, dispatch ${(100 * l.dispatchShare).toFixed(1)}%, combine ${(100 * l.combineShare).toFixed(1)}%, imbalance ${l.imbalance.toFixed(2)}`,
        )
      : []),
    `pass ${ms(r.passNs)} ms (slowest rank${r.layers > 1 ? ', all layers' : ''}), dispatch ${(100 * r.dispatchShare).toFixed(1)}%, combine ${(100 * r.combineShare).toFixed(1)}%, imbalance ${r.imbalance.toFixed(2)}, ${r.tokensPerSecond.toFixed(0)} tokens/s`,
  ];
  return lines.join('\n') + '\n';
}

/** One rank's part of the run; rank 0 writes `${outDir}/ep_results.json` and returns the results. */
export async function runEp(plan: EpRunPlan, outDir: string): Promise<EpResults | null> {
  const world = initEp(plan.ranks);
  const T = plan.phase === 'prefill' ? plan.batch * plan.seqLen : plan.batch;
  const layers: Awaited<ReturnType<typeof createEpLayer>>[] = [];
  const inputs: Float32Array[] = [];
  // The trace is read once (every layer has the preset's shape), by the core's reader.
  const shape = layerOptions(plan, 0);
  const trace = plan.trace && needsLoads(plan) ? await readRoutingTrace(plan.trace, shape.experts, shape.topK) : null;
  for (let l = 0; l < plan.layers; l++) {
    const opts = layerOptions(plan, l);
    const x = naturalTokens(T, opts.hidden, plan.seed + l);
    const loads = await expertLoads(plan, trace, opts, x, l);
    layers.push(await createEpLayer(opts, { ranks: plan.ranks, placement: plan.placement, redundant: plan.redundant, loads, transport: plan.transport }));
    const H = opts.hidden;
    inputs.push(x.subarray(rankFirstToken(T, plan.ranks, world.rank) * H, rankFirstToken(T, plan.ranks, world.rank + 1) * H));
  }
  const link = await calibrateLink();
  // Each rank's own ceilings, every rank measuring at once (a collective first), since the ranks'
  // expert compute also runs at once (each pass's exchanges line them up): on one machine a rank's
  // ceiling is the share of the memory and cores it gets while the others work too.
  const cpu = plan.backend === 'cpu';
  await layers[0].gather(new Uint8Array(0));
  const before = cpu ? await ceilingsNow({ threads: plan.threads ?? undefined }) : null;
  const passes: RankPasses = [];
  for (let i = 0; i < plan.warmup + plan.repeats; i++) {
    const pass: EpRankStats[] = [];
    for (let l = 0; l < plan.layers; l++) pass.push((await layers[l].forward(inputs[l])).stats);
    if (i >= plan.warmup) passes.push(pass);
  }
  await layers[0].gather(new Uint8Array(0));
  const ceiling: RankCeiling | Unavailable = before
    ? rankCeiling(before, await ceilingsNow({ threads: before.threads }))
    : { available: false, reason: 'GPU ranks: no GPU ceilings are measured in an expert-parallel run yet' };
  const all = await layers[0].gather(Buffer.from(JSON.stringify({ passes, ceiling, experts: layers.map((l) => Array.from(l.experts)) })));
  let results: EpResults | null = null;
  if (world.rank === 0) {
    const parsed = all.map((b) => JSON.parse(Buffer.from(b).toString()) as { passes: RankPasses; ceiling: RankCeiling | Unavailable; experts: number[][] });
    results = summarise(
      plan,
      T,
      world,
      link,
      parsed.map((p) => p.passes),
      parsed.map((p) => p.experts),
      parsed.map((p) => p.ceiling),
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
  for (const f of ['resume', 'skew']) if (given.has(f)) throw new UsageError(`--${f} does not work with --ep yet`);
  const one = <T>(k: string): T => {
    const v = o[k] as T[] | undefined;
    if (Array.isArray(v) && v.length > 1 && given.has(k)) throw new UsageError(`--${k}: with --ep give one value, got ${v.join(',')}`);
    return (Array.isArray(v) ? v[0] : v) as T;
  };
  const phase = one<string>('phase');
  if (phase !== 'prefill' && phase !== 'decode') throw new UsageError(`--phase must be prefill or decode, got '${phase}'`);
  const trace = o.trace === undefined ? null : path.resolve(String(o.trace));
  const layers = one<number>('layers');
  if (!Number.isInteger(layers) || layers < 1) throw new UsageError(`--layers must be an integer >= 1, got ${String(layers)}`);
  const fraction = one<number>('offload');
  if (!(fraction > 0 && fraction <= 1))
    throw new UsageError(`--offload must be in (0, 1] (the share of each rank's experts resident), got ${String(fraction)}`);
  const policy = o['offload-policy'] as string;
  if (!['lru', 'lfu', 'lfru', 'static'].includes(policy)) throw new UsageError(`--offload-policy must be lru, lfu, lfru or static, got '${policy}'`);
  const backend = (o.backend as string | undefined) ?? 'cpu';
  if (backend !== 'cpu' && backend !== 'cuda') throw new UsageError(`--backend with --ep must be cpu or cuda, got '${backend}'`);
  if (backend === 'cuda' && fraction < 1) throw new UsageError('--offload does not work with --ep --backend cuda yet');
  const capacityFactor = one<number>('capacity-factor') ?? 0;
  if (!(Number.isFinite(capacityFactor) && capacityFactor >= 0))
    throw new UsageError(`--capacity-factor must be >= 0 (0 = unlimited), got ${String(capacityFactor)}`);
  if (backend === 'cuda' && capacityFactor > 0) throw new UsageError('--capacity-factor does not work with --ep --backend cuda yet');
  const transport = (o['ep-transport'] as string | undefined) ?? 'mpi';
  if (transport !== 'mpi' && transport !== 'nccl' && transport !== 'auto') throw new UsageError(`--ep-transport must be mpi, nccl or auto, got '${transport}'`);
  if (transport === 'nccl' && backend !== 'cuda') throw new UsageError('--ep-transport nccl needs --backend cuda (GPU ranks)');
  return {
    ranks,
    placement,
    redundant,
    preset: one<string>('preset'),
    layers,
    residentFraction: fraction < 1 ? fraction : null,
    offloadPolicy: policy as CachePolicy,
    cold: Boolean(o.cold),
    phase,
    batch: one<number>('batch'),
    seqLen: one<number>('seq'),
    dtype: one<string>('dtype'),
    threads: one<number | undefined>('threads') ?? null,
    seed: o.seed as number,
    repeats: o.repeats as number,
    warmup: o.warmup as number,
    trace,
    backend,
    transport,
    capacityFactor,
  };
}
