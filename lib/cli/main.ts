// The `moecap` command line. Each subcommand lives in its own file.
import { systemInfo } from '../moe_layer';
import { VERSION } from '../version';
import { UsageError } from './args';
import { runDefault } from './run_default';
import { countersCommand } from './counters_cmd';
import { calibrateCommand } from './calibrate_cmd';
import { reportCommand } from './report_cmd';
import { CAP_COMMANDS } from '../cap/cli_hook';

const HELP = `moecap ${VERSION} — MoE inference performance engine and CAP benchmark

Usage: moecap <command> [options]

Commands:
  run       CAP run: presets × workloads on this machine; cost, accuracy, performance
  presets   the model presets and their router semantics
  layer     one MoE layer (default: OLMoE shape) at a few token counts: speed and fp64 error
  info      what this machine offers (ISAs, threads, memory)
  calibrate measure this machine's ceilings (bandwidth, peak FLOP/s, file read) for S-MBU/S-MFU
  counters  the hardware/software counters available here, and why others are not
  report    render a results.json (or run folder) as a self-contained HTML CAP report
  help      this text

'moecap <command> --help' describes a command's options.
`;

export async function main(argv: string[], out = (s: string) => process.stdout.write(s), err = (s: string) => process.stderr.write(s)): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        out(HELP);
        return 0;
      case '--version':
        out(VERSION + '\n');
        return 0;
      case 'run':
      case 'presets':
        return await CAP_COMMANDS[cmd](rest, { out, err });
      case 'layer':
        return await runDefault(rest, out);
      case 'report':
        return await reportCommand(rest, out);
      case 'calibrate':
        return await calibrateCommand(rest, out);
      case 'counters':
        return countersCommand(rest, out);
      case 'info':
        out(JSON.stringify({ version: VERSION, ...systemInfo() }, null, 2) + '\n');
        return 0;
      default:
        throw new UsageError(`unknown command '${cmd}' (try 'moecap help')`);
    }
  } catch (e) {
    const msg = e instanceof Error ? `${e instanceof UsageError ? 'usage' : e.name}: ${e.message}` : String(e);
    err(`moecap: ${msg}\n`);
    return e instanceof UsageError ? 2 : 1;
  }
}
