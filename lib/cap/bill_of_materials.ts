// The hardware one configuration needs, priced: not the machine that happened to run it. A CPU
// configuration needs the cores it computed on, DRAM for what stays resident (routers, resident
// experts, shared experts, the pass's activation buffers; KV cache when modelled) and, when experts
// are offloaded, flash for the slow tier they stream from. A GPU configuration needs as many GPUs as
// their memory takes to hold the resident set, and host DRAM for experts offloaded to the host.
// Offloading experts then buys cheaper hardware at some loss of speed, and int4 needs less memory
// than bf16, so the cost axis says something tokens/s does not. Pure arithmetic on its inputs.
import { MoecapRangeError } from '../errors';
import type { CostComponent, PriceTable } from './cost';

export const GB = 1e9;

/** What a configuration keeps where, in bytes (summed over the layers it runs). */
export interface MemoryNeed {
  /** Routers, resident routed experts and shared experts. */
  residentWeightBytes: number;
  /** Activation buffers of the largest pass (input, expert intermediates, output). */
  bufferBytes: number;
  /** KV cache, when modelled (moecap runs MoE layers only: 0). */
  kvCacheBytes: number;
  /** Routed experts that live in the slow tier (offload). */
  offloadedBytes: number;
}

/** Memory a configuration of `layers` MoE layers needs; see MemoryNeed. */
export function memoryNeed(a: {
  layers: number;
  experts: number;
  residentExperts: number;
  expertBytes: number;
  routerBytes: number;
  sharedBytes: number;
  tokens: number;
  hidden: number;
  intermediate: number;
  topK: number;
  kvCacheBytes?: number;
}): MemoryNeed {
  if (!(a.residentExperts >= 0 && a.residentExperts <= a.experts))
    throw new MoecapRangeError('ERR_INVALID_ARGUMENT', 'residentExperts must be in [0, experts]');
  // fp32 activations: x and y [T, H], each token's k expert rows of gate/up output [T·k, F] and down output [T·k, H].
  const bufferBytes = 4 * a.tokens * (2 * a.hidden + a.topK * (a.intermediate + a.hidden));
  return {
    residentWeightBytes: a.layers * (a.routerBytes + a.sharedBytes + a.residentExperts * a.expertBytes),
    bufferBytes,
    kvCacheBytes: a.kvCacheBytes ?? 0,
    offloadedBytes: a.layers * (a.experts - a.residentExperts) * a.expertBytes,
  };
}

const MODELLED = 'modelled from the layer shapes and dtype';

function line(name: string, quantity: number, unit: string, entry: { priceUsd: number; powerW: number; source: string }, basis: string): CostComponent {
  return {
    name,
    quantity,
    unit,
    unitPriceUsd: entry.priceUsd,
    priceUsd: quantity * entry.priceUsd,
    powerW: quantity * entry.powerW,
    source: entry.source,
    basis,
  };
}

/** A CPU configuration: cores × $/core, resident memory × $/GB DRAM, offloaded experts × $/GB NVMe. */
export function cpuBillOfMaterials(prices: PriceTable, a: { cores: number; need: MemoryNeed }): CostComponent[] {
  if (!(Number.isInteger(a.cores) && a.cores >= 1)) throw new MoecapRangeError('ERR_INVALID_ARGUMENT', 'cores must be an integer >= 1');
  const n = a.need;
  const dramGB = (n.residentWeightBytes + n.bufferBytes + n.kvCacheBytes) / GB;
  const out = [
    line('cpu cores', a.cores, 'core', prices.cpuPerCore, 'the compute threads of the configuration'),
    line(
      'dram',
      dramGB,
      'GB',
      prices.dramPerGB,
      `resident weights ${(n.residentWeightBytes / GB).toPrecision(3)} GB + buffers ${(n.bufferBytes / GB).toPrecision(3)} GB` +
        (n.kvCacheBytes ? ` + KV cache ${(n.kvCacheBytes / GB).toPrecision(3)} GB` : ' (no KV cache: MoE layers only)') +
        `; ${MODELLED}`,
    ),
  ];
  if (n.offloadedBytes > 0) out.push(line('nvme (offload tier)', n.offloadedBytes / GB, 'GB', prices.nvmePerGB, `offloaded experts; ${MODELLED}`));
  return out;
}

/** GPUs of `gpuMemoryBytes` each needed to hold the resident set (at least one). */
export function gpusNeeded(residentBytes: number, gpuMemoryBytes: number): number {
  if (!(gpuMemoryBytes > 0)) throw new MoecapRangeError('ERR_INVALID_ARGUMENT', 'gpuMemoryBytes must be > 0');
  return Math.max(1, Math.ceil(residentBytes / gpuMemoryBytes));
}

/** A GPU configuration: the GPUs whose memory holds the resident set, host DRAM for offloaded experts. */
export function gpuBillOfMaterials(prices: PriceTable, a: { gpu: string; gpuMemoryBytes: number; need: MemoryNeed }): CostComponent[] {
  const e = prices.gpu[a.gpu];
  if (!e) throw new MoecapRangeError('ERR_INVALID_ARGUMENT', `no price for gpu '${a.gpu}' (known: ${Object.keys(prices.gpu).join(', ')})`);
  const n = a.need;
  const resident = n.residentWeightBytes + n.bufferBytes + n.kvCacheBytes;
  const count = gpusNeeded(resident, a.gpuMemoryBytes);
  const out = [
    line(a.gpu, count, 'GPU', e, `${(resident / GB).toPrecision(3)} GB resident over ${(a.gpuMemoryBytes / GB).toPrecision(3)} GB per GPU; ${MODELLED}`),
  ];
  if (n.offloadedBytes > 0)
    out.push(line('host dram (offload tier)', n.offloadedBytes / GB, 'GB', prices.dramPerGB, `experts offloaded to pinned host memory; ${MODELLED}`));
  return out;
}

/** One line per component: "2 core × $123 = $246 (source)". */
export function formatBillOfMaterials(components: CostComponent[]): string[] {
  return components.map((c) => {
    const q = c.quantity === undefined ? '' : `${formatQuantity(c.quantity)} ${c.unit} × $${formatUsd(c.unitPriceUsd ?? 0)} = `;
    return `${c.name}: ${q}$${formatUsd(c.priceUsd)}${c.basis ? ` [${c.basis}]` : ''} (${c.source})`;
  });
}

function formatQuantity(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toPrecision(3);
}

/** Dollars to a sensible precision: cents above $1, three significant digits below. */
export function formatUsd(v: number): string {
  if (!Number.isFinite(v)) return '–';
  if (Math.abs(v) >= 1) return v.toFixed(2);
  if (v === 0) return '0';
  return v.toPrecision(3);
}
