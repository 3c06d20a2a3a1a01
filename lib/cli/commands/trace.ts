// `moecap trace import FILE --format vllm|sglang|moecap --out TRACE` and `moecap trace stats TRACE`.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Command } from '../command';
import { MoecapError } from '../../errors';
import { importTrace, TRACE_FORMATS, type TraceFormat } from '../../interop/trace_import';
import { TraceSpill } from '../../interop/trace_spill';
import { writeBinaryTrace } from '../../interop/trace_binary';
import { traceStats } from '../../interop/trace_stats';
import { resolveModel } from '../../interop/model_shape';

const pct = (v: number | null) => (v === null || Number.isNaN(v) ? 'n/a' : `${(v * 100).toFixed(1)}%`);

export const traceCommand: Command = {
  name: 'trace',
  summary: 'import routing records of vLLM/SGLang into a moecap trace; routing statistics of a trace',
  description:
    'moecap trace import FILE --format vllm|sglang|moecap [--out TRACE | --out TRACE.mctrace (binary)] [--model PATH|--preset NAME]\n' +
    'moecap trace stats TRACE [--batch T] [--window N] [--hot N] [--model PATH|--preset NAME]',
  positional: 'import FILE | stats TRACE',
  options: [
    { name: 'format', type: 'string', description: 'import: vllm (routed_experts per request), sglang (per_token recorder records), moecap' },
    { name: 'out', type: 'string', description: 'import: the trace to write (default FILE.trace.jsonl; a name ending .mctrace: the binary trace)' },
    { name: 'model', type: 'string', description: 'checkpoint folder (config.json): expert count and k to check ids against' },
    { name: 'preset', type: 'string', description: 'model preset instead of --model' },
    { name: 'batch', type: 'number', description: 'stats: tokens per batch for distinct experts', default: 16 },
    { name: 'window', type: 'number', description: 'stats: tokens per window for hot-set stability', default: 1024 },
    { name: 'hot', type: 'number', description: 'stats: hot-set size (default: k)' },
  ],
  async run({ options, positional }, io) {
    const [sub, file] = positional;
    if (!sub || !file || positional.length > 2) throw new MoecapError('ERR_USAGE', 'usage: moecap trace import FILE --format F | moecap trace stats TRACE');
    const model = options.model || options.preset ? resolveModel(options.model as string | undefined, options.preset as string | undefined) : undefined;
    if (sub === 'import') {
      const format = options.format as string | undefined;
      if (!format || !TRACE_FORMATS.includes(format as TraceFormat))
        throw new MoecapError('ERR_INVALID_OPTION', `--format must be one of ${TRACE_FORMATS.join(', ')}`);
      const out = (options.out as string | undefined) ?? `${file}.trace.jsonl`;
      if (out.endsWith('.mctrace')) {
        // The records become a moecap JSONL first (unless they are one), then one block per layer.
        const tmp = format === 'moecap' ? undefined : fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-import-'));
        try {
          const jsonl = tmp ? path.join(tmp, 'trace.jsonl') : file;
          if (tmp) importTrace(file, jsonl, { format: format as TraceFormat, experts: model?.experts, topK: model?.topK, layers: model?.moeLayers });
          const trace = await TraceSpill.read(jsonl, { experts: model?.experts, topK: model?.topK });
          try {
            const E = model?.experts ?? trace.maxExpert;
            const bytes = writeBinaryTrace(out, trace, E);
            io.out(`${out}: binary trace, ${trace.tokens[0]} tokens × ${trace.layers} layers, k = ${trace.topK}, E = ${E}, ${bytes} bytes\n`);
          } finally {
            trace.close();
          }
        } finally {
          if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
        }
        return 0;
      }
      const s = importTrace(file, out, { format: format as TraceFormat, experts: model?.experts, topK: model?.topK, layers: model?.moeLayers });
      io.out(`${out}: ${s.tokens} tokens × ${s.layers} layers, k = ${s.topK}, from ${s.records} ${format} records (${s.lines} lines)\n`);
      return 0;
    }
    if (sub === 'stats') {
      for (const k of ['batch', 'window'] as const)
        if (!(Number.isInteger(options[k]) && (options[k] as number) >= 1)) throw new MoecapError('ERR_INVALID_OPTION', `--${k} must be an integer >= 1`);
      const trace = await TraceSpill.read(file, { experts: model?.experts, topK: model?.topK });
      try {
        const E = model?.experts ?? trace.maxExpert;
        const stats = traceStats(trace, {
          experts: E,
          batch: options.batch as number,
          window: options.window as number,
          hotSize: (options.hot as number | undefined) ?? trace.topK,
        });
        io.out(
          `${file}: ${trace.layers} layers, ${trace.tokens[0]} tokens, k = ${trace.topK}, E = ${E}${model ? '' : ' (max id + 1; give --model for the real count)'}\n`,
        );
        io.out(`layer  gini  entropy  distinct/T=${options.batch} (uniform)  hot-set stability  next-layer precision  top experts (share)\n`);
        for (const s of stats) {
          const total = s.load.reduce((a, b) => a + b, 0);
          const top = s.load
            .map((v, e) => [e, v])
            .sort((a, b) => b[1] - a[1])
            .slice(0, 3)
            .map(([e, v]) => `${e} (${((100 * v) / total).toFixed(1)}%)`)
            .join(' ');
          io.out(
            `${String(s.layer).padStart(5)}  ${s.gini.toFixed(3)}  ${s.entropyNorm.toFixed(3)}    ${s.meanDistinctPerBatch.toFixed(1).padStart(6)} (${s.expectedUniform.toFixed(1)})` +
              `          ${pct(s.hotSetStability).padStart(6)}             ${pct(s.nextLayerPrecision).padStart(6)}           ${top}\n`,
          );
        }
      } finally {
        trace.close();
      }
      return 0;
    }
    throw new MoecapError('ERR_USAGE', `unknown trace subcommand '${sub}' (import, stats)`);
  },
};
