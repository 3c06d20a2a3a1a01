'use strict';
// Deterministic N(0,1) layer inputs for the benches (Box–Muller over a xorshift stream).
function gaussian(n, seed) {
  let s = seed >>> 0 || 1;
  const u = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return (s + 0.5) / 4294967296;
  };
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return a;
}

module.exports = { gaussian };
