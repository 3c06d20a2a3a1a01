// The errors moecap throws, one hierarchy with stable codes. Node's own convention: an argument
// error stays a TypeError or RangeError (so `instanceof TypeError` keeps working) and carries a
// `code`; `instanceof MoecapError` is true for every error moecap raised, whichever base it has.

/** Stable error codes; the message may change between versions, the code does not. */
export type ErrorCode =
  | 'ERR_INVALID_ARGUMENT' // a method argument: typed-array type or length, shape, non-finite value
  | 'ERR_INVALID_OPTION' // an option value or an unknown option key (API options, run plans)
  | 'ERR_USAGE' // the command line
  | 'ERR_CLOSED' // a layer or model used after close()
  | 'ERR_OUT_OF_MEMORY' // larger than the memory available, or an allocation failed
  | 'ERR_BACKEND_UNAVAILABLE' // a backend (CUDA, MPI) that cannot be loaded or used here
  | 'ERR_CORRUPT_FILE' // a file whose content is not what it must be (expert file, results, profile)
  | 'ERR_IO' // the operating system refused a file operation
  | 'ERR_INTERNAL'; // a bug: please report it

export const ERROR_CODES: readonly ErrorCode[] = [
  'ERR_INVALID_ARGUMENT',
  'ERR_INVALID_OPTION',
  'ERR_USAGE',
  'ERR_CLOSED',
  'ERR_OUT_OF_MEMORY',
  'ERR_BACKEND_UNAVAILABLE',
  'ERR_CORRUPT_FILE',
  'ERR_IO',
  'ERR_INTERNAL',
];

const MOECAP = Symbol.for('moecap.error');

export function isErrorCode(x: unknown): x is ErrorCode {
  return typeof x === 'string' && (ERROR_CODES as readonly string[]).includes(x);
}

function brand(e: Error, code: ErrorCode): void {
  Object.defineProperty(e, MOECAP, { value: true });
  Object.defineProperty(e, 'code', { value: code, enumerable: true, writable: false });
}

/** Base of every moecap error. `instanceof MoecapError` also holds for MoecapTypeError and MoecapRangeError. */
export class MoecapError extends Error {
  declare readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    brand(this, code);
  }
  static [Symbol.hasInstance](x: unknown): boolean {
    return (
      typeof x === 'object' &&
      x !== null &&
      (x as Record<symbol, unknown>)[MOECAP] === true &&
      (this === MoecapError || Function.prototype[Symbol.hasInstance].call(this, x))
    );
  }
}

/** A wrong type: still a TypeError. */
export class MoecapTypeError extends TypeError {
  declare readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TypeError';
    brand(this, code);
  }
}

/** A value out of range: still a RangeError. */
export class MoecapRangeError extends RangeError {
  declare readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RangeError';
    brand(this, code);
  }
}

/** The command line: an unknown command or option, a missing or malformed value (exit code 2). */
export class UsageError extends MoecapError {
  constructor(message: string) {
    super('ERR_USAGE', message);
  }
}

/** A CAP run plan that cannot run: an option value, or a file an option names. Still a RangeError. */
export class PlanError extends MoecapRangeError {
  constructor(message: string, code: ErrorCode = 'ERR_INVALID_OPTION') {
    super(code, message);
  }
}

/** Bad input for the report (a missing, unreadable or malformed results file): no HTML is written. */
export class ReportInputError extends MoecapError {
  constructor(message: string, code: ErrorCode = 'ERR_CORRUPT_FILE') {
    super(code, message);
  }
}

/** A value from outside input for a message: its JSON cut after about `room` characters ("…"). The
 * walk stops there, so a huge or deeply nested value costs no more than a short one (JSON.stringify
 * and String() of a nested array recurse until the stack overflows). */
export function shown(v: unknown, room = 60): string {
  let out = '';
  const put = (s: string) => {
    out += s;
    return out.length < room;
  };
  const walk = (x: unknown): boolean => {
    if (typeof x === 'string') return put(JSON.stringify(x.length > room ? x.slice(0, room) : x));
    if (Array.isArray(x)) {
      if (!put('[')) return false;
      for (let i = 0; i < x.length; i++) if ((i > 0 && !put(',')) || !walk(x[i])) return false;
      return put(']');
    }
    if (x !== null && typeof x === 'object') {
      if (!put('{')) return false;
      let first = true;
      for (const k in x) {
        if (!Object.prototype.hasOwnProperty.call(x, k)) continue;
        if ((!first && !put(',')) || !put(`${JSON.stringify(k.length > room ? k.slice(0, room) : k)}:`) || !walk((x as Record<string, unknown>)[k]))
          return false;
        first = false;
      }
      return put('}');
    }
    return put(String(x));
  };
  return walk(v) ? out : `${out.slice(0, room)}…`;
}

/** A name from outside input in quotes ('name'), any other value as shown() gives it. */
export const quoted = (v: unknown): string => (typeof v === 'string' ? `'${v.length > 60 ? v.slice(0, 60) + '…' : v}'` : shown(v));

/** The codes of bad input: a request that cannot run as asked (including one larger than the memory
 * available, refused before anything runs). Every command exits 2 for them. */
const BAD_INPUT: readonly ErrorCode[] = ['ERR_USAGE', 'ERR_INVALID_OPTION', 'ERR_INVALID_ARGUMENT', 'ERR_OUT_OF_MEMORY'];

/** The exit code of a command that threw `e`: 2 for bad input, 1 for anything else. */
export function exitCodeFor(e: unknown): number {
  const code = (e as { code?: unknown } | null)?.code;
  return e instanceof MoecapError && isErrorCode(code) && BAD_INPUT.includes(code) ? 2 : 1;
}
