// `moecap report <results.json|dir> [--out report.html]`: the CAP report as one HTML file.
import { UsageError } from '../../errors';
import type { Command } from '../command';

const SUMMARY =
  'Renders a CAP run (results.json, or the run folder holding it) as one self-contained HTML page:\n' +
  'the CAP radar, the roofline, the sweep charts and the Pareto table. An expert-parallel run\n' +
  '(ep_results.json of `moecap run --ep`, or its folder; several for a batch-size sweep) gets its own page:\n' +
  'communication time and share, load imbalance and per-rank S-MBU/S-MFU against batch size.';

export const reportCommand: Command = {
  name: 'report',
  summary: 'render a results.json (or run folder) as a self-contained HTML CAP report',
  description: SUMMARY,
  positional: '<results.json|dir> | <ep_results.json|dir>...',
  options: [
    { name: 'out', type: 'string', description: 'the HTML file to write (default: report.html beside results.json)' },
    { name: 'force', type: 'boolean', description: 'with --out: replace a file that is not an earlier report' },
  ],
  async run({ options, positional }, { out }) {
    if (positional.length === 0) throw new UsageError('report needs one results.json file or run folder (or one or more ep_results.json)');
    // Loaded here, not at start-up: Vega and the schema validator cost ~0.5 s that other commands need not pay.
    const { writeAnyReport } = await import('../../report/write_report');
    const { file, summary } = await writeAnyReport(positional, options.out as string | undefined, { force: Boolean(options.force) });
    out(`wrote ${file} (${summary})\n`);
    return 0;
  },
};
