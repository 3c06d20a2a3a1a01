// `moecap analyze DIR --model PATH|--preset NAME [--out DIR] [--prices FILE]`: a MoE-CAP output
// folder's passes recomputed with our S-MBU/S-MFU and cost definitions, beside MoE-CAP's own figures
// (its cap_metrics file when the folder has one, else its formula re-derived on its model path) and
// the reason they differ; --out writes a results.json that `moecap report` draws.
import * as fs from 'fs';
import * as path from 'path';
import type { Command } from '../command';
import { DEFAULT_PRICES, mergePrices, type PriceTable } from '../../cap/cost';
import { writeJsonAtomic } from '../../io/atomic_write';
import { validateResults } from '../../cap/results';
import { summarize, type Summary } from '../../cap/metrics';
import { MoecapError } from '../../errors';
import { resolveModel } from '../../interop/model_shape';
import { readMoecapFolder } from '../../interop/moecap_folder';
import { analyzeRun, publishedFigures, type LatencyComparison, type RequestAnalysis, type RunAnalysis } from '../../interop/moecap_analysis';
import { buildResults } from '../../interop/moecap_results';

/** --prices FILE: a JSON of overrides over the default assumptions, as `moecap run` takes. */
export function loadPrices(file: string | undefined): PriceTable {
  if (!file) return DEFAULT_PRICES;
  let o: unknown;
  try {
    o = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new MoecapError('ERR_INVALID_OPTION', `--prices: cannot read price file '${file}': ${(e as Error).message}`);
  }
  try {
    return mergePrices(DEFAULT_PRICES, o);
  } catch (e) {
    throw new MoecapError('ERR_INVALID_OPTION', `--prices '${file}': ${(e as Error).message}`);
  }
}

const pct = (v: number) => `${(v * 100).toFixed(2)}%`;
const usd = (v: number) => `$${v < 0.01 ? v.toPrecision(3) : v.toFixed(4)}`;
const ms = (seconds: number) => `${+(seconds * 1e3).toPrecision(4)} ms`;

// One request-latency line: theirs, our mean and percentiles over the requests, the difference and why.
function latencyLine(name: string, ours: Summary | null, theirs: LatencyComparison | null): string {
  const t = theirs?.theirs ?? null;
  const o = ours
    ? `ours mean ${ms(ours.mean)}  p50 ${ms(ours.p50)}  p90 ${ms(ours.p90)}  p99 ${ms(ours.p99)} (${ours.n} requests)`
    : 'ours n/a (no request with both times)';
  const head = theirs ? `theirs ${t === null ? 'n/a' : ms(t)}  ` : '';
  const diff = ours && t !== null ? `  diff ${ours.mean >= t ? '+' : '-'}${ms(Math.abs(ours.mean - t))}` : '';
  return `    ${name.padEnd(5)}  ${head}${o}${diff}${theirs ? `  reason: ${theirs.reason}` : ''}\n`;
}

function printRequests(r: RequestAnalysis, io: { out: (s: string) => void }, hasPasses: boolean): void {
  const { records: rec, latency: l } = r;
  const older = rec.layout === 'per-request detailed_results';
  const counts = `${l.attempted} requests${l.completed === null ? '' : `, ${l.completed} completed`}`;
  io.out(
    `  requests: ${path.basename(rec.file)}, ${counts}, client-measured${older ? ` (MoE-CAP's layout before 2026-03-19${hasPasses ? '' : ': no forward passes, so S-MBU/S-MFU are only their cap_metrics figures'})` : ''}\n`,
  );
  if (!l.ttft && !l.tpot && !l.e2e) {
    io.out(`    no request carries client times (MoE-CAP wrote them from 2026-07-08): no request TTFT/TPOT to recompute\n`);
    return;
  }
  io.out(latencyLine('TTFT', l.ttft, r.ttft));
  io.out(latencyLine('TPOT', l.tpot, r.tpot));
  io.out(latencyLine('E2E', l.e2e, null));
}

function printRun(a: RunAnalysis, io: { out: (s: string) => void }, perPass: boolean): void {
  const { run, datasheet: d } = a;
  io.out(
    `${run.key}: ${a.modelName} on ${run.numGpus}× ${run.gpuName ?? d.name} (datasheet ${d.name}${run.numGpusRecorded ? '' : '; num_gpus not recorded: 1 assumed'}), ${a.precision}, ${run.passes.length} passes, measured by MoE-CAP on ${run.engine ?? 'an engine not recorded'}\n`,
  );
  if (!a.phases.length)
    for (const phase of ['prefill', 'decode'] as const) {
      const pub = publishedFigures(run, phase);
      if (pub) io.out(`  ${phase}: theirs S-MBU ${pct(pub.smbu)}  S-MFU ${pct(pub.smfu)} (their cap_metrics file; no forward passes to recompute ours)\n`);
    }
  const skipped = Object.entries(run.skipped).filter(([, n]) => n > 0);
  if (skipped.length)
    io.out(
      `  skipped: ${skipped.map(([what, n]) => `${n} passes without ${what === 'duration' ? 'a duration (ttft/tpot/latency null)' : what}`).join(', ')} (MoE-CAP's aggregates skip them too)\n`,
    );
  for (const ph of a.phases) {
    const t = ph.theirs,
      o = ph.oursMean;
    io.out(`  ${ph.phase} (${ph.passes.length} passes, mean per pass; their ${ph.theirPath} path)\n`);
    io.out(`    S-MBU  theirs ${t ? pct(t.smbu) : 'n/a'}  ours ${pct(o.smbu)}  ${t ? `diff ${pct(o.smbu - t.smbu)}` : ''}  reason: ${ph.reasons.smbu}\n`);
    io.out(`    S-MFU  theirs ${t ? pct(t.smfu) : 'n/a'}  ours ${pct(o.smfu)}  ${t ? `×${(o.smfu / t.smfu).toFixed(2)}` : ''}  reason: ${ph.reasons.smfu}\n`);
    if (t) io.out(`    (theirs: ${t.from})\n`);
    const pp = summarize(ph.costPerPass);
    const c = ph.cost;
    io.out(`    cost   ours ${usd(c.usdPer1MTokens)} per 1M tokens (phase total); per pass min ${usd(pp.min)} median ${usd(pp.median)} max ${usd(pp.max)}\n`);
    io.out(
      `           inputs (assumptions, override with --prices): hardware $${c.hardwarePriceUsd} over ${c.inputs.amortisationYears} y at utilisation ${c.inputs.utilisation}, ${c.inputs.power.watts} W at $${c.inputs.usdPerKWh}/kWh\n`,
    );
    if (perPass)
      for (let i = 0; i < ph.passes.length; i++) {
        const p = ph.passes[i],
          x = ph.ours[i];
        io.out(
          `      line ${p.line}: ${p.phase === 'prefill' ? p.seqLensSum : p.batchSize} tokens in ${p.seconds}s, A=${p.expertActivation}, S-MBU ${pct(x.smbu)} S-MFU ${pct(x.smfu)} cost ${usd(ph.costPerPass[i])}/1M\n`,
        );
      }
  }
  if (a.requests) printRequests(a.requests, io, run.passes.length > 0);
  const tc = a.theirCost;
  io.out(
    `  cost   theirs ${tc.value === null ? 'None' : `$${tc.value.toFixed(2)}`} (${tc.note})${tc.value === null && tc.ifKeyMatched !== null ? `; with the key fixed it would print $${tc.ifKeyMatched.toFixed(2)}` : ''}\n`,
  );
}

export const analyzeCommand: Command = {
  name: 'analyze',
  summary: "recompute S-MBU/S-MFU and cost of a MoE-CAP output folder (vLLM/SGLang runs) with moecap's definitions",
  positional: 'DIR',
  options: [
    { name: 'model', type: 'string', description: 'checkpoint folder (config.json) of the model that ran' },
    { name: 'preset', type: 'string', description: 'model preset instead of --model' },
    { name: 'hardware', type: 'string', description: 'datasheet GPU to use instead of the one MoE-CAP recorded' },
    { name: 'prices', type: 'string', description: 'JSON file overriding the cost assumptions (as moecap run --prices)' },
    { name: 'out', type: 'string', description: 'folder to write results.json into (then: moecap report DIR)' },
    { name: 'per-pass', type: 'boolean', description: 'print every pass' },
  ],
  async run({ options, positional }, io) {
    if (positional.length !== 1) throw new MoecapError('ERR_USAGE', 'usage: moecap analyze DIR --model PATH|--preset NAME [--out DIR] [--prices FILE]');
    const model = resolveModel(options.model as string | undefined, options.preset as string | undefined);
    const prices = loadPrices(options.prices as string | undefined);
    const analyses = readMoecapFolder(positional[0]).map((r) => analyzeRun(r, model, prices, options.hardware as string | undefined));
    for (const a of analyses) printRun(a, io, options['per-pass'] === true);
    const out = options.out as string | undefined;
    if (out) {
      // A results.json without configs is one `report` refuses: say so here instead of writing it.
      if (!analyses.some((a) => a.phases.length))
        throw new MoecapError(
          'ERR_INVALID_OPTION',
          `--out: '${positional[0]}' has no forward passes to write as configs (MoE-CAP's layout before 2026-03-19 records requests, not passes); nothing written, the figures above are the analysis`,
        );
      const results = buildResults(analyses, model, prices, path.resolve(positional[0]));
      const errs = validateResults(results);
      if (errs.length) throw new MoecapError('ERR_INTERNAL', `imported results do not match the schema: ${errs.slice(0, 3).join('; ')}`);
      try {
        fs.mkdirSync(out, { recursive: true });
        writeJsonAtomic(path.join(out, 'results.json'), results);
      } catch (e) {
        throw new MoecapError('ERR_IO', `--out: cannot write '${path.join(out, 'results.json')}': ${(e as Error).message}`);
      }
      io.out(`wrote ${path.join(out, 'results.json')} (${results.configs.length} configs); draw it with: moecap report ${out}\n`);
    }
    return 0;
  },
};
