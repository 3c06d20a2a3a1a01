// Every call into the addon goes through callNative, so what the public API throws is always a
// MoecapError (or MoecapTypeError / MoecapRangeError) with a stable `code`, sync or async.
import { isErrorCode, MoecapError, MoecapRangeError, MoecapTypeError, type ErrorCode } from '../errors';

/** The addon's error as a moecap error: same message and base class, its `code` when it set one. */
export function fromNative(e: unknown): unknown {
  if (!(e instanceof Error) || e instanceof MoecapError) return e;
  const given = (e as { code?: unknown }).code;
  const code: ErrorCode = isErrorCode(given)
    ? given
    : /\bclosed\b/.test(e.message)
      ? 'ERR_CLOSED'
      : e instanceof TypeError || e instanceof RangeError
        ? 'ERR_INVALID_ARGUMENT'
        : 'ERR_INTERNAL';
  const out =
    e instanceof TypeError
      ? new MoecapTypeError(code, e.message, { cause: e })
      : e instanceof RangeError
        ? new MoecapRangeError(code, e.message, { cause: e })
        : new MoecapError(code, e.message, { cause: e });
  return out;
}

/** Runs one addon call; a throw, or a rejection of the promise it returns, becomes fromNative(e). */
export function callNative<T>(fn: () => T): T {
  let r: T;
  try {
    r = fn();
  } catch (e) {
    throw fromNative(e);
  }
  if (r instanceof Promise) return r.catch((e: unknown) => Promise.reject(fromNative(e))) as T;
  return r;
}
