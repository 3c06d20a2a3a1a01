// The native replay of one layer's routing through the core's cache policies
// (native/core/offload/cache_replay) and Belády's optimal.
import { loadAddon } from '../native/loader';
import { MoecapError } from '../errors';

export const REPLAY_POLICIES = ['lru', 'lfu', 'lfru', 'static', 'belady'] as const;
export type ReplayPolicy = (typeof REPLAY_POLICIES)[number];

export interface ReplayCounts {
  passes: number;
  hits: number;
  misses: number;
  loads: number;
  evictions: number;
}

export interface ReplayOptions {
  /** [tokens, topK] expert ids of one layer in token order; -1 = dropped. */
  ids: Int32Array;
  topK: number;
  experts: number;
  /** T tokens per pass (1 = decode of one sequence). */
  tokensPerPass?: number;
  /** Static policy: passes replayed before the hot set is pinned (the profile run). */
  staticProfilePasses?: number;
  configs: Array<{ capacity: number; policy: ReplayPolicy }>;
  /** Threads the configs share (default 1). */
  threads?: number;
}

interface ReplayAddon {
  replayCache(o: ReplayOptions): Promise<ReplayCounts[]>;
}

export async function replayLayer(o: ReplayOptions): Promise<ReplayCounts[]> {
  for (const c of o.configs)
    if (!(REPLAY_POLICIES as readonly string[]).includes(c.policy))
      throw new MoecapError('ERR_INVALID_OPTION', `unknown cache policy '${c.policy}' (known: ${REPLAY_POLICIES.join(', ')})`);
  const addon = loadAddon() as unknown as ReplayAddon;
  return addon.replayCache(o);
}
