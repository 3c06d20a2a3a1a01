// XXH64 in BigInt arithmetic, to re-seal a doctored header in the hostile-file tests.
const M = (1n << 64n) - 1n;
const P1 = 0x9e3779b185ebca87n,
  P2 = 0xc2b2ae3d27d4eb4fn,
  P3 = 0x165667b19e3779f9n;
const P4 = 0x85ebca77c2b2ae63n,
  P5 = 0x27d4eb2f165667c5n;
const rotl = (x: bigint, r: bigint) => ((x << r) | (x >> (64n - r))) & M;
const round = (acc: bigint, v: bigint) => (rotl((acc + v * P2) & M, 31n) * P1) & M;
const merge = (acc: bigint, v: bigint) => ((acc ^ round(0n, v)) * P1 + P4) & M;

export function xxhash64(b: Buffer, seed = 0n): bigint {
  let p = 0,
    h: bigint;
  const len = b.length;
  if (len >= 32) {
    let v1 = (seed + P1 + P2) & M,
      v2 = (seed + P2) & M,
      v3 = seed,
      v4 = (seed - P1) & M;
    for (; p + 32 <= len; p += 32) {
      v1 = round(v1, b.readBigUInt64LE(p));
      v2 = round(v2, b.readBigUInt64LE(p + 8));
      v3 = round(v3, b.readBigUInt64LE(p + 16));
      v4 = round(v4, b.readBigUInt64LE(p + 24));
    }
    h = (rotl(v1, 1n) + rotl(v2, 7n) + rotl(v3, 12n) + rotl(v4, 18n)) & M;
    for (const v of [v1, v2, v3, v4]) h = merge(h, v);
  } else {
    h = (seed + P5) & M;
  }
  h = (h + BigInt(len)) & M;
  for (; p + 8 <= len; p += 8) h = (rotl(h ^ round(0n, b.readBigUInt64LE(p)), 27n) * P1 + P4) & M;
  if (p + 4 <= len) {
    h = (rotl(h ^ ((BigInt(b.readUInt32LE(p)) * P1) & M), 23n) * P2 + P3) & M;
    p += 4;
  }
  for (; p < len; p++) h = (rotl(h ^ ((BigInt(b[p]) * P5) & M), 11n) * P1) & M;
  h ^= h >> 33n;
  h = (h * P2) & M;
  h ^= h >> 29n;
  h = (h * P3) & M;
  h ^= h >> 32n;
  return h;
}
