// `moecap ep-plan --preset deepseek-v3 --ranks 8 --batch 1,64,1024 --link 100gbe,ib-ndr,nvlink4`:
// expert parallelism on paper (lib/ep_plan.ts). `--check ep_results.json` compares the planner
// with a measured `moecap run --ep` result: bytes exactly, link time with the calibrated link.
import * as fs from 'fs';
import type { Command } from '../command';
import { MoecapError } from '../../errors';
import { findPreset, bytesPerWeight } from '../../cap/presets';
import { findDatasheet, peaksFromDatasheet, timeBoundPeakFor } from '../../cap/hardware';
import { LINKS, checkAgainstRun, commBoundFrom, epPlanRow, epWireSizes, findLink, type EpPlanInputs } from '../../ep_plan';

const MAX_BATCH = 65536;

function optionError<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new MoecapError('ERR_INVALID_OPTION', `${what}: ${(e as Error).message}`);
  }
}

function check(file: string, io: { out: (s: string) => void }): number {
  let r;
  try {
    r = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new MoecapError('ERR_IO', `--check ${file}: ${(e as Error).message}`);
  }
  if (r?.schema !== 'moecap-ep/1') throw new MoecapError('ERR_CORRUPT_FILE', `--check ${file}: not a moecap run --ep result (schema moecap-ep/1)`);
  const model = optionError(`--check ${file}`, () => findPreset(r.preset));
  const wire = epWireSizes(r.dtype, model.hidden, model.experts);
  const rows = checkAgainstRun(r, model, wire);
  const us = (s: number) => (s * 1e6).toFixed(0);
  io.out(
    `${file}: ${r.ranks} ranks, ${r.preset} ${r.phase} T=${r.tokens} ${r.dtype}; calibrated link ${(r.link.latencySeconds * 1e6).toFixed(2)} µs, ` +
      `${(r.link.bandwidthBytesPerSecond / 1e9).toFixed(3)} GB/s\n`,
  );
  io.out('rank  rows out  rows in  bytes measured  bytes planned  equal  uniform-routing bytes  link µs planned  dispatch+combine µs measured\n');
  for (const c of rows)
    io.out(
      `${String(c.rank).padStart(4)}  ${String(c.rowsSent).padStart(8)}  ${String(c.rowsReceived).padStart(7)}  ${String(c.measuredBytes).padStart(14)}  ` +
        `${String(c.predictedBytes).padStart(13)}  ${(c.measuredBytes === c.predictedBytes ? 'yes' : 'NO').padStart(5)}  ${c.uniformBytes.toFixed(0).padStart(21)}  ` +
        `${us(c.predictedCommSeconds).padStart(15)}  ${us(c.measuredCommSeconds).padStart(27)}\n`,
    );
  io.out('(measured dispatch+combine also holds packing, the combine and the wait for the slowest rank)\n');
  return rows.every((c) => c.measuredBytes === c.predictedBytes) ? 0 : 1;
}

export const epPlanCommand: Command = {
  name: 'ep-plan',
  summary: 'expert parallelism on paper: bytes per token each rank sends, link time, compute time, where the layer turns communication-bound',
  description:
    'Per MoE layer pass and rank, uniform routing, experts spread evenly: the bytes each rank sends (the wire sizes the\n' +
    "expert-parallel run packs), the time on each link (3 exchanges: 3·latency + bytes / bandwidth), the rank's compute\n" +
    "time from a datasheet's peaks (max of FLOPs / peak and weight bytes read / memory bandwidth), and the batch per rank\n" +
    'from which communication takes at least as long as compute. The link figures are assumptions (printed).\n' +
    '--check FILE compares the planner with a measured `moecap run --ep` result (ep_results.json).',
  options: [
    { name: 'preset', type: 'string-list', description: 'model presets', default: ['deepseek-v3', 'qwen3-235b-a22b'] },
    { name: 'ranks', type: 'number', description: 'expert-parallel ranks', default: 8 },
    { name: 'batch', type: 'number-list', description: 'tokens per rank per pass', default: [1, 64, 1024] },
    { name: 'link', type: 'string-list', description: `links: ${LINKS.map((l) => l.name).join(', ')}`, default: LINKS.map((l) => l.name) },
    { name: 'dtype', type: 'string', description: 'expert weights (and so the activation rows sent): f32, bf16, int8, int4, mxfp4, fp8', default: 'int8' },
    { name: 'hardware', type: 'string', description: 'the compute side of each rank: a datasheet GPU', default: 'h100-sxm' },
    { name: 'check', type: 'string', description: 'a measured ep_results.json to compare with (other options ignored)' },
    { name: 'json', type: 'boolean', description: 'print JSON' },
  ],
  async run({ options }, io) {
    if (options.check !== undefined) return check(options.check as string, io);
    const ranks = options.ranks as number;
    if (!(Number.isInteger(ranks) && ranks >= 1 && ranks <= 4096))
      throw new MoecapError('ERR_INVALID_OPTION', `--ranks must be an integer in [1, 4096], got ${ranks}`);
    const batches = options.batch as number[];
    for (const b of batches)
      if (!(Number.isInteger(b) && b >= 1 && b <= MAX_BATCH))
        throw new MoecapError('ERR_INVALID_OPTION', `--batch must be integers in [1, ${MAX_BATCH}], got ${b}`);
    const dtype = options.dtype as string;
    optionError('--dtype', () => bytesPerWeight(dtype));
    const peaks = optionError('--hardware', () => peaksFromDatasheet(findDatasheet(options.hardware as string)));
    const links = (options.link as string[]).map((l) => optionError('--link', () => findLink(l)));
    const models = (options.preset as string[]).map((p) => optionError('--preset', () => findPreset(p)));
    const out: unknown[] = [];
    for (const model of models) {
      if (ranks > model.experts) throw new MoecapError('ERR_INVALID_OPTION', `--ranks ${ranks}: ${model.name} has only ${model.experts} experts`);
      const wire = epWireSizes(dtype, model.hidden, model.experts);
      const inputs: EpPlanInputs = { model, ranks, dtype, peaks, wire };
      const rows = batches.flatMap((b) => links.map((l) => epPlanRow(inputs, b, l)));
      const from = links.map((l) => ({ link: l.name, commBoundFrom: commBoundFrom(inputs, l, MAX_BATCH) }));
      if (options.json) {
        out.push({ model: model.name, ranks, dtype, hardware: peaks.name, wire, rows, from });
        continue;
      }
      const peak = timeBoundPeakFor(dtype, peaks);
      io.out(
        `${model.name}: H ${model.hidden}, E ${model.experts}, k ${model.topK}, F ${model.intermediate}${model.shared ? `, shared F ${model.shared.intermediate}` : ''}; ` +
          `${ranks} ranks, ${dtype}: ${wire.recordBytes} B per row out, ${wire.resultBytes} B per result back, ${wire.countsBytes} B counts per peer; ` +
          `compute ${peaks.name} (${(peak.value! / 1e12).toFixed(0)} T${peak.which} op/s${peak.note ? `, ${peak.note}` : ''}, ${(peaks.memoryBandwidth! / 1e12).toFixed(2)} TB/s)\n`,
      );
      io.out('batch/rank  link      KB/token/rank  MB/layer/rank  comm µs/layer  compute µs/layer  comm/compute\n');
      for (const r of rows)
        io.out(
          `${String(r.batch).padStart(10)}  ${r.link.padEnd(8)}  ${(r.bytesPerToken / 1e3).toFixed(2).padStart(13)}  ${(r.bytesSent / 1e6).toFixed(3).padStart(13)}  ` +
            `${(r.commSeconds * 1e6).toFixed(1).padStart(13)}  ${`${(r.computeSeconds * 1e6).toFixed(1)} (${r.computeBound})`.padStart(16)}  ${r.commOverCompute.toFixed(2).padStart(12)}\n`,
        );
      io.out(
        'communication-bound from batch/rank: ' +
          from
            .map((f) => `${f.link} ${f.commBoundFrom === null ? `never (≤ ${MAX_BATCH})` : f.commBoundFrom === 1 ? 'every batch' : String(f.commBoundFrom)}`)
            .join(', ') +
          '\n\n',
      );
    }
    if (options.json) io.out(JSON.stringify(out, null, 2) + '\n');
    else for (const l of links) io.out(`${l.name}: ${l.source}\n`);
    return 0;
  },
};
