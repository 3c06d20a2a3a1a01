'use strict';
// Deterministic inputs for the benches and scripts: a xorshift32 stream of uniforms in (0, 1), and
// N(0,1) layer inputs from it (Box–Muller).
function uniformStream(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return (s + 0.5) / 4294967296;
  };
}

function gaussian(n, seed) {
  const u = uniformStream(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return a;
}

module.exports = { gaussian, uniformStream };
