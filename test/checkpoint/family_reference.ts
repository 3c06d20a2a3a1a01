// Independent fp64 references of each routing family's MoE block, written from the families'
// modelling code (transformers models/*/modeling_*.py) and reading the tensors by their Hugging
// Face names. Returns the output [T, H] and each token's selected experts.
export type Weights = Map<string, Float32Array>;

export interface RefOut {
  out: Float64Array;
  ids: number[][];
  /** DeepSeek grouped routing: picks from dropped groups (taken at the masked score 0.0). */
  maskedPicks: number;
}

function matvec(W: Float32Array, rows: number, cols: number, x: ArrayLike<number>, xOff = 0, wOff = 0): Float64Array {
  const y = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s += W[wOff + r * cols + c] * x[xOff + c];
    y[r] = s;
  }
  return y;
}
const silu = (g: number) => g / (1 + Math.exp(-g));
const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

function softmax(l: Float64Array): Float64Array {
  const m = Math.max(...l);
  const e = l.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}
/** Indices of the k largest values. */
function topk(v: ArrayLike<number>, k: number): number[] {
  return Array.from({ length: v.length }, (_, i) => i)
    .sort((a, b) => v[b] - v[a])
    .slice(0, k);
}

/** SwiGLU MLP: down(silu(gate x) * up x) with gate/up [F,H] at gOff/uOff, down [H,F] at dOff. */
function mlp(
  x: Float32Array,
  t: number,
  H: number,
  F: number,
  gate: Float32Array,
  up: Float32Array,
  down: Float32Array,
  gOff = 0,
  uOff = 0,
  dOff = 0,
): Float64Array {
  const g = matvec(gate, F, H, x, t * H, gOff),
    u = matvec(up, F, H, x, t * H, uOff);
  const a = g.map((v, i) => silu(v) * u[i]);
  return matvec(down, H, F, a, 0, dOff);
}

export interface RefSpec {
  family: 'mixtral' | 'olmoe' | 'qwen2_moe' | 'qwen3_moe' | 'deepseek_v2' | 'deepseek_v3' | 'granitemoe';
  H: number;
  F: number;
  E: number;
  k: number;
  normTopkProb?: boolean;
  routedScalingFactor?: number;
  nGroup?: number;
  topkGroup?: number;
  /** DeepSeek-V2 topk_method (default greedy). */
  topkMethod?: 'greedy' | 'group_limited_greedy';
  sharedF?: number;
  /** Added to every DeepSeek-V3 e_score_correction_bias entry the test builder writes. */
  biasShift?: number;
}

export function referenceForward(s: RefSpec, W: Weights, layer: number, x: Float32Array): RefOut {
  const { H, F, E, k } = s;
  const T = x.length / H;
  const out = new Float64Array(T * H);
  const ids: number[][] = [];
  let maskedPicks = 0;
  const granite = s.family === 'granitemoe';
  const p = s.family === 'mixtral' || granite ? `model.layers.${layer}.block_sparse_moe.` : `model.layers.${layer}.mlp.`;
  const get = (n: string) => {
    const w = W.get(p + n);
    if (!w) throw new Error(`reference: no tensor ${p + n}`);
    return w;
  };
  for (let t = 0; t < T; t++) {
    const logits = matvec(get(granite ? 'router.layer.weight' : 'gate.weight'), E, H, x, t * H);
    let sel: number[], w: number[];
    switch (s.family) {
      case 'mixtral': {
        const sc = softmax(logits);
        sel = topk(sc, k);
        const sum = sel.reduce((a, e) => a + sc[e], 0);
        w = sel.map((e) => sc[e] / sum);
        break;
      }
      case 'granitemoe': {
        sel = topk(logits, k);
        w = Array.from(softmax(Float64Array.from(sel.map((e) => logits[e]))));
        break;
      }
      case 'olmoe':
      case 'qwen2_moe':
      case 'qwen3_moe': {
        const sc = softmax(logits);
        sel = topk(sc, k);
        w = sel.map((e) => sc[e]);
        if (s.normTopkProb) {
          const sum = w.reduce((a, b) => a + b, 0);
          w = w.map((v) => v / sum);
        }
        break;
      }
      case 'deepseek_v2': {
        const sc = softmax(logits);
        if (s.topkMethod === 'group_limited_greedy') {
          // A group scores its best expert; experts of dropped groups become 0.0 and the weights
          // are the masked scores' top-k values.
          const G = s.nGroup ?? 1,
            gs = E / G;
          const groupScore = Array.from({ length: G }, (_, g) => Math.max(...sc.subarray(g * gs, (g + 1) * gs)));
          const keep = new Set(topk(groupScore, s.topkGroup ?? G));
          const masked = sc.map((v, e) => (keep.has(Math.floor(e / gs)) ? v : 0.0));
          sel = topk(masked, k);
          maskedPicks += sel.filter((e) => !keep.has(Math.floor(e / gs))).length;
          w = sel.map((e) => masked[e]);
        } else {
          sel = topk(sc, k);
          w = sel.map((e) => sc[e]);
        }
        if (k > 1 && s.normTopkProb) {
          const den = w.reduce((a, b) => a + b, 0) + 1e-20;
          w = w.map((v) => v / den);
        } else w = w.map((v) => v * (s.routedScalingFactor ?? 1));
        break;
      }
      case 'deepseek_v3': {
        const sc = logits.map(sigmoid);
        const bias = get('gate.e_score_correction_bias');
        const choice = sc.map((v, e) => v + bias[e]);
        const G = s.nGroup ?? 1,
          gs = E / G;
        const groupScore = Array.from({ length: G }, (_, g) => {
          const v = topk(choice.subarray(g * gs, (g + 1) * gs), 2).map((i) => choice[g * gs + i]);
          return v[0] + v[1];
        });
        const keep = new Set(topk(groupScore, s.topkGroup ?? G));
        const masked = choice.map((v, e) => (keep.has(Math.floor(e / gs)) ? v : 0.0));
        sel = topk(masked, k);
        maskedPicks += sel.filter((e) => !keep.has(Math.floor(e / gs))).length;
        w = sel.map((e) => sc[e]);
        if (s.normTopkProb) {
          const den = w.reduce((a, b) => a + b, 0) + 1e-20;
          w = w.map((v) => v / den);
        }
        w = w.map((v) => v * (s.routedScalingFactor ?? 1));
        break;
      }
    }
    ids.push([...sel].sort((a, b) => a - b));
    sel.forEach((e, j) => {
      let y: Float64Array;
      if (granite) {
        const inp = get('input_linear.weight'),
          o = get('output_linear.weight');
        y = mlp(x, t, H, F, inp, inp, o, e * 2 * F * H, e * 2 * F * H + F * H, e * H * F);
      } else if (s.family === 'mixtral') {
        y = mlp(x, t, H, F, get(`experts.${e}.w1.weight`), get(`experts.${e}.w3.weight`), get(`experts.${e}.w2.weight`));
      } else {
        y = mlp(x, t, H, F, get(`experts.${e}.gate_proj.weight`), get(`experts.${e}.up_proj.weight`), get(`experts.${e}.down_proj.weight`));
      }
      for (let h = 0; h < H; h++) out[t * H + h] += w[j] * y[h];
    });
    if (s.sharedF) {
      const Fs = s.sharedF;
      const sp = s.family === 'qwen2_moe' ? 'shared_expert.' : 'shared_experts.';
      const y = mlp(x, t, H, Fs, get(`${sp}gate_proj.weight`), get(`${sp}up_proj.weight`), get(`${sp}down_proj.weight`));
      const g = s.family === 'qwen2_moe' ? sigmoid(matvec(get('shared_expert_gate.weight'), 1, H, x, t * H)[0]) : 1;
      for (let h = 0; h < H; h++) out[t * H + h] += g * y[h];
    }
  }
  return { out, ids, maskedPicks };
}
