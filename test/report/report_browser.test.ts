// The report in a real browser: headless Chromium (Debian's `chromium`, driven by playwright-core)
// opens the file from disk with the network unused, logs no console errors, and its screenshot has
// ink inside every chart's box. With MOECAP_UPDATE_SCREENSHOT=1 the screenshot becomes docs/report.png.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { pathToFileURL } from 'url';
import { chromium } from 'playwright-core';
import { PNG } from 'pngjs';
import { removeFixtureProfile, runFixture } from './fixture';
import { writeReport } from '../../lib/report/write_report';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
// Without Debian's chromium the test skips and says why, so `npm install && npm test` passes on any
// machine; CI (CI=true, where .ci/run installs it) requires it.
const missing = !fs.existsSync(CHROMIUM) && process.env.CI !== 'true';
if (missing) console.log(`report_browser: skipped: ${CHROMIUM} not found (apt-get install -y chromium to run it)`);
const skip = process.env.MOECAP_SKIP_BROWSER === '1' || missing;

interface Box {
  id: string;
  x: number;
  y: number;
  width: number;
  height: number;
}

(skip ? test.skip : test)('the report opens in headless Chromium without errors and every chart is drawn', async () => {
  if (!fs.existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium; .ci/run does) or set MOECAP_SKIP_BROWSER=1`);
  const dir = await runFixture();
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1280, height: 900 },
    deviceScaleFactor: 1,
  });
  try {
    const { file } = await writeReport(dir);
    const page = await context.newPage();
    const problems: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console.${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('request', (r) => requests.push(r.url()));
    const url = pathToFileURL(file).href;
    await page.goto(url, { waitUntil: 'load' });
    expect(problems).toEqual([]);
    expect(requests).toEqual([url]); // nothing fetched but the file itself

    // The inlined script turned each point's figures into a hover title.
    const titles = await page.$$eval('figure.chart svg title', (t) => t.map((e) => e.textContent ?? ''));
    expect(titles.length).toBeGreaterThan(20);
    expect(titles.some((t) => /tokens\/s/.test(t))).toBe(true);

    const boxes: Box[] = await page.$$eval('figure.chart > svg', (svgs) =>
      svgs.map((s) => {
        const r = s.getBoundingClientRect();
        const w = globalThis as unknown as { scrollX: number; scrollY: number };
        return { id: s.parentElement!.id, x: r.x + w.scrollX, y: r.y + w.scrollY, width: r.width, height: r.height };
      }),
    );
    expect(boxes.map((b) => b.id)).toEqual([
      'chart-radar-decode',
      'chart-radar-prefill',
      'chart-roofline',
      'chart-throughput',
      'chart-utilisation',
      'chart-experts',
    ]);

    const shot = path.join(dir, 'report.png');
    await page.screenshot({ path: shot, fullPage: true });
    const png = PNG.sync.read(fs.readFileSync(shot));
    for (const b of boxes) {
      expect(b.width).toBeGreaterThan(200);
      expect(b.height).toBeGreaterThan(200);
      let ink = 0;
      const x0 = Math.round(b.x),
        y0 = Math.round(b.y);
      const x1 = Math.min(png.width, Math.round(b.x + b.width)),
        y1 = Math.min(png.height, Math.round(b.y + b.height));
      for (let y = y0; y < y1; y++)
        for (let x = x0; x < x1; x++) {
          const i = 4 * (y * png.width + x);
          if (png.data[i] < 235 || png.data[i + 1] < 235 || png.data[i + 2] < 235) ink++;
        }
      const share = ink / ((x1 - x0) * (y1 - y0));
      // Axes, marks and labels: a drawn chart inks 4–7% of its box here; a blank one none.
      expect({ chart: b.id, inked: share > 0.02 }).toEqual({ chart: b.id, inked: true });
    }
    if (process.env.MOECAP_UPDATE_SCREENSHOT === '1') {
      const docs = path.join(__dirname, '..', '..', 'docs');
      fs.mkdirSync(docs, { recursive: true });
      fs.copyFileSync(shot, path.join(docs, 'report.png'));
    }
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
    fs.rmSync(dir, { recursive: true, force: true });
    removeFixtureProfile();
  }
});
