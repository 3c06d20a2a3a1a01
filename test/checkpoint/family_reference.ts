// Independent fp64 references of each routing family's MoE block, written from the families'
// modelling code (transformers models/*/modeling_*.py) and reading the tensors by their Hugging
// Face names. Returns the output [T, H] and each token's selected experts.
export type Weights = Map<string, Float32Array>;

export interface RefOut {
  out: Float64Array;
  ids: number[][];
  /** DeepSeek grouped routing: picks from dropped groups (taken at the masked score 0.0). */
  maskedPicks: number;
  /** gpt-oss: gate/up pre-activations the clamps changed. */
  clamped: number;
  /** Phi-3.5-MoE: sparsemixer rounds whose mask kept more than the pick but not every candidate. */
  partialMasks: number;
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
  family: 'mixtral' | 'olmoe' | 'qwen2_moe' | 'qwen3_moe' | 'deepseek_v2' | 'deepseek_v3' | 'granitemoe' | 'gpt_oss' | 'llama4' | 'phimoe';
  /** Phi-3.5-MoE router_jitter_noise (sparsemixer's eps; default 0.01). */
  jitterEps?: number;
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
  /** gpt-oss config swiglu_limit (default 7.0). */
  swigluLimit?: number;
  /** Llama 4: tensors under language_model. (Llama4ForConditionalGeneration). */
  llama4Nested?: boolean;
}

/** The HF tensor prefix of a layer's MoE block. */
export function blockPrefix(s: RefSpec, layer: number): string {
  if (s.family === 'mixtral' || s.family === 'granitemoe' || s.family === 'phimoe') return `model.layers.${layer}.block_sparse_moe.`;
  if (s.family === 'llama4') return `${s.llama4Nested ? 'language_model.' : ''}model.layers.${layer}.feed_forward.`;
  return `model.layers.${layer}.mlp.`;
}

/** x_t @ W[e] for W [E, rows, cols] (the modelling code's transposed layout): cols outputs. */
function xTimes(W: Float32Array, e: number, rows: number, cols: number, x: ArrayLike<number>, xOff: number, xScale = 1): Float64Array {
  const y = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const xv = x[xOff + r] * xScale;
    for (let c = 0; c < cols; c++) y[c] += xv * W[(e * rows + r) * cols + c];
  }
  return y;
}

// gpt-oss (transformers GptOssTopKRouter / GptOssExperts): logits = x·Wᵀ + b; top-k on the
// logits; softmax over the k; gate_up = x @ gate_up_proj[e] + bias; gate = even, up = odd
// columns; gate ≤ limit; |up| ≤ limit; glu = gate·σ(1.702·gate); out = ((up + 1)·glu) @
// down_proj[e] + bias, times the routing weight.
function gptOssBlock(s: RefSpec, get: (n: string) => Float32Array, x: Float32Array, t: number, out: Float64Array, st: { clamped: number }): number[] {
  const { H, F, E, k } = s;
  const limit = s.swigluLimit ?? 7.0,
    alpha = 1.702;
  const logits = matvec(get('router.weight'), E, H, x, t * H).map((v, e) => v + get('router.bias')[e]);
  const sel = topk(logits, k);
  const w = softmax(Float64Array.from(sel.map((e) => logits[e])));
  sel.forEach((e, j) => {
    const gu = xTimes(get('experts.gate_up_proj'), e, H, 2 * F, x, t * H);
    const b = get('experts.gate_up_proj_bias');
    const h = new Float64Array(F);
    for (let f = 0; f < F; f++) {
      const g0 = gu[2 * f] + b[e * 2 * F + 2 * f],
        u0 = gu[2 * f + 1] + b[e * 2 * F + 2 * f + 1];
      const gate = Math.min(g0, limit);
      const up = Math.max(-limit, Math.min(u0, limit));
      st.clamped += Number(gate !== g0) + Number(up !== u0);
      h[f] = (up + 1) * (gate * sigmoid(gate * alpha));
    }
    const y = xTimes(get('experts.down_proj'), e, F, H, h, 0);
    for (let i = 0; i < H; i++) out[t * H + i] += w[j] * (y[i] + get('experts.down_proj_bias')[e * H + i]);
  });
  return sel;
}

// Llama 4 (transformers Llama4TextMoe / Llama4Router / Llama4TextExperts): logits = x·Wᵀ; top-k;
// score = sigmoid(logit) for the k (the others −inf → 0); routed_in = x·score; gate_up =
// routed_in @ gate_up_proj[e], gate = first half, up = second; out = (up·silu(gate)) @
// down_proj[e], unscaled; plus the shared expert (SwiGLU, Llama4TextMLP).
function llama4Block(s: RefSpec, get: (n: string) => Float32Array, x: Float32Array, t: number, out: Float64Array): number[] {
  const { H, F, E, k } = s;
  const logits = matvec(get('router.weight'), E, H, x, t * H);
  const sel = topk(logits, k);
  for (const e of sel) {
    const gu = xTimes(get('experts.gate_up_proj'), e, H, 2 * F, x, t * H, sigmoid(logits[e]));
    const h = new Float64Array(F);
    for (let f = 0; f < F; f++) h[f] = gu[F + f] * silu(gu[f]);
    const y = xTimes(get('experts.down_proj'), e, F, H, h, 0);
    for (let i = 0; i < H; i++) out[t * H + i] += y[i];
  }
  const y = mlp(x, t, H, F, get('shared_expert.gate_proj.weight'), get('shared_expert.up_proj.weight'), get('shared_expert.down_proj.weight'));
  for (let i = 0; i < H; i++) out[t * H + i] += y[i];
  return sel;
}

export function referenceForward(s: RefSpec, W: Weights, layer: number, x: Float32Array): RefOut {
  const { H, F, E, k } = s;
  const T = x.length / H;
  const out = new Float64Array(T * H);
  const ids: number[][] = [];
  let maskedPicks = 0,
    partialMasks = 0;
  const st = { clamped: 0 };
  const granite = s.family === 'granitemoe';
  const p = blockPrefix(s, layer);
  const get = (n: string) => {
    const w = W.get(p + n);
    if (!w) throw new Error(`reference: no tensor ${p + n}`);
    return w;
  };
  for (let t = 0; t < T; t++) {
    if (s.family === 'gpt_oss' || s.family === 'llama4') {
      const sel = s.family === 'gpt_oss' ? gptOssBlock(s, get, x, t, out, st) : llama4Block(s, get, x, t, out);
      ids.push([...sel].sort((a, b) => a - b));
      continue;
    }
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
      case 'phimoe': {
        // transformers models/phimoe sparsemixer, eval mode: the pick is the argmax; its weight is
        // the softmax, taken at the pick, of the scores left after masking those with
        // (max − score) / max(|score|, max) > 2·eps; round 2 repeats with the first pick at −inf
        // (the mask still compares the original scores).
        const eps2 = 2 * (s.jitterEps ?? 0.01);
        const round = (scores: Float64Array) => {
          const pick = topk(scores, 1)[0],
            m = scores[pick];
          const masked = scores.map((v, e) => ((m - logits[e]) / Math.max(Math.abs(logits[e]), m) > eps2 ? -Infinity : v));
          const kept = masked.filter((v) => v !== -Infinity).length;
          if (kept > 1 && kept < scores.filter((v) => v !== -Infinity).length) partialMasks++;
          return { pick, w: softmax(masked)[pick] };
        };
        const r1 = round(logits);
        const r2 = round(logits.map((v, e) => (e === r1.pick ? -Infinity : v)));
        sel = [r1.pick, r2.pick];
        w = [r1.w, r2.w];
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
      } else if (s.family === 'mixtral' || s.family === 'phimoe') {
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
  return { out, ids, maskedPicks, clamped: st.clamped, partialMasks };
}
