// Snaps weight rows onto the mxfp4 / fp8 grids, so that packing them is exact and the fp64
// reference of the master weights is the reference of the stored values. Plain CommonJS: the
// arm64 suite (correctness.js, under qemu with no TypeScript) and the jest suites share it.
//   mxfp4: E2M1 values × 2^e per 32 inputs, with a ±6 in every block, so the packer's OCP scale
//          rule (2^(⌊log2 max|w|⌋ − 2)) picks that 2^e;
//   fp8: E4M3 values × s per 128 inputs, with a ±448 in every block, so the packer's max/448 scale
//        is s (kept to 8 significant bits, so s·448 and s·value are exact in fp32).
'use strict';

const E2M1 = [0, 0.5, 1, 1.5, 2, 3, 4, 6];

// Nearest value of a sorted grid (ties either way: any grid value is exact).
function nearestE2M1(a) {
  let best = 0;
  for (const g of E2M1) if (Math.abs(a - g) < Math.abs(a - best)) best = g;
  return best;
}
function nearestE4M3(a) {
  if (a >= 448) return 448;
  if (a < 2 ** -6) return Math.round(a * 512) / 512;
  const e = Math.floor(Math.log2(a));
  return (Math.round((a / 2 ** e) * 8) / 8) * 2 ** e;
}

// Snaps every row (length K) of the Float32Array `m` in place onto the format's grid, block by block.
function snapRows(m, K, dtype, seed) {
  const block = dtype === 'mxfp4' ? 32 : 128;
  let n = seed;
  for (let r = 0; r < m.length / K; r++)
    for (let k0 = 0; k0 < K; k0 += block) {
      const k1 = Math.min(K, k0 + block);
      let amax = 0,
        at = k0;
      for (let k = k0; k < k1; k++)
        if (Math.abs(m[r * K + k]) > amax) {
          amax = Math.abs(m[r * K + k]);
          at = r * K + k;
        }
      // mxfp4: 2^e with amax/2^e in [4, 8); fp8: s = amax/448 kept to 8 significant bits.
      const e = Math.floor(Math.log2(amax)) - 2;
      const s = dtype === 'mxfp4' ? 2 ** e : Math.fround(2 ** (Math.floor(Math.log2(amax / 448)) - 7) * (128 + (n++ % 128)));
      for (let k = r * K + k0; k < r * K + k1; k++) {
        const a = Math.abs(m[k]) / s;
        const g = k === at ? (dtype === 'mxfp4' ? 6 : 448) : dtype === 'mxfp4' ? nearestE2M1(a) : nearestE4M3(a);
        m[k] = Math.sign(m[k] || 1) * g * s;
      }
    }
}

// A copy of layer weights {router, gate, up, down, ...} with the expert matrices snapped
// (gate/up rows of length H, down rows of length F).
function snapWeights(w, H, F, dtype) {
  const gate = w.gate.slice(),
    up = w.up.slice(),
    down = w.down.slice();
  snapRows(gate, H, dtype, 1);
  snapRows(up, H, dtype, 2);
  snapRows(down, F, dtype, 3);
  return { ...w, gate, up, down };
}

module.exports = { snapRows, snapWeights };
