// `moecap report`: read results.json (a file, or a run folder holding one), render the page, and
// write it atomically (lib/io/atomic_write), so a reader never sees half a report and bad input
// leaves no HTML file at all.
import * as fs from 'fs';
import * as path from 'path';
import { writeFileAtomic } from '../io/atomic_write';
import { renderReportHtml } from './html_page';
import { ReportInputError, toResultsView, type ResultsView } from './results_view';

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
  if (!fs.existsSync(file)) throw new ReportInputError(`${input}: folder has no results.json`, 'ERR_IO');
  return file;
}

export function loadResults(input: string): LoadedResults {
  const file = resolveResultsFile(input);
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
  return { file, raw, view: toResultsView(parsed, path.basename(file)) };
}

/** The default output: report.html beside results.json. */
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
  try {
    writeFileAtomic(target, html);
  } catch (e) {
    throw new ReportInputError(`cannot write ${target}: ${(e as Error).message}`, 'ERR_IO');
  }
  return { file: target, results };
}
