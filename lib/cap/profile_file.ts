// Reading and saving the calibration profile file: errors name the file and the way out
// (`moecap calibrate --recalibrate`), and a measured profile is never lost to a failed save.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { MoecapError } from '../errors';
import { writeJsonAtomic } from '../io/atomic_write';
import type { CpuMeasuredProfile } from './hardware';

const RECALIBRATE = 'run `moecap calibrate --recalibrate` to measure it again';

/** The profile in `file`, or null when there is none. A file that is not a complete cpu-measured
 * profile (truncated, edited, another format) is ERR_CORRUPT_FILE naming it. */
export function readProfileFile(file: string): CpuMeasuredProfile | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw new MoecapError('ERR_IO', `cannot read hardware profile '${file}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let p: CpuMeasuredProfile;
  try {
    p = JSON.parse(text);
  } catch (e) {
    throw new MoecapError(
      'ERR_CORRUPT_FILE',
      `hardware profile '${file}' is not valid JSON (truncated or corrupt: ${(e as Error).message}); ${RECALIBRATE}, or delete it`,
    );
  }
  const bad = profileProblem(p);
  if (bad) throw new MoecapError('ERR_CORRUPT_FILE', `hardware profile '${file}' is not a cpu-measured profile (${bad}); ${RECALIBRATE}`);
  return p;
}

const finite = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
/** A measured figure: a positive value; the fields printed with it (spread, repeats, statistic),
 * when present, of their own type (a nested array there once overflowed the stack when printed). */
const isFigure = (f: unknown) => {
  if (typeof f !== 'object' || f === null) return false;
  const x = f as { value?: unknown; spread?: unknown; repeats?: unknown; statistic?: unknown };
  return (
    finite(x.value) &&
    (x.value as number) > 0 &&
    (x.spread === undefined || finite(x.spread)) &&
    (x.repeats === undefined || Number.isInteger(x.repeats)) &&
    (x.statistic === undefined || typeof x.statistic === 'string')
  );
};

const FIGURE = 'must be a measured figure: a positive value, and a number for spread, an integer for repeats, a string for statistic';

/** What is wrong with the fields runs read from a profile (peaks.ts, hardware.ts), or null. */
function profileProblem(p: CpuMeasuredProfile): string | null {
  if (typeof p !== 'object' || p === null || p.kind !== 'cpu-measured') return "kind must be 'cpu-measured'";
  for (const k of ['key', 'cpuModel', 'measuredAt'] as const) if (typeof p[k] !== 'string') return `${k} must be a string`;
  if (!isFigure(p.readBandwidth)) return `readBandwidth ${FIGURE}`;
  if (p.copyBandwidth != null && !isFigure(p.copyBandwidth)) return `copyBandwidth ${FIGURE}`;
  if (typeof p.peakFlops !== 'object' || p.peakFlops === null || Array.isArray(p.peakFlops)) return 'peakFlops must be an object';
  for (const [d, f] of Object.entries(p.peakFlops)) if (f !== undefined && f !== null && !isFigure(f)) return `peakFlops.${d} ${FIGURE}`;
  if (p.offloadReadBandwidth != null && !isFigure(p.offloadReadBandwidth)) return `offloadReadBandwidth ${FIGURE}`;
  if (p.tdpW != null && !(typeof p.tdpW === 'number' && Number.isFinite(p.tdpW) && p.tdpW >= 0)) return 'tdpW must be a number >= 0';
  // Printed in notes and warnings: a nested array there would recurse when turned into text.
  if (p.isa !== undefined && typeof p.isa !== 'string') return 'isa must be a string';
  for (const k of ['cores', 'memoryBytes', 'budgetSeconds', 'rounds'] as const)
    if (p[k] !== undefined && !(finite(p[k]) && (p[k] as number) >= 0)) return `${k} must be a number >= 0`;
  if (p.quick !== undefined && typeof p.quick !== 'boolean') return 'quick must be a boolean';
  return null;
}

export interface SavedProfile {
  /** Where the profile is now. */
  file: string;
  /** Why it is not where it was asked to be (then `file` is a copy in the temp folder), else null. */
  error: string | null;
}

/** Saves `p` to `file`; when that fails, keeps it in the temp folder and says why. */
export function saveProfileKeeping(p: CpuMeasuredProfile, file: string): SavedProfile {
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    writeJsonAtomic(file, p);
    return { file, error: null };
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    const kept = path.join(os.tmpdir(), `moecap-profile-${p.key}-${Date.now()}.json`);
    try {
      writeJsonAtomic(kept, p);
    } catch {
      return { file: '', error: `cannot save the profile to ${file} (${why}), nor to ${kept}: it is printed with --json` };
    }
    return { file: kept, error: `cannot save the profile to ${file} (${why}); the measurement was kept in ${kept} (use --hardware-profile ${kept})` };
  }
}
