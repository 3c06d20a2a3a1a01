// The expert-parallel report page: one self-contained HTML document from one or more ep_results.json
// (one point per file on each chart: a batch-size sweep is several `moecap run --ep` runs). Same
// styles, chart renderer and number formatting as the CAP page; every figure comes from the files.
import type { EpRankSummary, EpResults } from '../ep_run';
import type { RankCeiling } from '../ep_utilisation';
import type { Unavailable } from '../cap/results';
import { bytes, escapeHtml as esc, percent, si, sig } from './format';
import { fact, figure, SCRIPT, STYLE } from './html_page';
import { epCommSpec, epImbalanceSpec, epUtilisationSpec, meanPhaseMs } from './charts/ep_specs';

export interface EpRun {
  /** the file's name as the page shows it */
  name: string;
  raw: string;
  results: EpResults;
}

const distinct = (runs: readonly EpRun[], f: (r: EpResults) => string) => [...new Set(runs.map((r) => f(r.results)))].map(esc).join(', ');
const ms = (ns: number) => sig(ns / 1e6);
const transport = (r: EpResults) =>
  `${(r.transport ?? 'mpi') === 'nccl' ? 'NCCL' : 'MPI'} (${r.mpi.runtime}), ${r.backend === 'cuda' ? 'GPU ranks' : 'CPU ranks'}`;
const placement = (r: EpResults) => `${r.placement}${r.redundant ? ` + ${r.redundant} replicas` : ''}`;

function header(runs: readonly EpRun[]): string {
  const links = runs
    .map(
      ({ results: r }) =>
        `T=${r.tokens}: latency ${sig(r.link.latencySeconds * 1e6)} µs (ping-pong 8 B), bandwidth ${si(r.link.bandwidthBytesPerSecond, 'B/s')} (ping-pong 4 MiB)` +
        (r.transport === 'nccl' ? ' over MPI: the rows went over NCCL, whose link is not calibrated' : ''),
    )
    .join('<br>');
  const offload = runs.some((r) => r.results.residentFraction !== null) ? distinct(runs, (r) => String(r.residentFraction ?? 1)) : null;
  return `<header>
<h1>moecap expert-parallel report: ${distinct(runs, (r) => r.preset)}</h1>
<p class="sub">from ${runs.map((r) => esc(r.name)).join(', ')} · ${runs.length} run${runs.length === 1 ? '' : 's'}</p>
<dl class="facts">
${fact(
  'ranks',
  distinct(runs, (r) => String(r.ranks)),
)}
${fact('placement', distinct(runs, placement))}
${fact('transport', distinct(runs, transport))}
${fact(
  'dtype',
  distinct(runs, (r) => r.dtype),
)}
${fact('preset', `${distinct(runs, (r) => `${r.preset}, ${r.layers} MoE layer${r.layers === 1 ? '' : 's'}, ${r.phase}`)}`)}
${fact(
  'tokens per pass',
  distinct(runs, (r) => String(r.tokens)),
)}
${offload ? fact('resident fraction (--offload)', offload) : ''}
${
  runs.some((r) => r.results.capacityFactor > 0)
    ? fact(
        'capacity factor',
        distinct(runs, (r) => String(r.capacityFactor)),
      )
    : ''
}
${fact('link (measured in the run)', links)}
</dl>
</header>`;
}

const ratioCell = (u: EpRankSummary['smbu'] | EpRankSummary['smfu']) =>
  'available' in u
    ? `<td class="unavailable" title="${esc(u.reason)}">unavailable</td>`
    : `<td${u.above1 ? ` class="above1" title="above 100%: ${esc(u.above1)}"` : ''}>${percent(u.value)}</td>`;

function ceilingCells(c: RankCeiling | Unavailable, p: EpRankSummary): string {
  if ('available' in c) return `<td class="unavailable" colspan="2" title="${esc(c.reason)}">unavailable: ${esc(c.reason)}</td>`;
  const peak =
    'available' in p.smfu
      ? `<td class="unavailable">${esc(p.smfu.reason)}</td>`
      : `<td>${p.smfu.peakDtype} ${si(p.smfu.peakFlops, p.smfu.peakDtype === 'int8' ? 'OP/s' : 'FLOP/s')}</td>`;
  return `<td>${si(Math.max(c.bandwidthBefore, c.bandwidthAfter), 'B/s')}</td>${peak}`;
}

function rankTable(runs: readonly EpRun[]): string {
  const rows = runs.flatMap(({ results: r }) =>
    r.perRank.map(
      (p) =>
        `<tr><td>${r.tokens}</td><td>${p.rank}</td><td>${p.experts.length}</td><td>${ms(p.dispatchNs)}</td><td>${ms(p.computeNs)}</td><td>${ms(p.combineNs)}</td><td>${ms(p.totalNs)}</td>` +
        `<td>${bytes(p.bytesSent)}</td><td>${bytes(p.bytesReceived)}</td>${ratioCell(p.smbu)}${ratioCell(p.smfu)}${ceilingCells(r.ceilings[p.rank], p)}</tr>`,
    ),
  );
  return `<table id="ep-ranks"><caption class="l">Per rank, means over the timed passes (all layers)</caption>
<tr><th>tokens per pass</th><th>rank</th><th>experts held</th><th>dispatch (ms)</th><th>expert compute (ms)</th><th>combine (ms)</th><th>total (ms)</th><th>sent</th><th>received</th><th>S-MBU</th><th>S-MFU</th><th title="the higher of the rank's windows before and after its passes">read bandwidth (its own)</th><th>compute peak (its own)</th></tr>
${rows.join('\n')}
</table>`;
}

function passTable(runs: readonly EpRun[]): string {
  const rows = runs.map(
    ({ results: r }) =>
      `<tr><td>${r.tokens}</td><td>${ms(r.passNs)}</td><td>${sig(meanPhaseMs(r, 'dispatch'))}</td><td>${percent(r.dispatchShare)}</td><td>${sig(meanPhaseMs(r, 'combine'))}</td><td>${percent(r.combineShare)}</td><td>${sig(r.imbalance)}</td><td>${sig(r.tokensPerSecond)}</td></tr>`,
  );
  return `<table id="ep-passes"><caption class="l">Per pass (means over the timed passes)</caption>
<tr><th>tokens per pass</th><th>pass (ms, slowest rank)</th><th>dispatch (ms, mean over ranks)</th><th>dispatch share</th><th>combine (ms, mean over ranks)</th><th>combine share</th><th>imbalance</th><th>tokens/s</th></tr>
${rows.join('\n')}
</table>`;
}

function aboveList(runs: readonly EpRun[]): string {
  const items = runs.flatMap(({ results: r }) =>
    r.perRank.flatMap((p) =>
      (
        [
          ['S-MBU', p.smbu],
          ['S-MFU', p.smfu],
        ] as const
      ).flatMap(([n, u]) =>
        'above1' in u && u.above1 ? [`<li class="above1">T=${r.tokens} rank ${p.rank}: ${n} ${percent(u.value)}, likely ${esc(u.above1)}</li>`] : [],
      ),
    ),
  );
  return items.length ? `<ul id="ep-above1">${items.join('')}</ul>` : '';
}

export async function renderEpReportHtml(runs: readonly EpRun[]): Promise<string> {
  const results = runs.map((r) => r.results);
  const util = epUtilisationSpec(results);
  const missing = [...new Set(results.flatMap((r) => r.perRank.flatMap((p) => [p.smbu, p.smfu]).flatMap((u) => ('available' in u ? [u.reason] : []))))];
  const charts = [
    await figure(
      'ep-comm',
      epCommSpec(results),
      'Dispatch (pack, counts, rows out) and combine (results back, shared expert, weighted sum) per pass: time as the mean over ranks, share of the slowest rank’s pass as the mean over ranks; one series per phase, one point per run.',
    ),
    await figure(
      'ep-imbalance',
      epImbalanceSpec(results),
      'Load imbalance: the slowest rank’s expert compute over the mean of the ranks’ (1 = even), one point per run.',
    ),
    util
      ? (await figure(
          'ep-utilisation',
          util,
          'Each rank’s S-MBU and S-MFU against the ceilings it measured itself in the same run (every rank at once); the dashed line is 100%; a triangle marks a point above it.' +
            (missing.length ? ` <span class="unavailable">Unavailable for some ranks: ${missing.map(esc).join('; ')}.</span>` : ''),
        )) + aboveList(runs)
      : `<p class="unavailable" id="ep-utilisation-absent">S-MBU and S-MFU unavailable: ${missing.map(esc).join('; ')}.</p>`,
  ];
  const embedded = runs.map((r, i) => `<script type="application/json" id="moecap-ep-results-${i}">${r.raw.replace(/</g, '\\u003c')}</script>`).join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>moecap expert-parallel report: ${distinct(runs, (r) => r.preset)}</title>
<style>${STYLE}</style>
</head>
<body>
${header(runs)}
<section id="ep-charts"><h2>Communication, imbalance and utilisation</h2>
${charts.join('\n')}
</section>
<section id="ep-tables"><h2>Figures</h2>
${passTable(runs)}
${rankTable(runs)}
</section>
<footer class="note">Generated by moecap report. Every figure on this page is read from ${runs.map((r) => esc(r.name)).join(', ')} (embedded below); charts rendered with Vega-Lite.</footer>
${embedded}
<script>${SCRIPT}</script>
</body>
</html>
`;
}
