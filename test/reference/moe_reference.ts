// A plain fp64 MoE layer, written for clarity, not speed: the yardstick every engine result is
// compared with.
export interface RefConfig {
  hidden: number;
  intermediate: number;
  experts: number;
  topK: number;
  scoring: 'softmax' | 'sigmoid';
  renormalize: boolean;
  routedScalingFactor?: number;
  selectionBias?: Float32Array;
  groups?: { count: number; keep: number; score?: 'top2-sum' | 'max' };
  sharedExperts?: { intermediate: number; gated?: boolean };
  capacityFactor?: number;
}

export interface RefWeights {
  router: Float32Array; // [E,H]
  gate: Float32Array; // [E,F,H]
  up: Float32Array; // [E,F,H]
  down: Float32Array; // [E,H,F]
  shared?: { gate: Float32Array; up: Float32Array; down: Float32Array; gateWeight?: Float32Array };
}

export interface RefRouting {
  ids: Int32Array; // [T,k]
  weights: Float64Array; // [T,k]
  kept: Uint8Array; // [T,k] 0 when dropped by capacity
  dropped: number;
  /** Picks from dropped groups (selected at the masked score 0.0). */
  maskedPicks: number;
}

export function refRoute(c: RefConfig, w: RefWeights, x: Float32Array): RefRouting {
  const { hidden: H, experts: E, topK: k } = c;
  const T = x.length / H;
  const ids = new Int32Array(T * k);
  const weights = new Float64Array(T * k);
  let maskedPicks = 0;
  for (let t = 0; t < T; t++) {
    const logits = new Float64Array(E);
    for (let e = 0; e < E; e++) {
      let d = 0;
      for (let h = 0; h < H; h++) d += x[t * H + h] * w.router[e * H + h];
      logits[e] = d;
    }
    let scores: Float64Array;
    if (c.scoring === 'softmax') {
      const m = Math.max(...logits);
      const ex = logits.map((l) => Math.exp(l - m));
      const s = ex.reduce((a, b) => a + b, 0);
      scores = ex.map((v) => v / s);
    } else {
      scores = logits.map((l) => 1 / (1 + Math.exp(-l)));
    }
    const sel = scores.map((s, e) => s + (c.selectionBias ? c.selectionBias[e] : 0));
    let inDroppedGroup: (e: number) => boolean = () => false;
    if (c.groups) {
      const gs = E / c.groups.count;
      const gscore: number[] = [];
      for (let g = 0; g < c.groups.count; g++) {
        const vals = Array.from(sel.subarray(g * gs, (g + 1) * gs)).sort((a, b) => b - a);
        gscore.push(c.groups.score === 'max' || gs < 2 ? vals[0] : vals[0] + vals[1]);
      }
      const keep = new Set<number>();
      for (let r = 0; r < c.groups.keep; r++) {
        let best = -1;
        for (let g = 0; g < gscore.length; g++) if (!keep.has(g) && (best < 0 || gscore[g] > gscore[best])) best = g;
        keep.add(best);
      }
      // As the DeepSeek code's masked_fill(~mask, 0.0): dropped experts stay selectable at 0.0.
      for (let e = 0; e < E; e++) if (!keep.has(Math.floor(e / gs))) sel[e] = 0;
      inDroppedGroup = (e) => !keep.has(Math.floor(e / gs));
    }
    let sum = 0;
    for (let j = 0; j < k; j++) {
      let best = -1;
      for (let e = 0; e < E; e++) if (sel[e] !== -Infinity && (best < 0 || sel[e] > sel[best])) best = e;
      ids[t * k + j] = best;
      if (inDroppedGroup(best)) maskedPicks++;
      weights[t * k + j] = scores[best];
      sum += scores[best];
      sel[best] = -Infinity;
    }
    for (let j = 0; j < k; j++) {
      if (c.renormalize) weights[t * k + j] /= sum + 1e-20;
      weights[t * k + j] *= c.routedScalingFactor ?? 1;
    }
  }
  // Capacity: each expert keeps its first C assignments in token order.
  const kept = new Uint8Array(T * k).fill(1);
  let dropped = 0;
  if (c.capacityFactor && c.capacityFactor > 0) {
    const cap = Math.max(1, Math.ceil((c.capacityFactor * T * k) / E - 1e-9));
    const used = new Int32Array(E);
    for (let a = 0; a < T * k; a++) {
      if (used[ids[a]] < cap) used[ids[a]]++;
      else {
        kept[a] = 0;
        dropped++;
      }
    }
  }
  return { ids, weights, kept, dropped, maskedPicks };
}

function swiglu(
  x: Float32Array,
  t: number,
  H: number,
  F: number,
  gate: Float32Array,
  up: Float32Array,
  down: Float32Array,
  goff: number,
  doff: number,
): Float64Array {
  const a = new Float64Array(F);
  for (let f = 0; f < F; f++) {
    let g = 0,
      u = 0;
    for (let h = 0; h < H; h++) {
      g += x[t * H + h] * gate[goff + f * H + h];
      u += x[t * H + h] * up[goff + f * H + h];
    }
    a[f] = (g / (1 + Math.exp(-g))) * u;
  }
  const y = new Float64Array(H);
  for (let h = 0; h < H; h++) {
    let d = 0;
    for (let f = 0; f < F; f++) d += down[doff + h * F + f] * a[f];
    y[h] = d;
  }
  return y;
}

/** Sparse form: only the selected (and kept) experts are computed. */
export function refForward(c: RefConfig, w: RefWeights, x: Float32Array, routing = refRoute(c, w, x)): Float64Array {
  const { hidden: H, intermediate: F, topK: k } = c;
  const T = x.length / H;
  const out = new Float64Array(T * H);
  for (let t = 0; t < T; t++) {
    for (let j = 0; j < k; j++) {
      if (!routing.kept[t * k + j]) continue;
      const e = routing.ids[t * k + j];
      const y = swiglu(x, t, H, F, w.gate, w.up, w.down, e * F * H, e * H * F);
      for (let h = 0; h < H; h++) out[t * H + h] += routing.weights[t * k + j] * y[h];
    }
    addShared(c, w, x, t, out);
  }
  return out;
}

/** Dense form: every expert computed, unselected experts weighted 0. */
export function refForwardDense(c: RefConfig, w: RefWeights, x: Float32Array): Float64Array {
  const { hidden: H, intermediate: F, experts: E, topK: k } = c;
  const T = x.length / H;
  const r = refRoute(c, w, x);
  const out = new Float64Array(T * H);
  for (let t = 0; t < T; t++) {
    for (let e = 0; e < E; e++) {
      let weight = 0;
      for (let j = 0; j < k; j++) if (r.ids[t * k + j] === e && r.kept[t * k + j]) weight = r.weights[t * k + j];
      const y = swiglu(x, t, H, F, w.gate, w.up, w.down, e * F * H, e * H * F);
      for (let h = 0; h < H; h++) out[t * H + h] += weight * y[h];
    }
    addShared(c, w, x, t, out);
  }
  return out;
}

function addShared(c: RefConfig, w: RefWeights, x: Float32Array, t: number, out: Float64Array) {
  if (!c.sharedExperts || !w.shared) return;
  const H = c.hidden,
    Fs = c.sharedExperts.intermediate;
  let g = 1;
  if (c.sharedExperts.gated && w.shared.gateWeight) {
    let d = 0;
    for (let h = 0; h < H; h++) d += x[t * H + h] * w.shared.gateWeight[h];
    g = 1 / (1 + Math.exp(-d));
  }
  const y = swiglu(x, t, H, Fs, w.shared.gate, w.shared.up, w.shared.down, 0, 0);
  for (let h = 0; h < H; h++) out[t * H + h] += g * y[h];
}
