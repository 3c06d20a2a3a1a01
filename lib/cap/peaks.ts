// Which peaks a run divides by: a named datasheet (--hardware NAME), or a profile measured by
// `moecap calibrate` (--hardware-profile FILE, MOECAP_HARDWARE_PROFILE, or this machine's profile in
// the cache folder, hardware.ts defaultProfilePath). Without any,
// S-MBU and S-MFU are reported unavailable with the reason — never computed against a guess.
import { PlanError } from '../errors';
import * as fs from 'fs';
import * as os from 'os';
import { defaultProfilePath, machineKey, findDatasheet, peaksFromDatasheet, peaksFromProfile, type CpuMeasuredProfile, type PeakSource } from './hardware';
import type { Unavailable } from './results';

export function resolvePeaks(hardware: string | null, profileFile: string | null): PeakSource | Unavailable {
  if (hardware) return peaksFromDatasheet(findDatasheet(hardware));
  const cached = defaultProfilePath(machineKey(os.cpus()[0]?.model ?? 'unknown', os.cpus().length, os.totalmem()));
  const file = profileFile ?? process.env.MOECAP_HARDWARE_PROFILE ?? (fs.existsSync(cached) ? cached : null);
  if (!file)
    return { available: false, reason: `no peaks: no measured hardware profile (run \`moecap calibrate\` to create ${cached}, or pass --hardware-profile FILE) and no --hardware NAME` };
  let p: CpuMeasuredProfile;
  try {
    p = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new PlanError(`cannot read hardware profile '${file}': ${(e as Error).message}`);
  }
  if (p?.kind !== 'cpu-measured' || typeof p.readBandwidth?.value !== 'number' || typeof p.peakFlops !== 'object')
    throw new PlanError(`hardware profile '${file}' is not a cpu-measured profile (kind, readBandwidth.value, peakFlops)`);
  return peaksFromProfile(p);
}
