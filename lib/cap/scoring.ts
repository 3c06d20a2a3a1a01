// Scoring of one measured CAP config: S-MBU and S-MFU against the peaks, the offload figures and
// the cost per million tokens. Pure functions of measured figures; nothing here measures.
import { computePeakFor, type PeakSource } from './hardware';
import { smbu, smfu } from './metrics';
import { costPerMillionTokens, cpuComponents, powerFrom, type PriceTable } from './cost';
import { raplEnergy } from './energy';
import type { OffloadTotals } from './measure';
import type { ConfigResult, Counter, Unavailable } from './results';

/** S-MBU (mean bytes a sample must read / median sample time / peak bandwidth) and S-MFU (tokens/s · FLOPs per token / peak). */
export function utilisation(
  peaks: PeakSource | Unavailable,
  a: { dtype: string; meanBytes: number; medianSeconds: number; tokensPerSecond: number; flopsPerToken: number },
): { smbu: ConfigResult['smbu']; smfu: ConfigResult['smfu'] } {
  if ('available' in peaks) return { smbu: { available: false, reason: peaks.reason }, smfu: { available: false, reason: peaks.reason } };
  const label = `${peaks.kind}: ${peaks.name} (${peaks.source})`;
  const smbuR: ConfigResult['smbu'] = peaks.memoryBandwidth
    ? { value: smbu(a.meanBytes, a.medianSeconds, peaks.memoryBandwidth), bytesPerSample: a.meanBytes, peakBandwidth: peaks.memoryBandwidth, peaks: label }
    : { available: false, reason: `${peaks.name} gives no memory bandwidth` };
  const cp = computePeakFor(a.dtype, peaks);
  const smfuR: ConfigResult['smfu'] = cp.value
    ? { value: smfu(a.tokensPerSecond, a.flopsPerToken, cp.value), flopsPerToken: a.flopsPerToken, peakFlops: cp.value, peakDtype: cp.which, peaks: label }
    : { available: false, reason: `${peaks.name} gives no ${cp.which} peak` };
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
    bytesMoved, tierBandwidth,
    ioBandwidth: t.ioNs > 0 ? t.bytes / (t.ioNs * 1e-9) : null,
    hitRate: lookups > 0 ? t.hits / lookups : null,
    stallMs: t.stallNs / n / 1e6,
    cacheExperts: a.cacheExperts,
    residentFraction: a.residentFraction,
    policy: a.policy, coldCache: a.coldCache,
    peakBandwidth: peak,
  };
}

/** Cost per million tokens of a CPU config: its share of the machine, and energy (RAPL when counted, else the TDP model). */
export function configCost(
  prices: PriceTable,
  a: { cores: number; memoryGB: number; counters: Counter[] | Unavailable; wallSeconds: number; tokensPerSecond: number },
): ConfigResult['cost'] {
  const components = cpuComponents(prices, a.cores, a.memoryGB);
  const energy = Array.isArray(a.counters) ? raplEnergy(a.counters) : null;
  const power = powerFrom(components, energy?.joules ?? null, a.wallSeconds, energy?.source);
  return costPerMillionTokens({
    components, amortisationYears: prices.amortisationYears, utilisation: prices.utilisation,
    usdPerKWh: prices.usdPerKWh, power, secondsPer1MTokens: 1e6 / a.tokensPerSecond,
  });
}
