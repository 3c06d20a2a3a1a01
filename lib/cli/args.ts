// A small argv parser: `--name value`, `--name=value`, `--flag`; lists as `1,4,16`.
// Unknown options are an error naming the option (the caller lists what is known).
import { UsageError } from '../errors';

export { UsageError };

export interface OptionSpec {
  name: string;
  type: 'string' | 'number' | 'number-list' | 'string-list' | 'boolean';
  description: string;
  default?: string | number | boolean | number[] | string[];
}

export type ParsedArgs = Record<string, string | number | boolean | number[] | string[] | undefined>;

function toNumber(name: string, v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${name} expects a number, got '${v}'`);
  return n;
}

const TRUE_WORDS = ['true', '1', 'yes'];
const FALSE_WORDS = ['false', '0', 'no'];

/** `--flag=value`: true/false, 1/0, yes/no (any case); anything else is refused, not read as true. */
function toBoolean(name: string, v: string): boolean {
  const w = v.trim().toLowerCase();
  if (TRUE_WORDS.includes(w)) return true;
  if (FALSE_WORDS.includes(w)) return false;
  throw new UsageError(`--${name} is a flag: give it alone, or as --${name}=true|false|1|0|yes|no, got '${v}'`);
}

/** `given`: the options set on the command line (the others hold their defaults). */
export function parseArgs(argv: string[], specs: OptionSpec[]): { options: ParsedArgs; positional: string[]; given: Set<string> } {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const options: ParsedArgs = {};
  const positional: string[] = [];
  const given = new Set<string>();
  for (const s of specs) if (s.default !== undefined) options[s.name] = s.default;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    let [name, value] = a.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    const spec = byName.get(name);
    if (!spec) throw new UsageError(`unknown option --${name} (known: ${specs.map((s) => '--' + s.name).join(' ')})`);
    given.add(name);
    if (spec.type === 'boolean') {
      options[name] = value === undefined ? true : toBoolean(name, value);
      continue;
    }
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`--${name} needs a value`);
      value = argv[++i];
    }
    switch (spec.type) {
      case 'string':
        options[name] = value;
        break;
      case 'number':
        options[name] = toNumber(name, value);
        break;
      case 'number-list':
        options[name] = value.split(',').map((v) => toNumber(name, v));
        break;
      case 'string-list':
        options[name] = value
          .split(',')
          .map((v) => v.trim())
          .filter(Boolean);
        break;
    }
  }
  return { options, positional, given };
}

export function usage(command: string, summary: string, specs: OptionSpec[]): string {
  const lines = specs.map((s) => {
    const d = s.default !== undefined ? ` (default ${Array.isArray(s.default) ? s.default.join(',') : s.default})` : '';
    return `  --${s.name.padEnd(18)} ${s.description}${d}`;
  });
  return `Usage: moecap ${command} [options]\n\n${summary}\n\nOptions:\n${lines.join('\n')}\n`;
}
