// `moecap counters`: what this machine can count, and why the rest is unavailable.
import { probeCounters } from '../counters';
import { parseArgs, usage, type OptionSpec } from './args';

const OPTIONS: OptionSpec[] = [
  { name: 'json', type: 'boolean', description: 'print JSON' },
  { name: 'help', type: 'boolean', description: 'show this help' },
];

export function countersCommand(argv: string[], out: (s: string) => void): number {
  const { options } = parseArgs(argv, OPTIONS);
  if (options.help) {
    out(usage('counters', 'Lists the counters this machine offers (perf events, RAPL energy, NVML, rusage).', OPTIONS));
    return 0;
  }
  const list = probeCounters();
  if (options.json) {
    out(JSON.stringify(list, null, 2) + '\n');
    return 0;
  }
  const w = Math.max(...list.map((c) => c.name.length));
  for (const c of list)
    out(`${c.name.padEnd(w)}  ${c.available ? 'available    ' + c.source : 'unavailable  ' + c.reason}\n`);
  return 0;
}
