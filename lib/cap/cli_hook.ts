// How the lead's CLI (lib/cli/main.ts) picks up the CAP subcommands: one lookup before its switch.
//   const cap = CAP_COMMANDS[cmd];
//   if (cap) return cap(rest, { out, err });
// and CAP_HELP_LINES appended to its command list. `capMain` is the same dispatch on its own
// (tests and scripts use it without the rest of the CLI).
import { capRunCommand, type CliIo } from './cli_run';
import { presetsCommand } from './cli_presets';

export type CapCommand = (argv: string[], io: CliIo) => Promise<number>;

export const CAP_COMMANDS: Record<string, CapCommand> = {
  run: capRunCommand,
  presets: presetsCommand,
};

export const CAP_HELP_LINES = [
  '  run       CAP run: presets × workloads on this machine; cost, accuracy, performance (--help)',
  '  presets   the model presets and their router semantics',
];

export async function capMain(argv: string[], io: CliIo = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) }): Promise<number> {
  const [cmd, ...rest] = argv;
  const c = cmd !== undefined ? CAP_COMMANDS[cmd] : undefined;
  if (!c) {
    io.err(`moecap: unknown CAP command '${cmd ?? ''}' (known: ${Object.keys(CAP_COMMANDS).join(', ')})\n`);
    return 2;
  }
  return c(rest, io);
}
