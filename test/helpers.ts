// Random inputs for the tests: seeded Gaussian values (never zeros), weights in HF layout.
import type { RefConfig, RefWeights } from './reference/moe_reference';
import type { MoeLayer } from '../lib';

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

/**
 * Runs `layer` on Gaussian inputs of each token count T (seeded by `seed(T)`) against its fp64
 * reference: the same routes, every output finite, a repeated pass and each token alone bitwise
 * what it was inside the batch. Returns the relative L2 error over all the outputs (the caller
 * bounds it for its dtype).
 */
export async function forwardAgainstReference(layer: MoeLayer, hidden: number, tokens: number[], seed: (T: number) => number): Promise<number> {
  const H = hidden;
  const outs: number[] = [],
    refs: number[] = [];
  for (const T of tokens) {
    const x = gaussian(T * H, seed(T));
    const r = await layer.forward(x);
    const ref = await layer.reference(x);
    expect(r.output.length).toBe(T * H);
    expect(r.output.every(Number.isFinite)).toBe(true);
    expect(Array.from(r.expertIds)).toEqual(Array.from(ref.expertIds));
    for (const v of r.output) outs.push(v);
    for (const v of ref.output) refs.push(v);
    expect(bitwiseEqual((await layer.forward(x)).output, r.output)).toBe(true);
    for (let t = 0; t < T; t++) {
      const alone = await layer.forward(x.slice(t * H, (t + 1) * H));
      expect(bitwiseEqual(alone.output, r.output.subarray(t * H, (t + 1) * H))).toBe(true);
    }
  }
  return relL2(outs, refs);
}
