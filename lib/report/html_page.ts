// The report page: one self-contained HTML document (styles, the SVG charts and a small script
// inlined; nothing is fetched when it is viewed). Every figure on it comes from the ResultsView.
import type { TopLevelSpec } from 'vega-lite';
import type { CapPhaseView, ConfigView, ResultsView } from './results_view';
import { reportCap, type ReportCap } from './cap_axes';
import { bytes, escapeHtml as esc, money, percent, si, sig } from './format';
import { renderSvg } from './render_svg';
import { FEW_SAMPLES } from '../cap/table';
import { radarRows, radarSpec } from './charts/radar_spec';
import { rooflineSpec } from './charts/roofline_spec';
import { expertsSpec, offloadSpec, throughputSpec, utilisationSpec } from './charts/sweep_specs';

/** Above this many configs the radar shows only the Pareto-optimal ones. */
export const RADAR_MAX_POLYGONS = 8;

export const STYLE = `
body { font: 14px/1.45 Helvetica, Arial, sans-serif; color: #222; margin: 24px auto; max-width: 1200px; padding: 0 16px; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; } h3 { font-size: 15px; margin: 16px 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.sub { color: #666; margin: 0 0 12px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 8px 0; }
dl.facts dt { font-weight: bold; color: #444; } dl.facts dd { margin: 0; }
figure.chart { margin: 8px 0 16px; display: inline-block; vertical-align: top; }
figure.chart figcaption { color: #666; font-size: 12px; max-width: 760px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; } th { background: #f5f5f5; }
td.l, th.l { text-align: left; }
.unavailable { color: #a33; } .available { color: #282; } .warning, .above1 { color: #b35900; } .few { color: #b35900; }
.note { color: #666; font-size: 12px; }
`;

// Vega's SVG carries each point's figures as aria-label; this turns them into hover titles.
export const SCRIPT = `
document.querySelectorAll('figure.chart svg [role="graphics-symbol"][aria-label]').forEach(function (el) {
  var t = document.createElementNS('http://www.w3.org/2000/svg', 'title');
  t.textContent = el.getAttribute('aria-label');
  el.appendChild(t);
});
`;

export function fact(name: string, value: string): string {
  return `<dt>${esc(name)}</dt><dd>${value}</dd>`;
}

function header(v: ResultsView, sourceName: string): string {
  const mc = v.machine,
    p = v.peaks;
  const available = v.counters.filter((c) => c.available);
  const unavailable = v.counters.filter((c) => !c.available);
  const flops =
    Object.entries(p.flops)
      .map(([d, f]) => {
        const det = p.detail2[d];
        return `${esc(d === 'int8' ? 'int8/int4' : d)} ${si(f, d === 'int8' ? 'OP/s' : 'FLOP/s')}${det ? ` <span class="note">(${esc(det.statistic)})</span>` : ''}`;
      })
      .join(', ') || 'none given';
  const counterList = (cs: typeof v.counters, cls: string, why: (c: (typeof v.counters)[0]) => string | null) =>
    cs.length === 0
      ? `<span class="note">${v.countersNote ? esc(v.countersNote) : 'none'}</span>`
      : cs.map((c) => `<span class="${cls}" title="${esc(why(c) ?? '')}">${esc(c.name)}</span>`).join(', ');
  const peaks =
    p.source === 'unavailable'
      ? `<b class="unavailable">unavailable</b> (${esc(p.detail)}): S-MBU, S-MFU and the roofline are unavailable`
      : (p.projected ? `<b class="projected">${esc(p.projected)}</b><br>` : '') +
        `<b>${p.source}</b> (${esc(p.detail)}): memory ${si(p.memoryBandwidth, 'B/s', 'not given')}${p.detail2.memoryBandwidth ? ` <span class="note">(${esc(p.detail2.memoryBandwidth.statistic)})</span>` : ''}, slow tier ${si(p.slowTierBandwidth, 'B/s', 'not measured')}, compute ${flops}` +
        p.warnings.map((w) => `<br><span class="warning">warning: ${esc(w)}</span>`).join('');
  return `<header>
<h1>moecap CAP report: ${esc([...new Set(v.models.map((md) => md.preset))].join(', '))}</h1>
<p class="sub">from ${esc(sourceName)} · ${v.configs.length} configs · run ${esc(v.status)}${v.error ? `: <span class="unavailable">${esc(v.error)}</span>` : ''}</p>
<dl class="facts">
${fact(v.models.length > 1 ? 'model presets' : 'model preset', v.models.map((md) => `${esc(md.preset)}: ${md.layers} MoE layer${md.layers === 1 ? '' : 's'}, H=${md.hidden}, F=${md.intermediate}, E=${md.experts}, k=${md.topK}`).join('<br>'))}
${fact('machine', `${esc(mc.cpu)}${mc.gpu ? ' + ' + esc(mc.gpu) : ' (no GPU)'}, ${mc.cores ?? 'unknown'} hardware threads, ${bytes(mc.memoryBytes)} memory${mc.platform ? `; ${esc(mc.platform)}` : ''}`)}
${fact('ISA', `${esc(mc.isa)}${mc.bestIsa ? ` (best on this CPU: ${esc(mc.bestIsa)})` : ''}`)}
${fact('backend', esc(mc.backend))}
${fact('moecap version', esc(v.moecapVersion))}
${fact('date', `${esc(v.createdAt)}${v.updatedAt !== v.createdAt ? ` (updated ${esc(v.updatedAt)})` : ''}`)}
${fact('peaks used', peaks)}
${fact(
  'counters available',
  counterList(available, 'available', (c) => c.source),
)}
${fact(
  'counters unavailable',
  counterList(unavailable, 'unavailable', (c) => c.reason),
)}
</dl>
${
  unavailable.length
    ? `<details><summary class="note">why counters are unavailable</summary><table><tr><th class="l">counter</th><th class="l">reason</th></tr>${unavailable
        .map((c) => `<tr><td class="l">${esc(c.name)}</td><td class="l unavailable">unavailable: ${esc(c.reason ?? '')}</td></tr>`)
        .join('')}</table></details>`
    : ''
}
</header>`;
}

function describeConfig(c: ConfigView): string {
  return (
    `${c.id}: ${c.phase}, ${c.dtype}, batch ${c.batch}${c.residentFraction !== null && c.residentFraction < 1 ? `, resident fraction ${c.residentFraction}` : ''}; ` +
    `cost ${money(c.costPerMillionTokens)}/1M tokens; rel L2 ${c.accuracy ? sig(c.accuracy.relativeL2) : 'unavailable'}` +
    (c.task ? `, ${c.task.name} ${sig(c.task.value)}` : '') +
    `; ${sig(c.tokensPerSecond)} tokens/s; TPOT ${c.tpotMs === null ? 'n/a' : sig(c.tpotMs) + ' ms'}`
  );
}

export async function figure(id: string, spec: TopLevelSpec, caption: string): Promise<string> {
  const svg = await renderSvg(spec);
  return `<figure class="chart" id="chart-${id}" data-chart="${id}">${svg}<figcaption>${caption}</figcaption></figure>`;
}

function configCells(c: ConfigView): string {
  const a = c.accuracy;
  const na = `<td class="unavailable" title="${esc(c.accuracyReason ?? '')}">unavailable</td>`;
  return [
    `<td class="l">${esc(c.dtype)}</td><td>${c.batch}</td><td>${c.residentFraction ?? 'n/a'}</td>`,
    c.costPerMillionTokens === null ? '<td class="unavailable">unavailable</td>' : `<td>${money(c.costPerMillionTokens)}</td>`,
    a ? `<td>${sig(a.relativeL2)}</td><td>${sig(a.cosine)}</td><td>${percent(a.routingAgreement)}</td><td>${percent(a.dropRate)}</td>` : na + na + na + na,
    `<td>${c.task ? `${esc(c.task.name)} ${sig(c.task.value)} <span class="note">(${esc(c.task.source)})</span>` : '<span class="note">not given</span>'}</td>`,
    `<td>${sig(c.tpotMs, 'n/a')}</td><td>${sig(c.ttftMs, 'n/a')}</td>`,
    c.ttftP90Ms === null
      ? '<td>n/a</td>'
      : `<td${c.samples < FEW_SAMPLES ? ' class="few" title="fewer than 20 samples: p90/p99 rest on few samples"' : ''}>${sig(c.ttftP90Ms)} / ${sig(c.ttftP99Ms)} (n=${c.samples}${c.samples < FEW_SAMPLES ? ', few' : ''})</td>`,
    `<td>${sig(c.tokensPerSecond)}</td>`,
  ].join('');
}

const CONFIG_HEAD =
  '<th class="l">dtype</th><th>batch</th><th title="what moecap run --offload takes: 1 = every expert resident">resident fraction (--offload)</th><th>cost / 1M tokens</th>' +
  '<th>rel. L2 vs fp64</th><th>cosine</th><th>routing agreement</th><th>drop rate</th><th>task accuracy</th>' +
  '<th>TPOT (ms)</th><th>TTFT (ms)</th><th>TTFT p90 / p99 (ms, n)</th><th>tokens/s</th>';

function paretoTables(v: ResultsView, cap: ReportCap): string {
  const byId = new Map(v.configs.map((c) => [c.id, c]));
  const parts = cap.phases.map((ph) => {
    const front = ph.frontier.map((id) => `<tr><td class="l">${esc(id)}</td>${configCells(byId.get(id)!)}</tr>`).join('\n');
    const dominated = Object.entries(ph.dominatedBy)
      .map(([id, by]) => `<tr><td class="l">${esc(id)}</td><td class="l">${esc(by)}</td>${configCells(byId.get(id)!)}</tr>`)
      .join('\n');
    const excluded = ph.excluded.length
      ? `<p class="note">Not compared (${ph.phase}): ${ph.excluded.map((e) => `${esc(e.id)}: ${esc(e.reason)}`).join('; ')}.</p>`
      : '';
    return `<h3>${ph.phase}</h3>
<table id="pareto-frontier-${ph.phase}"><caption class="l">Pareto frontier, ${ph.phase} (${ph.frontier.length} of ${ph.points.length} configs)</caption>
<tr><th class="l">config</th>${CONFIG_HEAD}</tr>
${front}
</table>
<table id="pareto-dominated-${ph.phase}"><caption class="l">Dominated ${ph.phase} configs, each with a frontier config that dominates it</caption>
<tr><th class="l">config</th><th class="l">dominated by</th>${CONFIG_HEAD}</tr>
${dominated || `<tr><td class="l" colspan="14">none: every config is on the frontier</td></tr>`}
</table>${excluded}`;
  });
  const costBases = [...new Set(v.configs.map((c) => c.costBasis).filter((b): b is string => b !== null))];
  return `${parts.join('\n')}
<p class="note">A config is dominated when another of the same phase has no higher cost, no lower accuracy and no lower tokens/s, and is better in one.
Axes: cost = ${esc(cap.costAxis)}; accuracy = ${esc(cap.accuracyAxis)}; performance = ${esc(cap.performanceAxis)}.
${cap.origin === 'report' ? esc(cap.normalisation) + '.' : ''}${costBases.length ? ' Cost basis: ' + costBases.map(esc).join('; ') + '.' : ''}</p>`;
}

function radarLegend(phase: CapPhaseView, shown: Set<string>, cap: ReportCap): string {
  const raw = new Map(phase.points.map((p) => [p.id, p]));
  const rows = phase.radar
    .filter((r) => shown.has(r.id))
    .map((r) => {
      const p = raw.get(r.id)!;
      return (
        `<tr><td class="l">${esc(r.id)}</td><td>${money(p.cost)}</td><td>${sig(p.accuracy)}</td><td>${sig(p.performance)}</td>` +
        `<td>${sig(r.cost)}</td><td>${sig(r.accuracy)}</td><td>${sig(r.performance)}</td></tr>`
      );
    });
  return `<table id="radar-values-${phase.phase}"><caption class="l">Radar values (${phase.phase}): raw and normalised</caption>
<tr><th class="l">config</th><th title="${esc(cap.costAxis)}">cost / 1M tokens</th><th title="${esc(cap.accuracyAxis)}">accuracy</th><th>tokens/s</th><th>Cost axis</th><th>Accuracy axis</th><th>Performance axis</th></tr>
${rows.join('\n')}</table>`;
}

async function radarSection(v: ResultsView, cap: ReportCap): Promise<string> {
  const byId = new Map(v.configs.map((c) => [c.id, c]));
  const out: string[] = [];
  for (const ph of cap.phases) {
    let ids = ph.radar.map((r) => r.id);
    let which = 'one polygon per config';
    if (ids.length > RADAR_MAX_POLYGONS) {
      const front = new Set(ph.frontier);
      ids = ids.filter((id) => front.has(id));
      which = `the ${ids.length} Pareto-optimal configs of ${ph.radar.length}`;
    }
    const shown = new Set(ids);
    const excluded = ph.excluded.length ? ` Not on the radar: ${ph.excluded.map((e) => `${esc(e.id)} (${esc(e.reason)})`).join(', ')}.` : '';
    if (ids.length === 0) {
      out.push(`<p class="unavailable">${ph.phase}: no config has all three CAP figures; the radar is unavailable.${excluded}</p>`);
      continue;
    }
    const rows = radarRows(
      ph.radar.filter((r) => shown.has(r.id)),
      (id) => describeConfig(byId.get(id)!),
    );
    out.push(
      await figure(
        `radar-${ph.phase}`,
        radarSpec(rows, `CAP radar, ${ph.phase}`),
        `${which}; 1 = best on each axis (${cap.origin === 'runner' ? 'normalised by the CAP runner' : 'normalised by the report'}: ${esc(cap.normalisation)}).${excluded}`,
      ),
      radarLegend(ph, shown, cap),
    );
  }
  return out.join('\n');
}

export async function renderReportHtml(v: ResultsView, sourceName: string, rawJson: string): Promise<string> {
  const cap = reportCap(v);
  const radar = await radarSection(v, cap);
  const roofSpec = rooflineSpec(v);
  const roofline = roofSpec
    ? await figure(
        'roofline',
        roofSpec,
        `Achieved FLOP/s and bytes/s of each config (S-MFU's FLOP count × tokens/s; S-MBU's byte count ÷ median time) against the ${v.peaks.source} ceilings` +
          `${v.peaks.slowTierBandwidth !== null && v.configs.some((c) => c.residentFraction !== null && c.residentFraction < 1) ? ' (memory, slow tier' : ' (memory'} and the compute peak per dtype; int8/int4 in OP/s). Points on or near the memory slope are memory-bound; ` +
          'a point above it read faster than that ceiling (its working set fit in cache).',
      )
    : `<p class="unavailable" id="roofline-absent">Roofline unavailable: ${esc(v.configs.find((c) => c.smbuReason)?.smbuReason ?? 'no config has both a byte and a FLOP count')}.</p>`;
  const smfuMissing = [...new Set(v.configs.filter((c) => c.smfu === null).map((c) => `${c.dtype} (${c.smfuReason ?? 'no figure'})`))];
  const util = utilisationSpec(v);
  const above = v.configs.flatMap((c) => [
    ...(c.smbuAbove1 ? [`${c.id}: S-MBU ${percent(c.smbu)}: ${c.smbuAbove1}`] : []),
    ...(c.smfuAbove1 ? [`${c.id}: S-MFU ${percent(c.smfu)}: ${c.smfuAbove1}`] : []),
  ]);
  const aboveList = above.length ? `<ul class="above1" id="above-100">${above.map((a) => `<li>above 100%: ${esc(a)}</li>`).join('')}</ul>` : '';
  const sweeps = [
    await figure('throughput', throughputSpec(v), 'Tokens/s (all configs) and time per output token (decode configs, median) versus batch size.'),
    util
      ? (await figure(
          'utilisation',
          util,
          `S-MBU and S-MFU by MoE-CAP's formulas against the ${v.peaks.source} peaks (S-MBU: against the read bandwidth measured around each config when the run measured it); ` +
            'the dashed line is 100%; a triangle marks a point above it.' +
            (smfuMissing.length ? ` <span class="unavailable">S-MFU unavailable for ${smfuMissing.map(esc).join(', ')}.</span>` : ''),
        )) + aboveList
      : `<p class="unavailable" id="utilisation-absent">S-MBU and S-MFU unavailable: ${esc(v.peaks.detail)}.</p>`,
    await figure(
      'experts',
      expertsSpec(v),
      'Distinct experts per layer A measured from the routing (mean over layers), beside the uniform-routing expectation.',
    ),
  ];
  const off = offloadSpec(v);
  sweeps.push(
    off
      ? await figure('offload', off, 'Offload: fast-tier hit rate and stall time per pass versus the number of experts cached.')
      : '<p class="note" id="offload-absent">No offload hit rate or stall figures in this results file (no config ran with a slow tier).</p>',
  );
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>moecap CAP report: ${esc([...new Set(v.models.map((md) => md.preset))].join(', '))}</title>
<style>${STYLE}</style>
</head>
<body>
${header(v, sourceName)}
<section id="cap"><h2>CAP radar</h2>
${radar}
</section>
<section id="roofline"><h2>Roofline</h2>
${roofline}
</section>
<section id="sweep"><h2>Sweep</h2>
${sweeps.join('\n')}
</section>
<section id="pareto"><h2>Pareto frontier</h2>
${paretoTables(v, cap)}
</section>
<footer class="note">Generated by moecap report. Every figure on this page is read from ${esc(sourceName)} (embedded below); charts rendered with Vega-Lite.</footer>
<script type="application/json" id="moecap-results">${rawJson.replace(/</g, '\\u003c')}</script>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
