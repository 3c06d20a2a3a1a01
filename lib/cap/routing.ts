// Token inputs for the three routing distributions.
//   natural: N(0,1) tokens through the layer's random router (logits ≈ N(0,1) per expert).
//   skewed:  each token's k experts drawn without replacement from Zipf(α) over expert index
//            (p_e ∝ (e+1)^−α, expert 0 most popular), then realised by designing the input.
//   trace:   the k experts of each token read from a JSONL trace, realised the same way.
// Why design inputs rather than bias the router: `selectionBias` shifts selection only, in score
// units, so a bias cannot produce a chosen distribution across softmax/sigmoid routers. Instead,
// with the router W [E, H] (regenerated from the seed, seeded_router.ts) and E <= H, the input
//   x = n + Wᵀ(WWᵀ)⁻¹(z − W n),   n ~ N(0,1)^H
// has logits exactly W x = z, where z puts the designed experts at +4 (in selection order, 0.01
// apart) and the rest at −4; x keeps N(0,1)-like magnitude in the null space of W. Every router
// (softmax/sigmoid, renormalised or not, grouped when the chosen experts fit in the kept groups)
// then selects the designed set. The runner measures how often it did (designAgreement).
import { MoecapRangeError, PlanError, shown } from '../errors';
import * as fs from 'fs';

/** mulberry32: small deterministic PRNG (inputs must be reproducible across resumed runs). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function gaussian(u: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
}

export function naturalTokens(T: number, H: number, seed: number): Float32Array {
  const g = gaussian(rng(seed));
  const x = new Float32Array(T * H);
  for (let i = 0; i < x.length; i++) x[i] = g();
  return x;
}

/** Zipf(α) weights over expert index: p_e ∝ (e+1)^−α (unnormalised). */
export function zipfWeights(experts: number, alpha: number): number[] {
  return Array.from({ length: experts }, (_, e) => Math.pow(e + 1, -alpha));
}

/** [T, k] expert ids: k distinct experts per token, drawn without replacement ∝ weights. */
export function sampleRouting(T: number, k: number, weights: number[], seed: number): Int32Array {
  const u = rng(seed);
  const E = weights.length;
  if (k > E) throw new MoecapRangeError('ERR_INVALID_ARGUMENT', 'k must be <= number of experts');
  const ids = new Int32Array(T * k);
  const w = new Float64Array(E);
  for (let t = 0; t < T; t++) {
    w.set(weights);
    let total = w.reduce((a, b) => a + b, 0);
    for (let j = 0; j < k; j++) {
      let r = u() * total;
      let e = 0;
      while (e < E - 1 && (r >= w[e] || w[e] === 0)) {
        r -= w[e];
        e++;
      }
      while (w[e] === 0) e = (e + 1) % E; // rounding at the end of the walk
      ids[t * k + j] = e;
      total -= w[e];
      w[e] = 0;
    }
  }
  return ids;
}

/** A parsed routing trace: per layer, the k expert ids of each token in file order. */
export interface RoutingTrace {
  file: string;
  topK: number;
  layers: Int32Array[];
}

/**
 * JSONL, one object per line: {"layer": l, "token": t, "experts": [e1, …, ek]}; blank lines skipped.
 * Tokens of a layer are taken in increasing `token` order. Errors name the file and line.
 */
export function parseTrace(file: string, experts: number, topK: number): RoutingTrace {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new PlanError(`cannot read trace '${file}': ${(e as Error).message}`);
  }
  const perLayer = new Map<number, Map<number, number[]>>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    const where = `trace '${file}' line ${i + 1}`;
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch {
      throw new PlanError(`${where}: not valid JSON`);
    }
    const r = o as { layer?: unknown; token?: unknown; experts?: unknown };
    if (r === null || typeof r !== 'object') throw new PlanError(`${where}: expected an object {layer, token, experts}`);
    if (!Number.isInteger(r.layer) || (r.layer as number) < 0) throw new PlanError(`${where}: 'layer' must be an integer >= 0`);
    if (!Number.isInteger(r.token) || (r.token as number) < 0) throw new PlanError(`${where}: 'token' must be an integer >= 0`);
    if (!Array.isArray(r.experts) || r.experts.length !== topK)
      throw new PlanError(`${where}: 'experts' must be an array of ${topK} expert ids (the preset's k)`);
    for (const e of r.experts)
      if (!Number.isInteger(e) || e < 0 || e >= experts) throw new PlanError(`${where}: expert id ${shown(e)} out of range [0, ${experts})`);
    if (new Set(r.experts).size !== topK) throw new PlanError(`${where}: expert ids must be distinct`);
    const l = r.layer as number,
      t = r.token as number;
    if (!perLayer.has(l)) perLayer.set(l, new Map());
    if (perLayer.get(l)!.has(t)) throw new PlanError(`${where}: token ${t} of layer ${l} appears twice`);
    perLayer.get(l)!.set(t, r.experts as number[]);
  }
  if (perLayer.size === 0) throw new PlanError(`trace '${file}' has no routing lines`);
  const maxLayer = Math.max(...perLayer.keys());
  const layers: Int32Array[] = [];
  for (let l = 0; l <= maxLayer; l++) {
    const m = perLayer.get(l);
    if (!m) throw new PlanError(`trace '${file}': layer ${l} is missing (layers must be 0..${maxLayer})`);
    const toks = [...m.keys()].sort((a, b) => a - b);
    const ids = new Int32Array(toks.length * topK);
    toks.forEach((t, i) => ids.set(m.get(t)!, i * topK));
    layers.push(ids);
  }
  return { file, topK, layers };
}

/** T tokens of trace layer (layer mod trace layers), starting at token `offset`, wrapping around. */
export function traceSlice(trace: RoutingTrace, layer: number, offset: number, T: number): Int32Array {
  const ids = trace.layers[layer % trace.layers.length];
  const k = trace.topK;
  const n = ids.length / k;
  const out = new Int32Array(T * k);
  for (let t = 0; t < T; t++) out.set(ids.subarray(((offset + t) % n) * k, ((offset + t) % n) * k + k), t * k);
  return out;
}

/** Solves W x = z for designed routing (see the file comment). */
export class InputDesigner {
  private readonly P: Float64Array; // [H, E] = Wᵀ (W Wᵀ)⁻¹
  constructor(
    private readonly W: Float32Array,
    readonly experts: number,
    readonly hidden: number,
  ) {
    const E = experts,
      H = hidden;
    if (E > H) throw new MoecapRangeError('ERR_INVALID_ARGUMENT', `designed routing needs experts <= hidden (E=${E}, H=${H})`);
    // Gram matrix and its Cholesky factor (W has full row rank with probability 1).
    const G = new Float64Array(E * E);
    for (let i = 0; i < E; i++)
      for (let j = 0; j <= i; j++) {
        let s = 0;
        for (let h = 0; h < H; h++) s += W[i * H + h] * W[j * H + h];
        G[i * E + j] = G[j * E + i] = s;
      }
    const Lc = new Float64Array(E * E);
    for (let i = 0; i < E; i++)
      for (let j = 0; j <= i; j++) {
        let s = G[i * E + j];
        for (let p = 0; p < j; p++) s -= Lc[i * E + p] * Lc[j * E + p];
        if (i === j) {
          if (!(s > 0)) throw new MoecapRangeError('ERR_INVALID_ARGUMENT', 'router matrix is rank-deficient; cannot design routing');
          Lc[i * E + i] = Math.sqrt(s);
        } else Lc[i * E + j] = s / Lc[j * E + j];
      }
    // Ginv columns by solving L Lᵀ g = e_c; then P = Wᵀ Ginv.
    const Ginv = new Float64Array(E * E);
    const y = new Float64Array(E);
    for (let c = 0; c < E; c++) {
      for (let i = 0; i < E; i++) {
        let s = i === c ? 1 : 0;
        for (let p = 0; p < i; p++) s -= Lc[i * E + p] * y[p];
        y[i] = s / Lc[i * E + i];
      }
      for (let i = E - 1; i >= 0; i--) {
        let s = y[i];
        for (let p = i + 1; p < E; p++) s -= Lc[p * E + i] * Ginv[p * E + c];
        Ginv[i * E + c] = s / Lc[i * E + i];
      }
    }
    this.P = new Float64Array(H * E);
    for (let h = 0; h < H; h++)
      for (let c = 0; c < E; c++) {
        let s = 0;
        for (let i = 0; i < E; i++) s += W[i * H + h] * Ginv[i * E + c];
        this.P[h * E + c] = s;
      }
  }

  /** Inputs [T, H] whose router logits select `ids` ([T, k], in selection order). */
  design(ids: Int32Array, topK: number, seed: number, margin = 4): Float32Array {
    const E = this.experts,
      H = this.hidden,
      W = this.W,
      P = this.P;
    const T = ids.length / topK;
    const g = gaussian(rng(seed));
    const x = new Float32Array(T * H);
    const n = new Float64Array(H);
    const d = new Float64Array(E);
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < H; h++) n[h] = g();
      d.fill(-margin);
      for (let j = 0; j < topK; j++) d[ids[t * topK + j]] = margin - 0.01 * j;
      for (let e = 0; e < E; e++) {
        let s = 0;
        for (let h = 0; h < H; h++) s += W[e * H + h] * n[h];
        d[e] -= s;
      }
      for (let h = 0; h < H; h++) {
        let s = n[h];
        for (let e = 0; e < E; e++) s += P[h * E + e] * d[e];
        x[t * H + h] = s;
      }
    }
    return x;
  }
}
