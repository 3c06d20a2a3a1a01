// Vega-Lite spec → SVG string, in Node, headless (vega's 'none' renderer + toSVG). No browser,
// no canvas: vega estimates text widths, which is all the static page needs.
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/** Vega-Lite's warnings (a channel it ignored, a bad scale) are errors here: a chart must say what the spec says. */
const strictLogger = {
  level(): number {
    return 0;
  },
  warn(...args: unknown[]) {
    throw new Error(`vega-lite: ${args.map(String).join(' ')}`);
    return strictLogger;
  },
  info() {
    return strictLogger;
  },
  debug() {
    return strictLogger;
  },
  error(...args: unknown[]) {
    throw new Error(`vega-lite: ${args.map(String).join(' ')}`);
  },
};

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const compiled = compile(spec, { logger: strictLogger as never }).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', logLevel: vega.Warn });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
