// Energy of the timed region from the RAPL/powercap counters, without double counting:
// /sys/class/powercap lists package zones (intel-rapl:N) and their subzones (intel-rapl:N:M: core,
// uncore, dram). Core/uncore are inside their package; dram is not. A 'psys' zone (client parts)
// covers the whole SoC. So: psys alone when present, else packages + dram subzones.
// GPU (NVML) energy is left out: the CPU backend's cost is the machine that ran the layer.
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
      const label = r.name.slice('energy:'.length).replace(/\s*\(.*\)\s*$/, '').trim();
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
