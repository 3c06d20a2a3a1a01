// The report of a real tiny run: every chart is an SVG with its marks, the Pareto tables list
// every config, the header says which peaks and counters, and the page loads nothing from outside.
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { makeFixtureResults, writeFixture } from './fixture';
import { writeReport } from '../../lib/report/write_report';
import { toResultsView, type ResultsView } from '../../lib/report/results_view';
import { paretoFrontier } from '../../lib/report/cap_axes';
import { sig } from '../../lib/report/format';

const BIN = path.join(__dirname, '..', '..', 'bin', 'moecap.js');

let dir: string;
let html: string;
let view: ResultsView;

function figure(id: string): string {
  const m = html.match(new RegExp(`<figure class="chart" id="chart-${id}"[^>]*>([\\s\\S]*?)</figure>`));
  if (!m) throw new Error(`no figure chart-${id}`);
  return m[1];
}

function count(s: string, re: RegExp): number {
  return (s.match(re) ?? []).length;
}

function tableRows(id: string): string[] {
  const m = html.match(new RegExp(`<table id="${id}">([\\s\\S]*?)</table>`));
  if (!m) throw new Error(`no table ${id}`);
  return m[1].split('<tr>').slice(2);  // [0]: caption, [1]: header
}

beforeAll(async () => {
  dir = await writeFixture();
  const { file } = await writeReport(dir);
  expect(file).toBe(path.join(dir, 'report.html'));
  html = fs.readFileSync(file, 'utf8');
  view = toResultsView(JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8')));
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('the page is one self-contained document', () => {
  expect(html.startsWith('<!doctype html>')).toBe(true);
  expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=|<img[^>]+src="(?!data:)|url\(http|@import/i);
  expect(html).toContain('<style>');
  const ids = [...html.matchAll(/\bid="([^"]+)"/g)].map((m) => m[1]);
  expect(new Set(ids).size).toBe(ids.length);  // SVG clip-path ids must not collide between charts
  // No temporary file left beside the report.
  expect(fs.readdirSync(dir).sort()).toEqual(['report.html', 'results.json']);
});

test('the header names the preset, machine, peaks used and counters', () => {
  const header = html.slice(0, html.indexOf('</header>'));
  expect(header).toContain(`moecap CAP report: ${view.model.preset}`);
  expect(header).toContain(view.machine.cpu);
  expect(header).toContain(`<dt>ISA</dt><dd>${view.machine.isa}</dd>`);
  expect(header).toContain(`<dt>moecap version</dt><dd>${view.moecapVersion}</dd>`);
  expect(header).toContain(view.createdAt);
  expect(header).toMatch(/peaks used<\/dt><dd><b>datasheet<\/b>/);
  for (const c of view.counters) {
    const cls = c.available ? 'available' : 'unavailable';
    expect(header).toContain(`<span class="${cls}" title="`);
    expect(header).toMatch(new RegExp(`<span class="${cls}"[^>]*>${c.name}</span>`));
  }
  // This machine lacks hardware perf events: they must read as unavailable, with the reason.
  expect(view.counters.some((c) => !c.available)).toBe(true);
  expect(header).toContain('unavailable: ');
});

test('each chart is an SVG with its marks', () => {
  const n = view.configs.length;
  const frontier = paretoFrontier(view).frontier;
  // Radar: more than 8 configs → one polygon per Pareto-optimal config, three vertices each.
  const radar = figure('radar');
  expect(radar).toMatch(/^<svg[^>]*class="marks"/);
  expect(count(radar, /aria-roledescription="point"/g)).toBe(3 * frontier.length);
  for (const axis of ['Cost', 'Accuracy', 'Performance']) expect(radar).toContain(`>${axis}</text>`);
  // Roofline: every config as a point, ceilings as lines (memory + one compute peak per dtype in the file).
  const roof = figure('roofline');
  expect(count(roof, /aria-roledescription="point"/g)).toBe(n);
  expect(count(roof, /aria-roledescription="line mark" [^>]*d="M/g)).toBe(1 + Object.keys(view.peaks.flops).length);
  expect(roof).toMatch(/f32 peak 210 GFLOP\/s/);
  expect(roof).toMatch(/memory 33 GB\/s/);
  // Throughput: tokens/s for every config, TPOT for the decode ones.
  const decode = view.configs.filter((c) => c.tpotMs !== null).length;
  expect(count(figure('throughput'), /aria-roledescription="point"/g)).toBe(n + decode);
  // S-MBU for every config, S-MFU only where the file has a compute peak.
  const withSmfu = view.configs.filter((c) => c.smfu !== null).length;
  expect(count(figure('utilisation'), /aria-roledescription="point"/g)).toBe(n + withSmfu);
  expect(html).toMatch(/S-MFU unavailable for bf16, int8/);
  // Distinct experts: measured points beside the uniform-routing curve.
  const ex = figure('experts');
  expect(count(ex, /aria-roledescription="point"/g)).toBe(n);
  expect(ex).toContain(`E·(1−(1−k/E)^T), E=${view.model.experts}, k=${view.model.topK}`);
  // No config ran offloaded: the page says so instead of drawing an empty chart.
  expect(html).not.toContain('id="chart-offload"');
  expect(html).toContain('id="offload-absent"');
});

test('the points carry the figures of the results file', () => {
  for (const c of view.configs) {
    expect(figure('throughput')).toContain(`aria-label="${c.id}: ${c.tokensPerSecond.toPrecision(4)} tokens/s`);
    expect(figure('experts')).toContain(`${c.distinctExpertsPerLayer.toPrecision(3)} distinct experts per layer at T = ${c.tokensPerPass}`);
  }
});

test('the Pareto tables list the frontier and each dominated config with one that dominates it', () => {
  const f = paretoFrontier(view);
  const front = tableRows('pareto-frontier');
  const dominated = tableRows('pareto-dominated');
  expect(front).toHaveLength(f.frontier.length);
  expect(front.length + dominated.length).toBe(view.configs.length);
  const byId = new Map(view.configs.map((c) => [c.id, c]));
  for (const row of dominated) {
    const [, id, by] = row.match(/<td class="l">([^<]+)<\/td><td class="l">([^<]+)<\/td>/)!;
    const a = byId.get(by)!, b = byId.get(id)!;
    expect(f.frontier.includes(id)).toBe(false);
    // the named config really dominates: same phase, no worse anywhere, better somewhere
    expect(a.phase).toBe(b.phase);
    expect(a.costPerMillionTokens!).toBeLessThanOrEqual(b.costPerMillionTokens!);
    expect(a.tokensPerSecond).toBeGreaterThanOrEqual(b.tokensPerSecond);
    expect(1 - a.accuracy.relativeL2).toBeGreaterThanOrEqual(1 - b.accuracy.relativeL2);
    expect(row).toContain(`$${sig(b.costPerMillionTokens)}`);
    expect(row).toContain(`<td>${sig(b.tokensPerSecond)}</td>`);
  }
  for (const row of front) {
    const id = row.match(/<td class="l">([^<]+)<\/td>/)![1];
    const c = byId.get(id)!;
    expect(row).toContain(`<td>${sig(c.accuracy.relativeL2)}</td>`);
    expect(row).toContain(`<td>${sig(c.tpotMs, 'n/a')}</td>`);
  }
});

test('a small sweep draws one radar polygon per config', async () => {
  const small = await writeFixture(await makeFixtureResults({ dtypes: ['f32'], batches: [1, 8], repeats: 3 }));
  try {
    const { file } = await writeReport(path.join(small, 'results.json'), path.join(small, 'small.html'));
    const page = fs.readFileSync(file, 'utf8');
    const radar = page.match(/<figure class="chart" id="chart-radar"[^>]*>([\s\S]*?)<\/figure>/)![1];
    expect(count(radar, /aria-roledescription="point"/g)).toBe(3 * 4);  // 2 decode + 2 prefill configs
    expect(page).toContain('one polygon per config');
  } finally {
    fs.rmSync(small, { recursive: true, force: true });
  }
});

test('offload figures, when present, get their chart', async () => {
  // Offload is not in the engine yet: these figures are made up for this structural check only.
  const r = (await makeFixtureResults({ dtypes: ['f32'], batches: [1, 4], repeats: 2 })) as { configs: Record<string, unknown>[]; peaks: Record<string, unknown> };
  r.peaks.slowTierBandwidth = 5e9;
  r.configs.forEach((c, i) => (c.offload = { fraction: 0.5, cacheExperts: 4 + 4 * i, hitRate: 0.5 + 0.1 * i, stallMs: 1 - 0.2 * i }));
  const d = await writeFixture(r);
  try {
    const { file } = await writeReport(d);
    const page = fs.readFileSync(file, 'utf8');
    const off = page.match(/<figure class="chart" id="chart-offload"[^>]*>([\s\S]*?)<\/figure>/)![1];
    expect(count(off, /aria-roledescription="point"/g)).toBe(2 * r.configs.length);
    expect(page).toMatch(/slow tier 5 GB\/s/);
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});

test('moecap report on the command line writes --out and says where', () => {
  const out = path.join(dir, 'cli.html');
  const text = execFileSync(process.execPath, [BIN, 'report', dir, '--out', out], { encoding: 'utf8' });
  expect(text).toMatch(new RegExp(`^wrote ${out.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} \\(${view.configs.length} configs`));
  expect(fs.readFileSync(out, 'utf8')).toContain('id="chart-roofline"');
  fs.rmSync(out);
});
