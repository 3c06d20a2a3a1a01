// `moecap info`: what this machine offers (ISAs, threads, memory), as JSON.
import { systemInfo } from '../../moe_layer';
import { VERSION } from '../../version';
import type { Command } from '../command';

export const infoCommand: Command = {
  name: 'info',
  summary: 'what this machine offers (ISAs, threads, memory)',
  options: [],
  async run(_args, { out }) {
    out(JSON.stringify({ version: VERSION, ...systemInfo() }, null, 2) + '\n');
    return 0;
  },
};
