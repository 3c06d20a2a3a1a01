// Energy of the timed region from the RAPL/powercap counters, without double counting:
// /sys/class/powercap lists package zones (intel-rapl:N) and their subzones (intel-rapl:N:M: core,
// uncore, dram). Core/uncore are inside their package; dram is not. A 'psys' zone (client parts)
// covers the whole SoC. So: psys alone when present, else packages + dram subzones.
// A GPU configuration's energy comes from NVML (nvmlEnergy); a CPU configuration's from RAPL.
import type { Counter } from './results';

export interface EnergyReading {
  joules: number;
  source: string;
}

export function raplEnergy(readings: Counter[]): EnergyReading | null {
  const zones = readings
    .filter((r): r is Extract<Counter, { available: true }> => r.available && r.unit === 'J' && r.name.startsWith('energy:'))
    .map((r) => {
      const m = /\((intel-rapl:[0-9:]+)\)\s*$/.exec(r.name);
      const label = r.name
        .slice('energy:'.length)
        .replace(/\s*\(.*\)\s*$/, '')
        .trim();
      return { r, zone: m ? m[1] : null, label };
    });
  if (zones.length === 0) return null;
  const psys = zones.filter((z) => z.label.startsWith('psys'));
  const depth = (z: string | null) => (z ? z.split(':').length - 1 : 1);
  const used = psys.length ? psys : zones.filter((z) => depth(z.zone) === 1 || z.label === 'dram');
  if (used.length === 0) return null;
  return {
    joules: used.reduce((a, z) => a + z.r.value, 0),
    source: used.map((z) => `${z.r.name} [${z.r.source}]`).join(' + '),
  };
}

/** GPU energy of the timed region from NVML (gpuEnergy:<i> counters, J), summed over the devices. */
export function nvmlEnergy(readings: Counter[]): EnergyReading | null {
  const gpus = readings.filter((r): r is Extract<Counter, { available: true }> => r.available && r.unit === 'J' && r.name.startsWith('gpuEnergy:'));
  if (gpus.length === 0) return null;
  return { joules: gpus.reduce((a, r) => a + r.value, 0), source: gpus.map((r) => `${r.name} [${r.source}]`).join(' + ') };
}

/** The GPU names NVML reports, from the counters' sources ("nvml:0 (NVIDIA H100 80GB HBM3)"). */
export function nvmlDeviceNames(readings: Counter[]): string[] {
  const names = new Map<string, string>();
  for (const r of readings) {
    if (!r.available) continue;
    const m = /^nvml:(\d+) \((.+)\)$/.exec(r.source);
    if (m) names.set(m[1], m[2]);
  }
  return [...names.entries()].sort((a, b) => Number(a[0]) - Number(b[0])).map(([, n]) => n);
}
