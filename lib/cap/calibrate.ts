// `moecap calibrate`: this machine's ceilings measured with the engine's own loops
// (native/core/calibrate): read and copy bandwidth with all threads, fp32 FMA, bf16 and int8 dot
// peaks, and the cold sequential read bandwidth of a file in the offload folder. Saved as a
// profile keyed by machine in the cache folder; later runs reuse it (hardware.ts, peaks.ts).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadAddon } from '../native/loader';
import { callNative } from '../native/call';
import { MoecapError } from '../errors';
import type { NativeMeasured } from '../native/types';
import { writeJsonAtomic } from '../io/atomic_write';
import { readProfileFile } from './profile_file';
import { defaultProfilePath, machineKey, type CpuMeasuredProfile, type MeasuredFigure } from './hardware';

export interface CalibrateOptions {
  repeats?: number;
  threads?: number;
  readBytes?: number;
  /** Folder of the offload tier whose cold sequential read is measured (default: os.tmpdir()). */
  offloadDir?: string;
  fileBytes?: number;
}

function figure(m: NativeMeasured, repeats: number): MeasuredFigure {
  return { value: m.median, unit: m.unit, repeats, spread: m.median > 0 ? (m.max - m.min) / m.median : 0, min: m.min, max: m.max };
}

export function thisMachineKey(): string {
  return machineKey(os.cpus()[0]?.model ?? 'unknown', os.cpus().length, os.totalmem());
}

export function profilePath(): string {
  return defaultProfilePath(thisMachineKey());
}

export async function calibrate(o: CalibrateOptions = {}): Promise<CpuMeasuredProfile & { offloadRead?: { folder: string; bytes: number; cacheDropped: boolean } }> {
  const addon = loadAddon();
  const repeats = o.repeats ?? 7;
  const folder = o.offloadDir ?? os.tmpdir();
  if (!fs.existsSync(folder) || !fs.statSync(folder).isDirectory()) throw new MoecapError('ERR_IO', `offload folder '${folder}' is not a directory`);
  const c = await callNative(() => addon.calibrate({ repeats, threads: o.threads, readBytes: o.readBytes }));
  const fileRepeats = Math.min(repeats, 3);
  const f = await callNative(() => addon.measureFileRead(folder, { bytes: o.fileBytes ?? 256 * 1024 * 1024, repeats: fileRepeats }));
  if (!c.fp32Flops || !c.copyBandwidth) throw new MoecapError('ERR_INTERNAL', 'calibrate() returned no compute or copy figures');
  const peakFlops: CpuMeasuredProfile['peakFlops'] = { f32: figure(c.fp32Flops, repeats) };
  if (c.bf16Flops) peakFlops.bf16 = figure(c.bf16Flops, repeats);
  if (c.int8Ops) peakFlops.int8 = figure(c.int8Ops, repeats);
  return {
    kind: 'cpu-measured',
    key: thisMachineKey(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    cores: c.threads,
    memoryBytes: os.totalmem(),
    isa: c.isa,
    measuredAt: new Date().toISOString(),
    readBandwidth: figure(c.readBandwidth, repeats),
    copyBandwidth: figure(c.copyBandwidth, repeats),
    peakFlops,
    offloadReadBandwidth: figure(f.bandwidth, fileRepeats),
    offloadRead: { folder, bytes: f.bytes, cacheDropped: f.cacheDropped },
  };
}

export function saveProfile(p: CpuMeasuredProfile, file = profilePath()): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeJsonAtomic(file, p);
  return file;
}

/** The saved profile, or null; a corrupt one is ERR_CORRUPT_FILE naming it (profile_file.ts). */
export function loadProfile(file = profilePath()): CpuMeasuredProfile | null {
  return readProfileFile(file);
}
