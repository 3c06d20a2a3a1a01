// `moecap counters`: what this machine can count, and why the rest is unavailable.
import { probeCounters } from '../../counters';
import type { Command } from '../command';

export const countersCommand: Command = {
  name: 'counters',
  summary: 'the hardware/software counters available here, and why others are not',
  description: 'Lists the counters this machine offers (perf events, RAPL energy, NVML, rusage).',
  options: [{ name: 'json', type: 'boolean', description: 'print JSON' }],
  async run({ options }, { out }) {
    const list = probeCounters();
    if (options.json) {
      out(JSON.stringify(list, null, 2) + '\n');
      return 0;
    }
    const w = Math.max(...list.map((c) => c.name.length));
    for (const c of list) out(`${c.name.padEnd(w)}  ${c.available ? 'available    ' + c.source : 'unavailable  ' + c.reason}\n`);
    return 0;
  },
};
