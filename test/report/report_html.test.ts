// The report of a real tiny CAP run: every chart is an SVG with its marks, the Pareto tables list
// every config with one that dominates it, the header says which peaks and counters, and the page
// loads nothing from outside.
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { readResults, runFixture, writeResults, removeFixtureProfile } from './fixture';
import { writeReport } from '../../lib/report/write_report';
import { toResultsView, type ResultsView } from '../../lib/report/results_view';
import { money, sig } from '../../lib/report/format';
import { reportCap } from '../../lib/report/cap_axes';

const BIN = path.join(__dirname, '..', '..', 'bin', 'moecap.js');

let dir: string;
let html: string;
let view: ResultsView;

function figureIn(page: string, id: string): string {
  const m = page.match(new RegExp(`<figure class="chart" id="chart-${id}"[^>]*>([\\s\\S]*?)</figure>`));
  if (!m) throw new Error(`no figure chart-${id}`);
  return m[1];
}
const figure = (id: string) => figureIn(html, id);

function count(s: string, re: RegExp): number {
  return (s.match(re) ?? []).length;
}

function tableRows(id: string): string[] {
  const m = html.match(new RegExp(`<table id="${id}">([\\s\\S]*?)</table>`));
  if (!m) throw new Error(`no table ${id}`);
  return m[1].split('<tr>').slice(2); // [0]: caption, [1]: header
}

beforeAll(async () => {
  dir = await runFixture();
  const { file } = await writeReport(dir);
  expect(file).toBe(path.join(dir, 'report.html'));
  html = fs.readFileSync(file, 'utf8');
  view = toResultsView(readResults(dir));
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
  removeFixtureProfile();
});

test('the page is one self-contained document', () => {
  expect(html.startsWith('<!doctype html>')).toBe(true);
  expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=|<img[^>]+src="(?!data:)|url\(http|@import/i);
  expect(html).toContain('<style>');
  const ids = [...html.matchAll(/\bid="([^"]+)"/g)].map((m) => m[1]);
  expect(new Set(ids).size).toBe(ids.length); // SVG clip-path ids must not collide between charts
  expect(fs.readdirSync(dir).filter((f) => f.includes('.tmp'))).toEqual([]);
});

test('the header names the preset, machine, ISA, version, date, peaks used and counters', () => {
  const header = html.slice(0, html.indexOf('</header>'));
  expect(header).toContain('moecap CAP report: tiny');
  expect(header).toContain(`H=${view.model.hidden}, F=${view.model.intermediate}, E=${view.model.experts}, k=${view.model.topK}`);
  expect(header).toContain(view.machine.cpu);
  expect(header).toMatch(/<dt>ISA<\/dt><dd>(avx512|avx2|generic)/);
  expect(header).toContain(`<dt>moecap version</dt><dd>${view.moecapVersion}</dd>`);
  expect(header).toContain(view.createdAt);
  expect(header).toMatch(/peaks used<\/dt><dd><b>calibrated<\/b> \(report-test-fixture: report test fixture: peaks from moecap layer passes/);
  expect(view.counters.length).toBeGreaterThan(0);
  for (const c of view.counters) expect(header).toMatch(new RegExp(`<span class="${c.available ? 'available' : 'unavailable'}"[^>]*>${c.name}</span>`));
  // This machine lacks hardware perf events: they read as unavailable, with the reason.
  expect(view.counters.some((c) => !c.available)).toBe(true);
  expect(header).toContain('unavailable: ');
});

test('each chart is an SVG with its marks', () => {
  const n = view.configs.length;
  for (const phase of ['decode', 'prefill'] as const) {
    // <= 8 configs a phase: one polygon per config, three vertices each.
    const radar = figure(`radar-${phase}`);
    expect(radar).toMatch(/^<svg[^>]*class="marks"/);
    const inPhase = view.configs.filter((c) => c.phase === phase).length;
    expect(count(radar, /aria-roledescription="point"/g)).toBe(3 * inPhase);
    for (const axis of ['Cost', 'Accuracy', 'Performance']) expect(radar).toContain(`>${axis}</text>`);
    expect(tableRows(`radar-values-${phase}`)).toHaveLength(inPhase);
  }
  // Roofline: every config as a point; ceilings: memory + one compute peak per dtype with a peak.
  const roof = figure('roofline');
  expect(count(roof, /aria-roledescription="point"/g)).toBe(n);
  expect(count(roof, /aria-roledescription="line mark" [^>]*d="M/g)).toBe(1 + Object.keys(view.peaks.flops).length);
  expect(roof).toMatch(/f32 peak [\d.]+ GFLOP\/s/);
  expect(roof).toMatch(/memory [\d.]+ GB\/s/);
  // Throughput: tokens/s for every config, TPOT for the decode ones.
  const decode = view.configs.filter((c) => c.tpotMs !== null).length;
  expect(decode).toBe(n / 2);
  expect(count(figure('throughput'), /aria-roledescription="point"/g)).toBe(n + decode);
  // S-MBU and S-MFU for every config (the profile has f32 and bf16 peaks), plus a triangle on each
  // figure above 100% (a measured run on a noisy VM can land there: it is marked, not hidden).
  const above = view.configs.filter((c) => (c.smbu ?? 0) > 1).length + view.configs.filter((c) => (c.smfu ?? 0) > 1).length;
  expect(count(figure('utilisation'), /aria-roledescription="point"/g)).toBe(2 * n + above);
  // Distinct experts: measured points beside the uniform-routing curve drawn from E and k.
  const ex = figure('experts');
  expect(count(ex, /aria-roledescription="point"/g)).toBe(n);
  expect(ex).toContain(`E·(1−(1−k/E)^T), E=${view.model.experts}, k=${view.model.topK}`);
  // No config ran offloaded: the page says so instead of drawing an empty chart.
  expect(html).not.toContain('id="chart-offload"');
  expect(html).toContain('id="offload-absent"');
});

test('the points carry the figures of the results file', () => {
  const raw = readResults(dir) as {
    configs: Array<{ id: string; tokensPerSecond: number; routing: { meanDistinctExperts: number; expectedUniform: number } }>;
  };
  for (const c of raw.configs) {
    expect(figure('throughput')).toContain(`aria-label="${c.id}: ${c.tokensPerSecond.toPrecision(4)} tokens/s`);
    expect(figure('experts')).toContain(`${c.routing.meanDistinctExperts.toPrecision(3)} distinct experts per layer`);
    expect(figure('experts')).toContain(`(uniform routing: ${c.routing.expectedUniform.toPrecision(3)})`);
  }
});

test('the Pareto tables list the frontier and each dominated config with one that dominates it', () => {
  const byId = new Map(view.configs.map((c) => [c.id, c]));
  for (const ph of view.cap!.phases) {
    const front = tableRows(`pareto-frontier-${ph.phase}`);
    const dominated = tableRows(`pareto-dominated-${ph.phase}`).filter((r) => !r.includes('none: every config'));
    expect(front).toHaveLength(ph.frontier.length);
    expect(front.length + dominated.length).toBe(view.configs.filter((c) => c.phase === ph.phase).length);
    const point = new Map(ph.points.map((p) => [p.id, p]));
    for (const row of dominated) {
      const [, id, by] = row.match(/<td class="l">([^<]+)<\/td><td class="l">([^<]+)<\/td>/)!;
      expect(ph.frontier).toContain(by);
      expect(ph.dominatedBy[id]).toBe(by);
      const a = point.get(by)!,
        b = point.get(id)!;
      // the named config really dominates: no worse anywhere
      expect(a.cost).toBeLessThanOrEqual(b.cost);
      expect(a.accuracy).toBeGreaterThanOrEqual(b.accuracy);
      expect(a.performance).toBeGreaterThanOrEqual(b.performance);
      expect(row).toContain(`<td>${money(byId.get(id)!.costPerMillionTokens)}</td>`);
      expect(row).toContain(`<td>${sig(byId.get(id)!.tokensPerSecond)}</td>`);
    }
    for (const row of front) {
      const c = byId.get(row.match(/<td class="l">([^<]+)<\/td>/)![1])!;
      expect(row).toContain(`<td>${sig(c.accuracy!.relativeL2)}</td>`);
      expect(row).toContain(`<td>${sig(c.tpotMs, 'n/a')}</td>`);
      expect(row).toContain(`<td>${sig(c.ttftMs, 'n/a')}</td>`);
    }
  }
});

test('more than 8 configs in a phase: the radar shows the Pareto-optimal ones', async () => {
  const d = await runFixture({ phases: ['decode'], dtypes: ['f32'], batch: [1, 2, 3, 4, 6, 8, 12, 16, 32], repeats: 2 });
  try {
    const { file } = await writeReport(d);
    const page = fs.readFileSync(file, 'utf8');
    const frontier = toResultsView(readResults(d)).cap!.phases[0].frontier;
    expect(count(figureIn(page, 'radar-decode'), /aria-roledescription="point"/g)).toBe(3 * frontier.length);
    expect(page).toContain(`the ${frontier.length} Pareto-optimal configs of 9`);
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});

test('without peaks, S-MBU, S-MFU and the roofline read as unavailable', async () => {
  // No profile: neither given, nor in the environment, nor in (an empty) cache folder.
  const env = { xdg: process.env.XDG_CACHE_HOME, profile: process.env.MOECAP_HARDWARE_PROFILE };
  const cache = fs.mkdtempSync(path.join(require('os').tmpdir(), 'moecap-cache-'));
  process.env.XDG_CACHE_HOME = cache;
  delete process.env.MOECAP_HARDWARE_PROFILE;
  let d = '';
  try {
    d = await runFixture({ hardwareProfile: null, phases: ['decode'], dtypes: ['f32'], batch: [1, 4], repeats: 2 });
    const page = fs.readFileSync((await writeReport(d)).file, 'utf8');
    expect(page).toMatch(/peaks used<\/dt><dd><b class="unavailable">unavailable<\/b> \(no peaks: no measured hardware profile/);
    expect(page).toContain('id="roofline-absent"');
    expect(page).toContain('id="utilisation-absent"');
    expect(page).not.toContain('id="chart-roofline"');
    expect(figureIn(page, 'throughput')).toMatch(/^<svg/);
  } finally {
    if (env.xdg === undefined) delete process.env.XDG_CACHE_HOME;
    else process.env.XDG_CACHE_HOME = env.xdg;
    if (env.profile !== undefined) process.env.MOECAP_HARDWARE_PROFILE = env.profile;
    fs.rmSync(cache, { recursive: true, force: true });
    if (d) fs.rmSync(d, { recursive: true, force: true });
  }
});

test('offload figures of a real offloaded run get their chart', async () => {
  // A real sweep with experts streamed from a weights file (25 % and 50 % resident) beside the
  // all-resident config; the fixture profile names no offload-folder bandwidth, so no slow-tier line.
  const d = await runFixture({ phases: ['decode'], batch: [4], dtypes: ['f32'], residentFraction: [1, 0.5, 0.25] });
  try {
    const r = readResults(d) as { configs: Array<{ offload: Record<string, unknown> }> };
    const offloaded = r.configs.filter((c) => 'bytesMoved' in c.offload);
    expect(offloaded).toHaveLength(2);
    const page = fs.readFileSync((await writeReport(d)).file, 'utf8');
    expect(count(figureIn(page, 'offload'), /aria-roledescription="point"/g)).toBe(2 * offloaded.length);
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});

test('a run still in progress (no CAP summary yet): the report computes it the way the runner does, and says so', async () => {
  const r = readResults(dir);
  r.cap = null;
  r.status = 'running';
  const d = writeResults(r);
  try {
    const page = fs.readFileSync((await writeReport(d)).file, 'utf8');
    expect(page).toContain('run running');
    expect(page).toContain('computed by the report with the runner');
    const own = reportCap(toResultsView(r));
    expect(own.origin).toBe('report');
    // Same code (lib/cap radar.ts and pareto.ts) on the same figures: the same frontier and radar.
    for (const ph of view.cap!.phases) {
      const mine = own.phases.find((p) => p.phase === ph.phase)!;
      expect(mine.frontier).toEqual(ph.frontier);
      expect(mine.dominatedBy).toEqual(ph.dominatedBy);
      expect(mine.radar).toEqual(ph.radar);
    }
    expect(count(figureIn(page, 'radar-decode'), /aria-roledescription="point"/g)).toBe(3 * own.phases[0].radar.length);
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});

test('moecap report on the command line writes --out and says where', () => {
  const out = path.join(dir, 'cli.html');
  const text = execFileSync(process.execPath, [BIN, 'report', dir, '--out', out], { encoding: 'utf8' });
  expect(text).toBe(`wrote ${out} (${view.configs.length} configs from ${path.join(dir, 'results.json')})\n`);
  expect(fs.readFileSync(out, 'utf8')).toContain('id="chart-roofline"');
  fs.rmSync(out);
});

test('moecap run --report writes report.html beside results.json', () => {
  const out = fs.mkdtempSync(path.join(require('os').tmpdir(), 'moecap-runrep-'));
  try {
    const bin = path.join(__dirname, '..', '..', 'bin', 'moecap.js');
    const stdout = execFileSync(
      process.execPath,
      [bin, 'run', '--preset', 'tiny', '--phase', 'decode', '--batch', '1,4', '--repeats', '2', '--quiet', '--skip-calibration', '--report', '--out', out],
      { encoding: 'utf8' },
    );
    expect(stdout).toContain(`report: ${path.join(out, 'report.html')}`);
    const page = fs.readFileSync(path.join(out, 'report.html'), 'utf8');
    expect(page).toMatch(/<svg/);
    expect(page).toContain('1-tiny-L1-decode-b4n8-f32-natural');
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test('a utilisation above 100% is marked on its chart and listed with its cause; the 100% line is drawn', async () => {
  const r = readResults(dir) as { configs: Array<Record<string, any>>; projected: unknown };
  const c = r.configs.find((x) => 'value' in x.smbu)!;
  c.smbu.value = 1.31;
  c.smbu.above1 = 'the read bandwidth moved during the config (14.0 GB/s before, 10.6 after)';
  r.projected = { device: 'h100-sxm', method: 'datasheet peaks applied to CPU measurements' };
  const d = writeResults(r);
  try {
    const page = fs.readFileSync((await writeReport(d)).file, 'utf8');
    const util = figureIn(page, 'utilisation');
    expect(util).toContain('aria-label="100%"'); // the dashed 100% rule (its description)
    expect(util).toMatch(new RegExp(`aria-label="${c.id}: S-MBU above 100%: the read bandwidth moved`));
    expect(page).toMatch(/<ul class="above1" id="above-100"><li>above 100%: [^<]*S-MBU 131%: the read bandwidth moved/);
    expect(page).toMatch(/<b class="projected">projected for h100-sxm from CPU measurements: /);
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});

test('the table names the resident fraction as --offload takes it, TTFT p90/p99 with n, money to its precision', () => {
  expect(html).toContain('resident fraction (--offload)</th>');
  const pre = view.configs.find((c) => c.phase === 'prefill')!;
  expect(pre.residentFraction).toBe(1);
  expect(html).toContain(`${sig(pre.ttftP90Ms)} / ${sig(pre.ttftP99Ms)} (n=${pre.samples}, few)`); // 3 repeats: fewer than 20
  expect(html).not.toMatch(/\$[\d.]{9,}/); // no $347.10396006400003
  expect(money(347.10396006400003)).toBe('$347');
});
