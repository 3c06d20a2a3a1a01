// Expert parallelism from a checkpoint: each rank reads the router, the shared expert and only its
// own routed experts' bytes as it packs them (counted by the native reader's pread counters, not
// estimated; the whole layer's read is the single-process layer's), and the
// expert-parallel output equals the single-process checkpoint layer's bitwise. Tiny checkpoints in
// the exact on-disk layouts (test/checkpoint's writers): per-expert safetensors and stacked GGUF.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createMoeLayer, type MoeLayer, type MoeLayerOptions } from '../../lib';
import { checkpointReadCounters, resolveCheckpointOptions } from '../../lib/checkpoint/checkpoint';
import { placeExperts, simulateEp, type EpOptions, type EpSimulation } from '../../lib/ep';
import { bitwiseEqual, gaussian } from '../helpers';
import { buildGguf, buildSafetensors } from '../checkpoint/build';
import type { RefSpec } from '../checkpoint/family_reference';
import { rng } from '../checkpoint/writers';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-ep-ckpt-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function bytesRead(f: () => unknown): Promise<number> {
  const before = checkpointReadCounters();
  await f();
  return checkpointReadCounters().bytes - before.bytes;
}

async function check(checkpoint: string, layer: number, s: RefSpec, perExpertBytes: number, eps: EpOptions[]) {
  const x = gaussian(19 * s.H, 31);
  // The options read only what is not packed (a selection bias); the layer's rows are read as it packs.
  let options: MoeLayerOptions | undefined;
  const resolve = await bytesRead(() => (options = resolveCheckpointOptions({ checkpoint, layer, threads: 1, poison: true })));
  let single: MoeLayer | undefined;
  const whole = (await bytesRead(async () => (single = await createMoeLayer({ checkpoint, layer, threads: 1, poison: true })))) - resolve;
  expect(whole).toBeGreaterThan(s.E * perExpertBytes);
  const ref = await single!.forward(x);
  single!.close();
  for (const ep of eps) {
    const shares = placeExperts(s.E, ep);
    // Every rank packs from the same source: each reads everything but the experts it does not hold.
    let r: EpSimulation | undefined;
    const read = await bytesRead(async () => (r = await simulateEp(options!, ep, x)));
    expect(read).toBe(shares.reduce((n, held) => n + whole - (s.E - held.length) * perExpertBytes, 0));
    expect(Array.from(r!.expertIds)).toEqual(Array.from(ref.expertIds));
    expect(bitwiseEqual(r!.output, ref.output)).toBe(true);
  }
}

describe('expert parallelism from a checkpoint', () => {
  test('OLMoE safetensors, BF16 per-expert tensors: rank reads = its experts; contiguous and redundant bitwise equal', async () => {
    const s: RefSpec = { family: 'olmoe', H: 24, F: 12, E: 7, k: 3, normTopkProb: false };
    const dir = path.join(tmp, 'olmoe');
    const cfg = {
      architectures: ['OlmoeForCausalLM'],
      hidden_size: 24,
      num_hidden_layers: 1,
      num_experts_per_tok: 3,
      hidden_act: 'silu',
      intermediate_size: 12,
      num_experts: 7,
      norm_topk_prob: false,
    };
    buildSafetensors(dir, s, cfg, [0], () => 'BF16', rng(2));
    await check(dir, 0, s, 3 * 12 * 24 * 2, [{ ranks: 2 }, { ranks: 3, redundant: 2, loads: [5, 1, 9, 2, 2, 7, 1] }]);
  });

  test('qwen3moe GGUF, Q8_0 stacked experts: rank reads = its experts (ranges of the stacked tensors)', async () => {
    const H = 64,
      F = 32;
    const s: RefSpec = { family: 'qwen3_moe', H, F, E: 6, k: 2, normTopkProb: true };
    const file = path.join(tmp, 'qwen3.gguf');
    buildGguf(file, s, 'qwen3moe', 2, [0, 1], [['qwen3moe.expert_feed_forward_length', 'u32', F]], 'Q8_0', rng(41), 64);
    await check(file, 1, s, ((3 * F * H) / 32) * 34, [{ ranks: 2, placement: 'balanced', loads: [1, 8, 2, 7, 3, 6] }]);
  });
});
