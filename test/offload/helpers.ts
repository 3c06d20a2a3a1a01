// Shared fixtures for the offload tests: the addon, inputs, and layers whose routing a test scripts.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { loadAddon } from '../../lib/native/loader';

// The raw addon (build/ or prebuilds/, whichever the package loader finds): these tests drive the
// binding directly, including options lib/ only passes through.
export const native: any = loadAddon();

export const DTYPES = ['f32', 'bf16', 'int8', 'int4', 'mxfp4', 'fp8'];
export const POLICIES = ['lru', 'lfu', 'lfru', 'static'];

export function tokens(T: number, H: number, seed: number): Float32Array {
  const x = new Float32Array(T * H);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < x.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = (s / 4294967296) * 2 - 1;
  }
  return x;
}

export function sameBits(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-offload-'));
}

// A layer whose router is the identity on the first E hidden units, so a token with a large
// value at hidden index e picks expert e: routing is scripted through the public API.
export const SCRIPT = { hidden: 16, intermediate: 8, experts: 6 };
export function scriptedOptions(topK: number, offload: object | undefined, seed = 3): any {
  const { hidden: H, intermediate: F, experts: E } = SCRIPT;
  const router = new Float32Array(E * H);
  for (let e = 0; e < E; e++) router[e * H + e] = 1;
  const rnd = (n: number, s: number) => tokens(1, n, s).map((v) => v * 0.3);
  return {
    hidden: H,
    intermediate: F,
    experts: E,
    topK,
    threads: 2,
    weights: { router, gate: rnd(E * F * H, seed), up: rnd(E * F * H, seed + 1), down: rnd(E * H * F, seed + 2) },
    ...(offload ? { offload } : {}),
  };
}
// One token per entry of `experts` (each a list of the experts that token picks, best first).
export function scriptedTokens(experts: number[][]): Float32Array {
  const H = SCRIPT.hidden;
  const x = new Float32Array(experts.length * H);
  experts.forEach((ids, t) => ids.forEach((e, j) => (x[t * H + e] = 10 - j)));
  return x;
}
