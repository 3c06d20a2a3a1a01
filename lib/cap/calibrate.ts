// `moecap calibrate`: this machine's ceilings measured with the engine's own loops
// (native/core/calibrate): read and copy bandwidth with all threads, fp32 FMA, bf16 and int8 dot
// peaks, in rounds of short windows until the peaks agree or the budget is spent (ceilings.ts says
// which statistic each figure keeps), and the cold sequential read bandwidth of a file in the
// offload folder. Saved as a
// profile keyed by machine in the cache folder; later runs reuse it (hardware.ts, peaks.ts).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadAddon } from '../native/loader';
import { callNative } from '../native/call';
import { MoecapError } from '../errors';
import { writeJsonAtomic } from '../io/atomic_write';
import { defaultProfilePath, machineKey, type CpuMeasuredProfile, type MeasuredFigure } from './hardware';
import { bandwidthFigure, peakFigure, peaksConverged } from './ceilings';
import { readProfileFile } from './profile_file';

export interface CalibrateOptions {
  /** Windows per unit in each round (default 3). */
  repeats?: number;
  threads?: number;
  /** Bytes of the buffer read for the bandwidth windows (default bandwidthWindowBytes()). */
  readBytes?: number;
  /** Folder of the offload tier whose cold sequential read is measured (default: os.tmpdir()). */
  offloadDir?: string;
  fileBytes?: number;
  /** Seconds the rounds may take (default 15; a first run's quick calibration takes 3). */
  budgetSeconds?: number;
  /** Milliseconds per compute window (default 20). */
  computeMs?: number;
  /** Rounds at least, even when the peaks agree sooner (default 3). */
  minRounds?: number;
  /** Skip the offload-folder read (a first run's quick calibration). */
  skipFileRead?: boolean;
  quick?: boolean;
}

export function thisMachineKey(): string {
  return machineKey(os.cpus()[0]?.model ?? 'unknown', os.cpus().length, os.totalmem());
}

export function profilePath(): string {
  return defaultProfilePath(thisMachineKey());
}

interface Windows {
  read: number[];
  copy: number[];
  f32: number[];
  bf16: number[];
  int8: number[];
}

/**
 * Rounds of short windows (read, copy, fp32 FMA, bf16 and int8 dot) until the best windows of every
 * compute unit agree (ceilings.ts peaksConverged) after `minRounds`, or the budget is spent.
 */
async function measureWindows(o: CalibrateOptions): Promise<{ w: Windows; rounds: number; threads: number; isa: string }> {
  const addon = loadAddon();
  const budget = o.budgetSeconds ?? 15;
  const minRounds = o.minRounds ?? 3;
  const w: Windows = { read: [], copy: [], f32: [], bf16: [], int8: [] };
  const t0 = Date.now();
  let rounds = 0,
    threads = 0,
    isa = '';
  for (;;) {
    const c = await callNative(() =>
      addon.calibrate({
        repeats: o.repeats ?? 3,
        threads: o.threads,
        readBytes: o.readBytes ?? bandwidthWindowBytes(),
        computeMs: o.computeMs ?? 20,
      }),
    );
    if (!c.fp32Flops || !c.copyBandwidth) throw new MoecapError('ERR_INTERNAL', 'calibrate() returned no compute or copy figures');
    rounds++;
    threads = c.threads;
    isa = c.isa;
    w.read.push(...c.readBandwidth.samples);
    w.copy.push(...c.copyBandwidth.samples);
    w.f32.push(...c.fp32Flops.samples);
    if (c.bf16Flops) w.bf16.push(...c.bf16Flops.samples);
    if (c.int8Ops) w.int8.push(...c.int8Ops.samples);
    const units = [w.f32, w.bf16, w.int8].filter((s) => s.length > 0);
    const spent = (Date.now() - t0) / 1e3;
    if (rounds >= minRounds && peaksConverged(units)) break;
    // Stop before a round that would overrun: rounds take about the same time.
    if (spent + spent / rounds > budget) break;
  }
  return { w, rounds, threads, isa };
}

export async function calibrate(
  o: CalibrateOptions = {},
): Promise<CpuMeasuredProfile & { offloadRead?: { folder: string; bytes: number; cacheDropped: boolean } }> {
  const addon = loadAddon();
  const folder = o.offloadDir ?? os.tmpdir();
  if (!o.skipFileRead && (!fs.existsSync(folder) || !fs.statSync(folder).isDirectory()))
    throw new MoecapError('ERR_IO', `offload folder '${folder}' is not a directory`);
  const { w, rounds, threads, isa } = await measureWindows(o);
  const peakFlops: CpuMeasuredProfile['peakFlops'] = { f32: peakFigure(w.f32, 'FLOP/s') };
  if (w.bf16.length) peakFlops.bf16 = peakFigure(w.bf16, 'FLOP/s');
  if (w.int8.length) peakFlops.int8 = peakFigure(w.int8, 'OP/s');
  const profile: CpuMeasuredProfile & { offloadRead?: { folder: string; bytes: number; cacheDropped: boolean } } = {
    kind: 'cpu-measured',
    key: thisMachineKey(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    cores: threads,
    memoryBytes: os.totalmem(),
    isa,
    measuredAt: new Date().toISOString(),
    readBandwidth: bandwidthFigure(w.read, 'B/s'),
    copyBandwidth: bandwidthFigure(w.copy, 'B/s'),
    peakFlops,
    budgetSeconds: o.budgetSeconds ?? 15,
    rounds,
    ...(o.quick ? { quick: true } : {}),
  };
  if (!o.skipFileRead) {
    const f = await callNative(() => addon.measureFileRead(folder, { bytes: o.fileBytes ?? 256 * 1024 * 1024, repeats: 3 }));
    profile.offloadReadBandwidth = bandwidthFigure(f.bandwidth.samples, 'B/s');
    profile.offloadRead = { folder, bytes: f.bytes, cacheDropped: f.cacheDropped };
  }
  return profile;
}

/** The largest CPU cache (sysfs), or 32 MiB where sysfs does not say. */
export function lastLevelCacheBytes(sysfs = '/sys/devices/system/cpu/cpu0/cache'): number {
  let best = 0;
  try {
    for (const d of fs.readdirSync(sysfs).filter((x) => x.startsWith('index'))) {
      const m = /^(\d+)([KMG]?)/.exec(fs.readFileSync(path.join(sysfs, d, 'size'), 'utf8').trim());
      if (m) best = Math.max(best, Number(m[1]) * ({ '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 } as Record<string, number>)[m[2]]);
    }
  } catch {
    /* no sysfs: the default below */
  }
  return best > 0 ? best : 32 * 1024 * 1024;
}

/**
 * Bytes of a bandwidth window: three times the largest cache (so a sequential read of it finds
 * nothing there), at least 96 MiB. Short windows matter on shared cores: a 256 MiB read spans
 * several scheduler time slices and almost never runs undisturbed.
 */
export function bandwidthWindowBytes(): number {
  const b = Math.max(96 * 1024 * 1024, 3 * lastLevelCacheBytes());
  return Math.ceil(b / (1 << 20)) * (1 << 20);
}

/**
 * The read bandwidth the machine gives right now: the best of `repeats` short reads of a buffer
 * above the caches, all threads. The best, not the median: on shared cores a window in which one of
 * our threads was descheduled reads slower than the memory allows, which would push S-MBU above 1.
 */
export async function readBandwidthNow(o: { threads?: number; readBytes?: number; repeats?: number } = {}): Promise<number> {
  const addon = loadAddon();
  const r = await callNative(() =>
    addon.calibrate({ threads: o.threads, readBytes: o.readBytes ?? bandwidthWindowBytes(), repeats: o.repeats ?? 15, compute: false }),
  );
  return r.readBandwidth.max;
}

/** What one rank of an expert-parallel run measures of its own ceilings (ep_utilisation.ts). */
export interface CeilingsNow {
  threads: number;
  /** Best of the read windows (B/s), as readBandwidthNow. */
  readBandwidth: number;
  /** Each compute unit's windows kept as `moecap calibrate` keeps them (ceilings.ts peakFigure). */
  peakFlops: { f32?: MeasuredFigure; bf16?: MeasuredFigure; int8?: MeasuredFigure };
}

/**
 * The read bandwidth and compute peaks this process gets right now with `threads`: one round of
 * the calibration loops (read windows, then fp32 FMA, bf16 and int8 dot windows).
 */
export async function ceilingsNow(o: { threads?: number; readBytes?: number; repeats?: number; computeMs?: number } = {}): Promise<CeilingsNow> {
  const addon = loadAddon();
  const c = await callNative(() =>
    addon.calibrate({ threads: o.threads, readBytes: o.readBytes ?? bandwidthWindowBytes(), repeats: o.repeats ?? 7, computeMs: o.computeMs ?? 20 }),
  );
  const peakFlops: CeilingsNow['peakFlops'] = {};
  if (c.fp32Flops) peakFlops.f32 = peakFigure(c.fp32Flops.samples, 'FLOP/s');
  if (c.bf16Flops) peakFlops.bf16 = peakFigure(c.bf16Flops.samples, 'FLOP/s');
  if (c.int8Ops) peakFlops.int8 = peakFigure(c.int8Ops.samples, 'OP/s');
  return { threads: c.threads, readBandwidth: c.readBandwidth.max, peakFlops };
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
