// Cost of an engine run two ways:
//   ours:   amortised USD per 1M tokens (lib/cap/cost.ts) for each pass and for a phase in aggregate,
//           every price an overridable assumption (--prices);
//   theirs: MoE-CAP's calculate_cost (moe_cap/utils/cost_utils.py), reproduced as it prints it: a
//           dollar figure, (price·n + CPU $7214)·1.25 + (TDP·n + 350 W)/1000·$0.15/kWh·makespan/3600·1.2,
//           i.e. essentially the purchase price × 1.25, not a cost per token; None (null) when the GPU
//           name it detected is not a key of its price table.
import { costPerMillionTokens, gpuComponents, type CostResult, type PriceTable } from '../cap/cost';
import type { DatasheetEntry } from '../cap/hardware';
import { passTokens, type MoecapPass, type MoecapRun } from './moecap_folder';

// MoE-CAP's tables, as keyed there. Its detected H100 SXM name is "NVIDIA-H100-HBM3-80GB"
// (get_gpu_details), but this table spells it "NVIDIA-H100-80GB-HBM3", so that GPU gets None.
const THEIR_GPU_COST: Record<string, number> = {
  'NVIDIA-A100-PCIe-40GB': 9000,
  'NVIDIA-A100-PCIe-80GB': 19000,
  'NVIDIA-A100-SXM4-40GB': 12000,
  'NVIDIA-A100-SXM4-80GB': 19000,
  'NVIDIA-H100-PCIe-80GB': 28000,
  'NVIDIA-H200-141GB': 35000,
  'NVIDIA-H100-80GB-HBM3': 38000,
  'NVIDIA-RTX-A5000-24GB': 2400,
  'NVIDIA-RTX-A6000-48GB': 4500,
  'NVIDIA-RTX-PRO-6000-Blackwell-Server-Edition-96GB': 8000,
  'NVIDIA-GB10-UnknownGB': 3999,
  'NVIDIA-GB10-128GB': 3999,
};
const THEIR_GPU_TDP: Record<string, number> = {
  'NVIDIA-A100-PCIe-40GB': 250,
  'NVIDIA-A100-PCIe-80GB': 300,
  'NVIDIA-A100-SXM4-40GB': 400,
  'NVIDIA-A100-SXM4-80GB': 400,
  'NVIDIA-H100-PCIe-80GB': 350,
  'NVIDIA-H200-141GB': 350,
  'NVIDIA-H100-80GB-HBM3': 700,
  'NVIDIA-RTX-A5000-24GB': 230,
  'NVIDIA-RTX-A6000-48GB': 300,
  'NVIDIA-RTX-PRO-6000-Blackwell-Server-Edition-96GB': 600,
  'NVIDIA-GB10-UnknownGB': 140,
  'NVIDIA-GB10-128GB': 140,
};
const THEIR_CPU_COST = 7214,
  THEIR_CPU_TDP = 350,
  THEIR_USD_PER_KWH = 0.15;
const THEIR_SCALE_ENERGY_TERM = 1.2,
  THEIR_SCALE_CAPITAL_TERM = 1.25;

export interface TheirCost {
  /** What MoE-CAP prints for `cost` (null = its None). */
  value: number | null;
  /** The same formula with the H100 SXM name mismatch fixed (null when the GPU is unknown to it anyway). */
  ifKeyMatched: number | null;
  makespanSeconds: number | null;
  note: string;
}

/** MoE-CAP's calculate_cost(e2e_latency = the run's makespan, gpu_type, num_gpus). */
export function theirCost(gpuType: string | null, numGpus: number, makespanSeconds: number | null): TheirCost {
  const formula = (key: string) =>
    (THEIR_GPU_COST[key] * numGpus + THEIR_CPU_COST) * THEIR_SCALE_CAPITAL_TERM +
    ((((THEIR_GPU_TDP[key] * numGpus + THEIR_CPU_TDP) / 1000) * THEIR_USD_PER_KWH * (makespanSeconds ?? 0)) / 3600) * THEIR_SCALE_ENERGY_TERM;
  const inTable = gpuType !== null && gpuType in THEIR_GPU_COST;
  const fixedKey = gpuType === 'NVIDIA-H100-HBM3-80GB' ? 'NVIDIA-H100-80GB-HBM3' : null;
  return {
    value: inTable ? formula(gpuType!) : null,
    ifKeyMatched: inTable ? formula(gpuType!) : fixedKey ? formula(fixedKey) : null,
    makespanSeconds,
    note: inTable
      ? 'USD, (GPU price·n + CPU) × 1.25 + energy over the makespan × 1.2: a purchase price, not per token'
      : fixedKey
        ? `None: its GPU name '${gpuType}' is not a key of its price table, which spells it '${fixedKey}'`
        : `None: GPU '${gpuType ?? '(not recorded)'}' is not in its price table`,
  };
}

/** The run's makespan: MoE-CAP stores e2e_s = makespan / requests; requests from its token profile. */
export function makespanOf(run: MoecapRun): number | null {
  const perf = run.metrics?.performance,
    prof = run.metrics?.batch_token_profile;
  const e2e = perf?.e2e_s,
    tokens = prof?.prefill_tokens,
    perReq = prof?.prefill_tokens_per_request;
  if (Number.isFinite(e2e) && Number.isFinite(tokens) && Number.isFinite(perReq) && perReq > 0) return e2e * Math.round(tokens / perReq);
  const total = run.metrics?.quality?.total,
    rps = perf?.['request/s'];
  if (Number.isFinite(total) && Number.isFinite(rps) && rps > 0) return total / rps;
  return null;
}

/** Ours for a span of passes: its seconds per 1M tokens priced with the GPUs' amortisation and TDP power. */
export function ourCost(passes: MoecapPass[], prices: PriceTable, d: DatasheetEntry, numGpus: number): CostResult {
  const seconds = passes.reduce((a, p) => a + p.seconds, 0);
  const tokens = passes.reduce((a, p) => a + passTokens(p), 0);
  const components = gpuComponents(prices, d.name, numGpus);
  return costPerMillionTokens({
    components,
    amortisationYears: prices.amortisationYears,
    utilisation: prices.utilisation,
    usdPerKWh: prices.usdPerKWh,
    power: { kind: 'tdp-model', watts: components.reduce((a, c) => a + c.powerW, 0), source: "the GPUs' TDP from the price table (MoE-CAP records no energy)" },
    secondsPer1MTokens: (seconds / tokens) * 1e6,
  });
}
