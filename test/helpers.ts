// Random inputs for the tests: seeded Gaussian values (never zeros), weights in HF layout.
import type { RefConfig, RefWeights } from './reference/moe_reference';

export function rng(seed: number): () => number {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return (s + 0.5) / 4294967296;
  };
}

export function gaussian(n: number, seed: number, std = 1): Float32Array {
  const u = rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = std * Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return a;
}

export function makeWeights(c: RefConfig, seed: number): RefWeights {
  const { hidden: H, intermediate: F, experts: E } = c;
  const w: RefWeights = {
    router: gaussian(E * H, seed + 1, 1 / Math.sqrt(H)),
    gate: gaussian(E * F * H, seed + 2, 1 / Math.sqrt(H)),
    up: gaussian(E * F * H, seed + 3, 1 / Math.sqrt(H)),
    down: gaussian(E * H * F, seed + 4, 1 / Math.sqrt(F)),
  };
  if (c.sharedExperts) {
    const Fs = c.sharedExperts.intermediate;
    w.shared = {
      gate: gaussian(Fs * H, seed + 5, 1 / Math.sqrt(H)),
      up: gaussian(Fs * H, seed + 6, 1 / Math.sqrt(H)),
      down: gaussian(H * Fs, seed + 7, 1 / Math.sqrt(Fs)),
      gateWeight: c.sharedExperts.gated ? gaussian(H, seed + 8, 1 / Math.sqrt(H)) : undefined,
    };
  }
  return w;
}

export function relL2(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  let d = 0,
    r = 0;
  for (let i = 0; i < ref.length; i++) {
    d += (a[i] - ref[i]) ** 2;
    r += ref[i] ** 2;
  }
  return Math.sqrt(d / r);
}

export function bitwiseEqual(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length),
    ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return false;
  return true;
}
