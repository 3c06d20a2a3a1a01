// `moecap calibrate`: measure (or show the saved) ceilings of this machine.
import { calibrate, loadProfile, profilePath } from '../../cap/calibrate';
import { saveProfileKeeping } from '../../cap/profile_file';
import type { CpuMeasuredProfile, MeasuredFigure } from '../../cap/hardware';
import { profileWarnings } from '../../cap/ceilings';
import type { OptionSpec } from '../args';
import type { Command } from '../command';

const OPTIONS: OptionSpec[] = [
  { name: 'recalibrate', type: 'boolean', description: 'measure again even if a profile is saved' },
  { name: 'repeats', type: 'number', description: 'windows per unit in each round', default: 3 },
  { name: 'budget', type: 'number', description: 'seconds the rounds may take (they stop sooner once the best windows agree)', default: 15 },
  { name: 'threads', type: 'number', description: 'threads (default: all CPUs)' },
  { name: 'read-bytes', type: 'number', description: 'bytes of the buffer read for the bandwidth (default: 3× the largest cache, at least 96 MiB)' },
  { name: 'file-bytes', type: 'number', description: 'bytes of the scratch file read cold (default: 3× the largest cache, at least 96 MiB)' },
  { name: 'offload-dir', type: 'string', description: 'folder whose cold file read is measured (default: the temp folder)' },
  { name: 'profile', type: 'string', description: 'profile file (default: the cache folder, keyed by machine)' },
  { name: 'json', type: 'boolean', description: 'print the profile as JSON' },
];

function fmt(f: MeasuredFigure | undefined, scale: number, unit: string): string {
  if (!f) return 'unavailable (no such instruction at this ISA)';
  const pct = f.percentiles ? `, p10 ${(f.percentiles.p10 / scale).toFixed(1)} p50 ${(f.percentiles.p50 / scale).toFixed(1)}` : '';
  return `${(f.value / scale).toFixed(1)} ${unit}  (${f.statistic ?? `median of ${f.repeats}`}, spread ${(100 * f.spread).toFixed(1)}%${pct})`;
}

export const calibrateCommand: Command = {
  name: 'calibrate',
  summary: "measure this machine's ceilings (bandwidth, peak FLOP/s, file read) for S-MBU/S-MFU",
  description: "Measures this machine's ceilings (bandwidth, peak FLOP/s, offload-folder read) and saves them as a profile that CAP runs reuse.",
  options: OPTIONS,
  run: async ({ options }, io) => calibrateAndShow(options, io.out, io.err),
};

async function calibrateAndShow(o: Record<string, unknown>, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  let file = (o.profile as string | undefined) ?? profilePath();
  let status = 0;
  let p: CpuMeasuredProfile | null = o.recalibrate ? null : loadProfile(file);
  const reused = p !== null;
  if (!p) {
    p = await calibrate({
      repeats: o.repeats as number,
      budgetSeconds: o.budget as number,
      threads: o.threads as number | undefined,
      offloadDir: o['offload-dir'] as string | undefined,
      readBytes: o['read-bytes'] as number | undefined,
      fileBytes: o['file-bytes'] as number | undefined,
    });
    const saved = saveProfileKeeping(p, file);
    // The measurement is shown either way; the exit code says it is not where asked.
    if (saved.error) err(`moecap calibrate: ERR_IO: ${saved.error}\n`);
    status = saved.error ? 1 : 0;
    file = saved.file;
  }
  if (o.json) {
    out(JSON.stringify(p, null, 2) + '\n');
    return status;
  }
  out(`${reused ? 'saved profile (use --recalibrate to measure again)' : 'measured now and saved'}: ${file}\n`);
  out(`machine: ${p.cpuModel}, ${p.cores} threads, ${(p.memoryBytes / 2 ** 30).toFixed(1)} GiB, ISA ${p.isa}, measured ${p.measuredAt}\n`);
  out(`read bandwidth     ${fmt(p.readBandwidth, 1e9, 'GB/s')}\n`);
  out(`copy bandwidth     ${fmt(p.copyBandwidth, 1e9, 'GB/s')}\n`);
  out(`fp32 FMA peak      ${fmt(p.peakFlops.f32, 1e9, 'GFLOP/s')}\n`);
  out(`bf16 dot peak      ${fmt(p.peakFlops.bf16, 1e9, 'GFLOP/s')}\n`);
  out(`int8 dot peak      ${fmt(p.peakFlops.int8, 1e9, 'GOP/s')}\n`);
  out(`offload file read  ${fmt(p.offloadReadBandwidth, 1e9, 'GB/s')}  (cold: page cache dropped per repeat)\n`);
  for (const w of profileWarnings(p)) out(`warning: ${w.message}\n`);
  return status;
}
