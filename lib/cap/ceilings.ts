// Ceilings from many short windows on a noisy machine. A compute peak is a peak: other tenants
// and the scheduler can only slow a window down, never speed it up, so the figure kept is the best
// window, trusted once the best few agree ("top spread"). Memory bandwidth moves with other
// tenants, so it is kept as a distribution (p10/p50/p90 of the windows); runs compare each config
// with the bandwidth measured around it (runner) and keep this figure for comparison.
// Pure functions: nothing here measures.
import { percentile } from './metrics';
import type { CpuMeasuredProfile, MeasuredFigure } from './hardware';

/** Windows among the best whose agreement decides that a peak has been reached. */
export const TOP_WINDOWS = 3;
/** A compute peak whose best windows differ by more than this is flagged (and calibration goes on). */
export const PEAK_SPREAD_LIMIT = 0.05;
/** A bandwidth distribution whose (p90 − p10)/p50 is above this is flagged as unsteady. */
export const BANDWIDTH_SPREAD_LIMIT = 0.3;
/** A profile older than this is flagged: machines, kernels and neighbours change. */
export const PROFILE_AGE_LIMIT_DAYS = 30;

/** (best − k-th best) / best over the windows; 1 when there are fewer than k windows. */
export function topSpread(samples: readonly number[], k = TOP_WINDOWS): number {
  if (samples.length < k) return 1;
  const s = [...samples].sort((a, b) => b - a);
  return s[0] > 0 ? (s[0] - s[k - 1]) / s[0] : 1;
}

/** A compute peak: the best window; `spread` is the top spread. */
export function peakFigure(samples: readonly number[], unit: string): MeasuredFigure {
  const sorted = [...samples].sort((a, b) => a - b);
  const best = sorted[sorted.length - 1];
  return {
    value: best,
    unit,
    repeats: samples.length,
    spread: topSpread(samples),
    min: sorted[0],
    max: best,
    statistic: `best of ${samples.length} windows (the best ${Math.min(TOP_WINDOWS, samples.length)} within ${(100 * topSpread(samples)).toFixed(1)}%)`,
  };
}

/** A bandwidth: the p90 of the windows as the ceiling, with p10/p50/p90; `spread` is (p90 − p10)/p50. */
export function bandwidthFigure(samples: readonly number[], unit: string): MeasuredFigure {
  const p10 = percentile(samples, 0.1),
    p50 = percentile(samples, 0.5),
    p90 = percentile(samples, 0.9);
  return {
    value: p90,
    unit,
    repeats: samples.length,
    spread: p50 > 0 ? (p90 - p10) / p50 : 1,
    min: samples.reduce((a, b) => Math.min(a, b), Infinity),
    max: samples.reduce((a, b) => Math.max(a, b), -Infinity),
    percentiles: { p10, p50, p90 },
    statistic: `p90 of ${samples.length} windows`,
  };
}

/** True when every compute unit's best windows agree within `limit`. */
export function peaksConverged(units: ReadonlyArray<readonly number[]>, limit = PEAK_SPREAD_LIMIT / 2): boolean {
  return units.every((s) => topSpread(s) <= limit);
}

/**
 * Orderings the ISA implies for the loops `moecap calibrate` times. On AVX-512 with VNNI and BF16
 * one 512-bit instruction does 64 int8 multiply-adds (vpdpbusd), 32 bf16 (vdpbf16ps) or 16 fp32
 * (vfmadd231ps) at the same issue rate, so int8 ≥ bf16 ≥ fp32 must hold; a profile that breaks it
 * was disturbed while it measured.
 */
export function orderingViolations(p: Pick<CpuMeasuredProfile, 'isa' | 'peakFlops'>): string[] {
  if (p.isa !== 'avx512') return [];
  const out: string[] = [];
  const { f32, bf16, int8 } = p.peakFlops;
  const g = (f: MeasuredFigure) => `${(f.value / 1e9).toFixed(0)} G`;
  if (int8 && bf16 && int8.value < bf16.value)
    out.push(`int8 dot peak ${g(int8)}OP/s is below the bf16 dot peak ${g(bf16)}FLOP/s, which cannot be on AVX-512 VNNI/BF16`);
  if (bf16 && f32 && bf16.value < f32.value)
    out.push(`bf16 dot peak ${g(bf16)}FLOP/s is below the fp32 FMA peak ${g(f32)}FLOP/s, which cannot be on AVX-512 BF16`);
  if (int8 && !bf16 && f32 && int8.value < f32.value)
    out.push(`int8 dot peak ${g(int8)}OP/s is below the fp32 FMA peak ${g(f32)}FLOP/s, which cannot be on AVX-512 VNNI`);
  return out;
}

export interface ProfileWarning {
  kind: 'spread' | 'age' | 'ordering' | 'quick' | 'missing';
  message: string;
}

/** Everything about a profile a reader should be told before trusting its ratios. */
export function profileWarnings(p: CpuMeasuredProfile, now: Date = new Date(), ageLimitDays = PROFILE_AGE_LIMIT_DAYS): ProfileWarning[] {
  const w: ProfileWarning[] = [];
  const compute: Array<[string, MeasuredFigure | undefined]> = [
    ['fp32 FMA', p.peakFlops.f32],
    ['bf16 dot', p.peakFlops.bf16],
    ['int8 dot', p.peakFlops.int8],
  ];
  for (const [name, f] of compute)
    if (f && f.spread > PEAK_SPREAD_LIMIT)
      w.push({
        kind: 'spread',
        message: `${name} peak: its best windows differ by ${(100 * f.spread).toFixed(0)}% (over ${(100 * PEAK_SPREAD_LIMIT).toFixed(0)}%): the machine was busy; run \`moecap calibrate --recalibrate\` when it is quieter`,
      });
  if (p.readBandwidth.spread > BANDWIDTH_SPREAD_LIMIT)
    w.push({
      kind: 'spread',
      message: `read bandwidth varies by ${(100 * p.readBandwidth.spread).toFixed(0)}% (p10–p90 over p50): S-MBU is computed against the bandwidth measured around each config`,
    });
  const ageDays = (now.getTime() - new Date(p.measuredAt).getTime()) / 86400e3;
  if (Number.isFinite(ageDays) && ageDays > ageLimitDays)
    w.push({ kind: 'age', message: `profile is ${Math.floor(ageDays)} days old (measured ${p.measuredAt}); run \`moecap calibrate --recalibrate\`` });
  for (const m of orderingViolations(p)) w.push({ kind: 'ordering', message: m });
  // Both x86 kernel sets have an int8 loop (AVX2's since 2026-12-05): a profile without that figure
  // was measured before, and S-MFU of int8/int4/mxfp4 runs stays unavailable until it is remeasured.
  if ((p.isa === 'avx2' || p.isa === 'avx512') && !p.peakFlops.int8)
    w.push({
      kind: 'missing',
      message: `profile has no int8 dot peak, which this version measures on ${p.isa}: S-MFU of int8/int4/mxfp4 runs is unavailable until \`moecap calibrate --recalibrate\``,
    });
  if (p.quick)
    w.push({
      kind: 'quick',
      message: `quick calibration (${p.budgetSeconds ?? '?'} s) taken by a first \`moecap run\`; \`moecap calibrate --recalibrate\` measures longer`,
    });
  return w;
}

/** Why a utilisation above 1 can happen, from what the run knows. */
export function likelyCauseAbove1(
  metric: 'S-MBU' | 'S-MFU',
  ctx: { bandwidthBefore?: number | null; bandwidthAfter?: number | null; peakSpread?: number | null; workingSetBytes?: number; projected?: boolean },
): string {
  if (ctx.projected) return "the peaks are another device's datasheet figures (a projection), not this machine's";
  if (metric === 'S-MBU') {
    const causes: string[] = [];
    const a = ctx.bandwidthBefore,
      b = ctx.bandwidthAfter;
    if (a && b && Math.abs(a - b) / Math.min(a, b) > 0.1)
      causes.push(`the read bandwidth moved during the config (${(a / 1e9).toFixed(1)} GB/s before, ${(b / 1e9).toFixed(1)} after)`);
    if (ctx.workingSetBytes !== undefined && ctx.workingSetBytes < 64 * 2 ** 20)
      causes.push(`part of each pass's ${(ctx.workingSetBytes / 2 ** 20).toFixed(0)} MiB was still in the caches from the previous pass`);
    if (causes.length === 0)
      causes.push('the bandwidth measured around the config was lower than during it (neighbours left), or some bytes came from the caches');
    return causes.join('; ');
  }
  if (ctx.peakSpread !== undefined && ctx.peakSpread !== null && ctx.peakSpread > PEAK_SPREAD_LIMIT)
    return `the compute peak is too low: its calibration windows were disturbed (best windows ${(100 * ctx.peakSpread).toFixed(0)}% apart)`;
  return 'the compute peak is too low (a calibration disturbed by other work) or the FLOP count overstates the work';
}
