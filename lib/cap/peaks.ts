// Which peaks a run divides by: a named datasheet (--hardware NAME), or a profile measured by
// `moecap calibrate` (--hardware-profile FILE, MOECAP_HARDWARE_PROFILE, or this machine's profile in
// the cache folder, hardware.ts defaultProfilePath). Without any,
// S-MBU and S-MFU are reported unavailable with the reason — never computed against a guess.
import { PlanError } from '../errors';
import * as fs from 'fs';
import * as os from 'os';
import { defaultProfilePath, machineKey, findDatasheet, peaksFromDatasheet, peaksFromProfile, type CpuMeasuredProfile, type PeakSource } from './hardware';
import type { Unavailable } from './results';
import { readProfileFile } from './profile_file';

export function resolvePeaks(hardware: string | null, profileFile: string | null): PeakSource | Unavailable {
  if (hardware) return peaksFromDatasheet(findDatasheet(hardware));
  const cached = defaultProfilePath(machineKey(os.cpus()[0]?.model ?? 'unknown', os.cpus().length, os.totalmem()));
  const file = profileFile ?? process.env.MOECAP_HARDWARE_PROFILE ?? (fs.existsSync(cached) ? cached : null);
  if (!file)
    return {
      available: false,
      reason: `no peaks: no measured hardware profile (run \`moecap calibrate\` to create ${cached}, or pass --hardware-profile FILE) and no --hardware NAME`,
    };
  const p = readProfileOrReason(file, file === cached && profileFile === null && !process.env.MOECAP_HARDWARE_PROFILE);
  return 'available' in p ? p : peaksFromProfile(p);
}

/** The profile in `file` (profile_file.ts names a corrupt one). A corrupt cached profile, which the
 * user did not name, does not stop the run: its peaks are unavailable, with that reason. */
function readProfileOrReason(file: string, cached: boolean): CpuMeasuredProfile | Unavailable {
  try {
    const p = readProfileFile(file);
    if (!p) throw new PlanError(`hardware profile '${file}' does not exist`, 'ERR_IO');
    return p;
  } catch (e) {
    if (cached && (e as { code?: unknown }).code === 'ERR_CORRUPT_FILE') return { available: false, reason: `no peaks: ${(e as Error).message}` };
    throw e;
  }
}
