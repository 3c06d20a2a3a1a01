// How much memory one pass of T tokens needs beyond the layer's weights, checked before anything is
// allocated: a token count that cannot fit is refused up front with the bytes needed and available,
// instead of building gigabytes of input first (or failing inside V8 with "Invalid typed array length").
import { systemInfo } from '../moe_layer';
import { PlanError } from '../errors';

/** The most tokens one pass takes (the addon refuses more). */
export const MAX_TOKENS_PER_PASS = 16777216;

export interface PassShape {
  hidden: number;
  intermediate: number;
  topK: number;
}

/** Bytes for `inputs` fp32 inputs [T, H] plus one pass: the addon's copy of x, the output (native
 * and JS copies), ids and weights, and the expert workspace (gate/up/activations and per-expert rows). */
export function passBytes(T: number, s: PassShape, inputs: number): number {
  const th = T * s.hidden * 4;
  return inputs * th + 3 * th + T * s.topK * 16 + T * s.topK * (3 * s.intermediate + s.hidden) * 4;
}

function gb(bytes: number): string {
  return `${(bytes / 1e9).toFixed(bytes < 1e9 ? 3 : 1)} GB`;
}

/** Throws (ERR_INVALID_OPTION, or ERR_OUT_OF_MEMORY with the bytes needed and available) when T
 * tokens per pass cannot run; `what` names the option, e.g. "--tokens 17000000". */
export function checkPassFits(T: number, s: PassShape, inputs: number, what: string, available = systemInfo().availableMemory): void {
  if (!Number.isSafeInteger(T) || T < 1) throw new PlanError(`${what}: tokens per pass must be a positive integer, got ${T}`);
  if (T > MAX_TOKENS_PER_PASS) throw new PlanError(`${what}: ${T} tokens per pass is more than the ${MAX_TOKENS_PER_PASS} one pass takes`);
  const need = passBytes(T, s, inputs);
  if (need > available)
    throw new PlanError(
      `${what}: ${T} tokens per pass need about ${gb(need)} of memory for inputs and workspace, ${gb(available)} available`,
      'ERR_OUT_OF_MEMORY',
    );
}
