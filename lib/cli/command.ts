// One signature for every `moecap` command: the dispatcher (lib/cli/main.ts) parses the options a
// command declares, answers --help from them, builds `moecap help` from the command list, and maps
// a thrown error to the exit code (bad input 2, anything else 1).
import type { OptionSpec, ParsedArgs } from './args';

export interface CommandIo {
  out: (s: string) => void;
  err: (s: string) => void;
  /** Progress stream of long commands (default process.stderr). */
  progress?: NodeJS.WriteStream;
}

export interface Command {
  /** The word after `moecap`. */
  name: string;
  /** One line for `moecap help`. */
  summary: string;
  /** Longer text for `moecap <name> --help`, above the options (defaults to `summary`). */
  description?: string;
  /** The options it takes; `--help` is added by the dispatcher. */
  options: OptionSpec[];
  /** Text shown after `moecap <name>` in the usage line, e.g. '[DIR]'. */
  positional?: string;
  /** `given`: the options set on the command line (the others hold their defaults). */
  run(args: { options: ParsedArgs; positional: string[]; given: ReadonlySet<string> }, io: CommandIo): Promise<number>;
}
