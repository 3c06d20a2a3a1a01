// The `moecap` command line: the dispatcher. Each command lives in commands/<name>.ts and declares
// its options; this file parses them, answers --help from them, builds `moecap help` from the
// command list, and turns a thrown error into one line on stderr and the exit code: bad input
// (ERR_USAGE, ERR_INVALID_OPTION, ERR_INVALID_ARGUMENT, ERR_OUT_OF_MEMORY) 2, anything else 1. A command returns its
// own code otherwise (`moecap run` 130 when interrupted).
import { VERSION } from '../version';
import { exitCodeFor, MoecapError, UsageError } from '../errors';
import { parseArgs, usage, type OptionSpec } from './args';
import type { Command, CommandIo } from './command';
import { COMMANDS } from './commands';

const HELP_OPTION: OptionSpec = { name: 'help', type: 'boolean', description: 'show this help' };

export function helpText(commands: readonly Command[] = COMMANDS): string {
  const lines = [...commands.map((c) => [c.name, c.summary]), ['help', 'this text']].map(([n, s]) => `  ${n.padEnd(9)} ${s}`);
  return (
    `moecap ${VERSION} — MoE inference performance engine and CAP benchmark\n\n` +
    `Usage: moecap <command> [options]\n\nCommands:\n${lines.join('\n')}\n\n` +
    `'moecap <command> --help' describes a command's options.\n`
  );
}

/** One line: `moecap: <code>: <message>`. Errors moecap did not raise keep their whole message. */
export function errorLine(e: unknown): string {
  if (!(e instanceof Error)) return `moecap: ERR_INTERNAL: ${String(e)}\n`;
  const given = (e as { code?: unknown }).code;
  const code = typeof given === 'string' ? given : 'ERR_INTERNAL';
  const message = e instanceof MoecapError ? e.message.split('\n')[0] : e.message;
  return `moecap: ${code}: ${message}\n`;
}

async function dispatch(command: Command, argv: string[], io: CommandIo): Promise<number> {
  const options = [...command.options, HELP_OPTION];
  const parsed = parseArgs(argv, options);
  if (parsed.options.help) {
    const name = command.positional ? `${command.name} ${command.positional}` : command.name;
    io.out(usage(name, command.description ?? command.summary, options));
    return 0;
  }
  if (!command.positional && parsed.positional.length) throw new UsageError(`unexpected argument '${parsed.positional[0]}' (options start with --)`);
  return command.run(parsed, io);
}

export async function main(
  argv: string[],
  out: (s: string) => void = (s) => void process.stdout.write(s),
  err: (s: string) => void = (s) => void process.stderr.write(s),
): Promise<number> {
  const [name, ...rest] = argv;
  try {
    if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
      out(helpText());
      return 0;
    }
    if (name === '--version') {
      out(VERSION + '\n');
      return 0;
    }
    const command = COMMANDS.find((c) => c.name === name);
    if (!command) throw new UsageError(`unknown command '${name}' (try 'moecap help')`);
    return await dispatch(command, rest, { out, err });
  } catch (e) {
    err(errorLine(e));
    return exitCodeFor(e);
  }
}
