// Token inputs for the three routing distributions.
//   natural: N(0,1) tokens through the layer's random router (logits ≈ N(0,1) per expert).
//   skewed:  each token's k experts drawn without replacement from Zipf(α) over expert index
//            (p_e ∝ (e+1)^−α, expert 0 most popular), then realised by designing the input.
//   trace:   the k experts of each token read from a routing trace (JSONL or binary), realised the same way.
// Why design inputs rather than bias the router: `selectionBias` shifts selection only, in score
// units, so a bias cannot produce a chosen distribution across softmax/sigmoid routers. Instead,
// with the router W [E, H] (regenerated from the seed, seeded_router.ts) and E <= H, the input
//   x = n + Wᵀ(WWᵀ)⁻¹(z − W n),   n ~ N(0,1)^H
// has logits exactly W x = z, where z puts the designed experts at +4 (in selection order, 0.01
// apart) and the rest at −4; x keeps N(0,1)-like magnitude in the null space of W. Every router
// (softmax/sigmoid, renormalised or not, grouped when the chosen experts fit in the kept groups)
// then selects the designed set. The runner measures how often it did (designAgreement).
import { MoecapRangeError } from '../errors';
import { TraceSpill } from '../interop/trace_spill';

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

/** A routing trace in memory: per layer, the k expert ids of each token in token order. */
export interface RoutingTrace {
  file: string;
  topK: number;
  layers: Int32Array[];
}

/**
 * A routing trace (JSONL or binary .mctrace) read by the core's reader (TraceSpill: its checks and
 * ERR_CORRUPT_FILE messages naming the file, line and field), against the model's shape, and held
 * in memory: a run replays a few passes of tokens, not a whole serving trace.
 */
export async function readRoutingTrace(file: string, experts: number, topK: number): Promise<RoutingTrace> {
  const spill = await TraceSpill.read(file, { experts, topK });
  try {
    return { file, topK: spill.topK, layers: Array.from({ length: spill.layers }, (_, l) => spill.layer(l)) };
  } finally {
    spill.close();
  }
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
