// Scoring of one measured CAP config: S-MBU and S-MFU against the peaks, the offload figures and
// the cost per million tokens. Pure functions of measured figures; nothing here measures.
import { computePeakFor, type PeakSource } from './hardware';
import { smbu, smfu } from './metrics';
import { costPerMillionTokens, powerFrom, type PriceTable } from './cost';
import { cpuBillOfMaterials, gpuBillOfMaterials, type MemoryNeed } from './bill_of_materials';
import { likelyCauseAbove1 } from './ceilings';
import { nvmlEnergy, raplEnergy } from './energy';
import type { OffloadTotals } from './measure';
import type { ConfigResult, Counter, Unavailable } from './results';

/**
 * Read bandwidth measured right before and after a config (B/s); `value` is the higher of the two:
 * both are lower bounds of what the memory gave around the config (other work only slows a window).
 */
export interface BandwidthNow {
  before: number;
  after: number;
  value: number;
}

export function bandwidthNow(before: number, after: number): BandwidthNow {
  return { before, after, value: Math.max(before, after) };
}

/**
 * S-MBU (mean bytes a sample must read / median sample time / bandwidth) and S-MFU (tokens/s ·
 * FLOPs per token / peak). With a measured profile and the bandwidth measured around the config,
 * S-MBU is against that bandwidth and the profile's figure is kept as `calibrated` for comparison.
 * A value above 1 carries `above1`, the likely cause.
 */
export function utilisation(
  peaks: PeakSource | Unavailable,
  a: {
    dtype: string;
    meanBytes: number;
    medianSeconds: number;
    tokensPerSecond: number;
    flopsPerToken: number;
    bandwidthNow?: BandwidthNow | null;
    projected?: boolean;
    workingSetBytes?: number;
  },
): { smbu: ConfigResult['smbu']; smfu: ConfigResult['smfu'] } {
  if ('available' in peaks) return { smbu: { available: false, reason: peaks.reason }, smfu: { available: false, reason: peaks.reason } };
  const label = `${peaks.kind}: ${peaks.name} (${peaks.source})`;
  const now = peaks.kind === 'measured' && !a.projected ? (a.bandwidthNow ?? null) : null;
  let smbuR: ConfigResult['smbu'];
  if (now && now.value > 0) {
    const v = smbu(a.meanBytes, a.medianSeconds, now.value);
    smbuR = {
      value: v,
      bytesPerSample: a.meanBytes,
      peakBandwidth: now.value,
      peaks: `read bandwidth measured around this config (best of 15 windows: ${(now.before / 1e9).toFixed(1)} GB/s before, ${(now.after / 1e9).toFixed(1)} after)`,
      bandwidthNow: { before: now.before, after: now.after },
      ...(peaks.memoryBandwidth
        ? { calibrated: { value: smbu(a.meanBytes, a.medianSeconds, peaks.memoryBandwidth), peakBandwidth: peaks.memoryBandwidth, peaks: label } }
        : {}),
      ...(v > 1 ? { above1: likelyCauseAbove1('S-MBU', { bandwidthBefore: now.before, bandwidthAfter: now.after, workingSetBytes: a.workingSetBytes }) } : {}),
    };
  } else if (peaks.memoryBandwidth) {
    const v = smbu(a.meanBytes, a.medianSeconds, peaks.memoryBandwidth);
    smbuR = {
      value: v,
      bytesPerSample: a.meanBytes,
      peakBandwidth: peaks.memoryBandwidth,
      peaks: label,
      ...(v > 1 ? { above1: likelyCauseAbove1('S-MBU', { workingSetBytes: a.workingSetBytes, projected: a.projected }) } : {}),
    };
  } else smbuR = { available: false, reason: `${peaks.name} gives no memory bandwidth` };
  const cp = computePeakFor(a.dtype, peaks);
  let smfuR: ConfigResult['smfu'];
  if (cp.value) {
    const v = smfu(a.tokensPerSecond, a.flopsPerToken, cp.value);
    const detail = peaks.detail?.[cp.which as 'f32' | 'bf16' | 'int8'];
    smfuR = {
      value: v,
      flopsPerToken: a.flopsPerToken,
      peakFlops: cp.value,
      peakDtype: cp.which,
      peaks: label,
      ...(detail ? { peakSamples: detail.samples, peakStatistic: detail.statistic } : {}),
      ...(v > 1 ? { above1: likelyCauseAbove1('S-MFU', { peakSpread: detail?.spread ?? null, projected: a.projected }) } : {}),
    };
  } else smfuR = { available: false, reason: `${peaks.name} gives no ${cp.which} peak` };
  return { smbu: smbuR, smfu: smfuR };
}

/**
 * Offload figures over the timed samples (means per sample; utilisation against the measured cold
 * read bandwidth of the offload folder, from `moecap calibrate`).
 */
export function offloadFigures(
  peaks: PeakSource | Unavailable,
  a: { residentFraction: number; samples: number; medianSeconds: number; totals: OffloadTotals; cacheExperts: number; policy: string; coldCache: boolean },
): ConfigResult['offload'] {
  if (a.residentFraction >= 1) return { available: false, reason: 'all experts resident (no --offload)' };
  const { totals: t } = a;
  const n = a.samples;
  const bytesMoved = t.bytes / n;
  const tierBandwidth = bytesMoved / a.medianSeconds;
  const peak = 'available' in peaks ? null : peaks.offloadBandwidth;
  const lookups = t.hits + t.misses;
  return {
    value: peak ? tierBandwidth / peak : null,
    ...(peak ? {} : { valueReason: 'no measured offload-folder read bandwidth (run `moecap calibrate`)' }),
    bytesMoved,
    tierBandwidth,
    ioBandwidth: t.ioNs > 0 ? t.bytes / (t.ioNs * 1e-9) : null,
    hitRate: lookups > 0 ? t.hits / lookups : null,
    stallMs: t.stallNs / n / 1e6,
    cacheExperts: a.cacheExperts,
    residentFraction: a.residentFraction,
    policy: a.policy,
    coldCache: a.coldCache,
    peakBandwidth: peak,
  };
}

/** Where a configuration ran, for its bill of materials. */
export type CostDevice = { kind: 'cpu'; cores: number } | { kind: 'gpu'; gpu: string; gpuMemoryBytes: number };

/**
 * Cost per million tokens of a config: the hardware it needs (bill_of_materials.ts) and energy
 * (RAPL/NVML when counted, else the components' TDP-style figures).
 */
export function configCost(
  prices: PriceTable,
  a: { device: CostDevice; need: MemoryNeed; counters: Counter[] | Unavailable; wallSeconds: number; tokensPerSecond: number },
): ConfigResult['cost'] {
  const components =
    a.device.kind === 'cpu'
      ? cpuBillOfMaterials(prices, { cores: a.device.cores, need: a.need })
      : gpuBillOfMaterials(prices, { gpu: a.device.gpu, gpuMemoryBytes: a.device.gpuMemoryBytes, need: a.need });
  const energy = Array.isArray(a.counters) ? (a.device.kind === 'gpu' ? nvmlEnergy(a.counters) : raplEnergy(a.counters)) : null;
  const power = powerFrom(components, energy?.joules ?? null, a.wallSeconds, energy?.source);
  return costPerMillionTokens({
    components,
    amortisationYears: prices.amortisationYears,
    utilisation: prices.utilisation,
    usdPerKWh: prices.usdPerKWh,
    power,
    secondsPer1MTokens: 1e6 / a.tokensPerSecond,
  });
}
