// The router matrix [E, H] of a layer created with `weights: { seed }`, regenerated in TypeScript
// with the native generator's exact recipe (native/core/weights/weight_source.cc, SeededWeights):
// weight(m, expert, row, col) from splitmix64(seed ^ m<<56 ^ expert<<32 ^ row), column stream
// key + col·0xD1B54A32D192ED03, four 16-bit uniforms summed, rescaled to unit variance, times
// 1/sqrt(cols). The runner needs the router to design inputs whose routing it knows in advance
// (skewed and replayed routing), without copying multi-GB expert weights through JS.
import { MoecapRangeError } from '../errors';
const M64 = (1n << 64n) - 1n;

function splitmix64(z: bigint): bigint {
  z = (z + 0x9e3779b97f4a7c15n) & M64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M64;
  return z ^ (z >> 31n);
}

/** Router weights [E, H] (row e = expert e), as Float32 like the native master copy. */
export function seededRouter(seed: number, experts: number, hidden: number): Float32Array {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new MoecapRangeError('ERR_INVALID_ARGUMENT', 'seed must be a non-negative safe integer');
  const out = new Float32Array(experts * hidden);
  const scale = Math.fround(Math.sqrt(3) / Math.sqrt(hidden));
  const inv16 = 1 / 65536;
  const step = 0xd1b54a32d192ed03n;
  for (let e = 0; e < experts; e++) {
    // Matrix::Router = 0, expert index 0, row = e
    const key = splitmix64(BigInt(seed) ^ BigInt(e));
    let off = key;
    for (let c = 0; c < hidden; c++) {
      const r = splitmix64(off);
      off = (off + step) & M64;
      const lo = Number(r & 0xffffffffn),
        hi = Number(r >> 32n);
      // float sums in the same order as the C++ (each term exact in fp32; the sum fits in 18 bits)
      const s = (lo & 0xffff) + (lo >>> 16) + (hi & 0xffff) + (hi >>> 16);
      out[e * hidden + c] = Math.fround(Math.fround(Math.fround(s * inv16) - 2) * scale);
    }
  }
  return out;
}
