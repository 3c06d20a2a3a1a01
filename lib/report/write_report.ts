// `moecap report`: read results.json (a file, or a run folder holding one), render the page, and
// write it atomically (lib/io/atomic_write), so a reader never sees half a report and bad input
// leaves no HTML file at all.
import * as fs from 'fs';
import * as path from 'path';
import { writeFileAtomic } from '../io/atomic_write';
import { renderReportHtml } from './html_page';
import { ReportInputError, toResultsView, type ResultsView } from './results_view';
import { looksLikeEpResults, toEpResults } from './ep_view';
import { renderEpReportHtml, type EpRun } from './ep_page';

export interface LoadedResults {
  file: string;
  raw: string;
  view: ResultsView;
}

export function resolveResultsFile(input: string): string {
  let st: fs.Stats;
  try {
    st = fs.statSync(input);
  } catch {
    throw new ReportInputError(`${input}: no such file or folder`, 'ERR_IO');
  }
  if (!st.isDirectory()) return input;
  const file = path.join(input, 'results.json');
  if (fs.existsSync(file)) return file;
  // An expert-parallel run folder (`moecap run --ep` writes ep_results.json).
  const ep = path.join(input, 'ep_results.json');
  if (fs.existsSync(ep)) return ep;
  throw new ReportInputError(`${input}: folder has no results.json (nor ep_results.json)`, 'ERR_IO');
}

// The file's text and its parse: the same errors for a CAP and an expert-parallel results file.
function readJson(file: string): { raw: string; parsed: unknown } {
  let raw: string;
  try {
    raw = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ReportInputError(`${file}: cannot be read (${(e as Error).message})`, 'ERR_IO');
  }
  if (raw.trim() === '') throw new ReportInputError(`${file}: the file is empty`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (e) {
    throw new ReportInputError(`${file}: not valid JSON, truncated or corrupt (${(e as Error).message})`);
  }
  return { raw, parsed };
}

export function loadResults(input: string): LoadedResults {
  const file = resolveResultsFile(input);
  const { raw, parsed } = readJson(file);
  return { file, raw, view: toResultsView(parsed, path.basename(file)) };
}

/** The expert-parallel runs of `inputs` (ep_results.json files or their run folders), by tokens per pass. */
export function loadEpRuns(inputs: readonly string[]): Array<EpRun & { file: string }> {
  const runs = inputs.map((input) => {
    const file = resolveResultsFile(input);
    const { raw, parsed } = readJson(file);
    if (!looksLikeEpResults(parsed))
      throw new ReportInputError(`${file}: not an expert-parallel results file (ep_results.json of moecap run --ep); give CAP results on their own`);
    return { file, name: path.basename(file), raw, results: toEpResults(parsed, path.basename(file)) };
  });
  return runs.sort((a, b) => a.results.tokens - b.results.tokens);
}

/** The expert-parallel report of one or more ep_results.json (one point per file on each chart). */
export async function writeEpReport(
  inputs: readonly string[],
  out?: string,
  opts: { force?: boolean } = {},
): Promise<{ file: string; runs: Array<EpRun & { file: string }> }> {
  const runs = loadEpRuns(inputs);
  const target = path.resolve(out ?? defaultReportPath(runs[0].file));
  for (const r of runs) checkReportTarget(target, r.file, opts.force ?? false);
  const html = await renderEpReportHtml(runs);
  writeTarget(target, html);
  return { file: target, runs };
}

/** `moecap report`: a CAP results file (one), or expert-parallel results (one or more). */
export async function writeAnyReport(inputs: readonly string[], out?: string, opts: { force?: boolean } = {}): Promise<{ file: string; summary: string }> {
  const first = resolveResultsFile(inputs[0]);
  if (inputs.length > 1 || looksLikeEpResults(readJson(first).parsed)) {
    const { file, runs } = await writeEpReport(inputs, out, opts);
    return { file, summary: `${runs.length} expert-parallel run${runs.length === 1 ? '' : 's'} from ${runs.map((r) => r.file).join(', ')}` };
  }
  const { file, results } = await writeReport(inputs[0], out, opts);
  return { file, summary: `${results.view.configs.length} configs from ${results.file}` };
}

function writeTarget(target: string, html: string): void {
  try {
    writeFileAtomic(target, html);
  } catch (e) {
    throw new ReportInputError(`cannot write ${target}: ${(e as Error).message}`, 'ERR_IO');
  }
}

/** The default output: report.html beside results.json (or ep_results.json). */
export function defaultReportPath(resultsFile: string): string {
  return path.join(path.dirname(resultsFile), 'report.html');
}

/** A file `target` may replace: none, or an earlier report. Its own input, or any other file, only
 * with `force` (the refusal names what would be lost). */
export function checkReportTarget(target: string, resultsFile: string, force: boolean): void {
  if (force || !fs.existsSync(target)) return;
  if (fs.statSync(target).isDirectory()) throw new ReportInputError(`--out ${target} is a folder; give the HTML file to write`, 'ERR_INVALID_OPTION');
  if (path.resolve(target) === path.resolve(resultsFile))
    throw new ReportInputError(
      `--out ${target} is the results file being read: the report would replace the results; choose another --out (or --force)`,
      'ERR_INVALID_OPTION',
    );
  const head = Buffer.alloc(64);
  const fd = fs.openSync(target, 'r');
  const n = fs.readSync(fd, head, 0, head.length, 0);
  fs.closeSync(fd);
  if (!/^\s*<!doctype html>/i.test(head.subarray(0, n).toString('utf8')))
    throw new ReportInputError(
      `--out ${target} exists and is not an HTML report (${fs.statSync(target).size} bytes would be lost); choose another --out (or --force)`,
      'ERR_INVALID_OPTION',
    );
}

export async function writeReport(input: string, out?: string, opts: { force?: boolean } = {}): Promise<{ file: string; results: LoadedResults }> {
  const results = loadResults(input);
  const target = path.resolve(out ?? defaultReportPath(results.file));
  checkReportTarget(target, results.file, opts.force ?? false);
  const html = await renderReportHtml(results.view, path.basename(results.file), results.raw);
  writeTarget(target, html);
  return { file: target, results };
}
