// Every call into the addon goes through callNative, so what the public API throws is always a
// MoecapError (or MoecapTypeError / MoecapRangeError) with a stable `code`, sync or async.
import { isErrorCode, MoecapError, MoecapRangeError, MoecapTypeError, type ErrorCode } from '../errors';

/** The addon's error as a moecap error: same message and base class, its `code` when it set one. */
export function fromNative(e: unknown): unknown {
  // By name, not instanceof: the addon's errors may come from another realm (a vm context, jest).
  if (e === null || typeof e !== 'object' || typeof (e as Error).message !== 'string' || e instanceof MoecapError) return e;
  const { message, name } = e as Error;
  const given = (e as { code?: unknown }).code;
  const isType = e instanceof TypeError || name === 'TypeError';
  const isRange = e instanceof RangeError || name === 'RangeError';
  const code: ErrorCode = isErrorCode(given) ? given : /\bclosed\b/.test(message) ? 'ERR_CLOSED' : isType || isRange ? 'ERR_INVALID_ARGUMENT' : 'ERR_INTERNAL';
  if (isType) return new MoecapTypeError(code, message, { cause: e });
  if (isRange) return new MoecapRangeError(code, message, { cause: e });
  // Keeps the addon's class name ('Error'), as the Type/Range cases keep theirs.
  const err = new MoecapError(code, message, { cause: e });
  err.name = name;
  return err;
}

/** Runs one addon call; a throw, or a rejection of the promise it returns, becomes fromNative(e). */
export function callNative<T>(fn: () => T): T {
  let r: T;
  try {
    r = fn();
  } catch (e) {
    throw fromNative(e);
  }
  // A thenable, not `instanceof Promise`: the addon's promises may come from another realm too.
  if (r !== null && typeof r === 'object' && typeof (r as { then?: unknown }).then === 'function')
    return Promise.resolve(r).catch((e: unknown) => Promise.reject(fromNative(e))) as T;
  return r;
}
