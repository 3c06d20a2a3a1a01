// Cost per million tokens:
//   cost = (hardware price / (amortisation hours · utilisation) + power W · $/kWh / 1000)
//          × seconds per 1M tokens / 3600
// Utilisation spreads the purchase over the hours the hardware is busy (1 = always busy).
// Every input is printed with the result and can be overridden; prices are assumptions.
import { MoecapRangeError, MoecapTypeError, PlanError } from '../errors';

export interface PriceEntry {
  priceUsd: number;
  /** Power this component draws at load, W (a TDP-style figure). */
  powerW: number;
  /** What the figure is and where it comes from. */
  source: string;
}

export interface PriceTable {
  gpu: Record<string, PriceEntry>;
  /** Per core, so a run on n cores pays n of these. */
  cpuPerCore: PriceEntry;
  /** Per GB of DRAM. */
  dramPerGB: PriceEntry;
  /** Per GB of NVMe flash (the slow tier offloaded experts stream from on a CPU machine). */
  nvmePerGB: PriceEntry;
  amortisationYears: number;
  utilisation: number;
  usdPerKWh: number;
  note: string;
}

const ASSUMED = 'assumption (approximate public list/street price, 2024); override with your own';

/** Defaults: ASSUMPTIONS, labelled as such, each overridable. */
export const DEFAULT_PRICES: PriceTable = {
  gpu: {
    'h100-sxm': { priceUsd: 30000, powerW: 700, source: `${ASSUMED}; power: datasheet TDP` },
    'h100-pcie': { priceUsd: 25000, powerW: 350, source: `${ASSUMED}; power: datasheet TDP` },
    h200: { priceUsd: 32000, powerW: 700, source: `${ASSUMED}; power: datasheet TDP` },
    'a100-sxm': { priceUsd: 15000, powerW: 400, source: `${ASSUMED}; power: datasheet TDP` },
    'a100-pcie': { priceUsd: 12000, powerW: 300, source: `${ASSUMED}; power: datasheet TDP` },
    'rtx-4090': { priceUsd: 1599, powerW: 450, source: 'NVIDIA launch MSRP (Oct 2022); power: datasheet TDP' },
    a6000: { priceUsd: 4650, powerW: 300, source: 'NVIDIA list price at launch (2020); power: datasheet TDP' },
    l40s: { priceUsd: 8000, powerW: 350, source: `${ASSUMED}; power: datasheet TDP` },
  },
  cpuPerCore: {
    priceUsd: 123,
    powerW: 3.75,
    source: 'assumption: AMD EPYC 9654 launch list price $11,805 and 360 W TDP over 96 cores (Nov 2022)',
  },
  dramPerGB: {
    priceUsd: 4,
    powerW: 0.375,
    source: 'assumption: DDR5 RDIMM ~$4/GB (2024 street) and ~12 W per 32 GB module',
  },
  nvmePerGB: {
    priceUsd: 0.1,
    powerW: 0.0025,
    source: 'assumption: enterprise TLC NVMe ~$100/TB (2024 street) and ~10 W active per 3.84 TB drive',
  },
  amortisationYears: 3,
  utilisation: 1,
  usdPerKWh: 0.13,
  note: '$/kWh: assumption near the 2024 US commercial average (EIA); amortisation 3 years; utilisation 1 = busy all the time',
};

/** One line of a bill of materials: `quantity` `unit`s at `unitPriceUsd` each. */
export interface CostComponent {
  name: string;
  priceUsd: number;
  powerW: number;
  source: string;
  quantity?: number;
  unit?: string;
  unitPriceUsd?: number;
  /** Why this quantity: what it holds or runs. */
  basis?: string;
}

export type PowerSource = { kind: 'measured'; watts: number; source: string } | { kind: 'tdp-model'; watts: number; source: string };

export interface CostInputs {
  components: CostComponent[];
  amortisationYears: number;
  utilisation: number;
  usdPerKWh: number;
  power: PowerSource;
  /** Seconds the measured configuration needs for one million tokens. */
  secondsPer1MTokens: number;
}

export interface CostResult {
  usdPer1MTokens: number;
  hardwareUsdPerHour: number;
  energyUsdPerHour: number;
  hardwarePriceUsd: number;
  inputs: CostInputs;
}

export const HOURS_PER_YEAR = 8760;

export function costPerMillionTokens(inputs: CostInputs): CostResult {
  const { amortisationYears: years, utilisation: u, usdPerKWh, secondsPer1MTokens: s } = inputs;
  if (!(years > 0)) throw new MoecapRangeError('ERR_INVALID_ARGUMENT', 'amortisationYears must be > 0');
  if (!(u > 0 && u <= 1)) throw new MoecapRangeError('ERR_INVALID_ARGUMENT', 'utilisation must be in (0, 1]');
  if (!(usdPerKWh >= 0)) throw new MoecapRangeError('ERR_INVALID_ARGUMENT', 'usdPerKWh must be >= 0');
  if (!(s > 0)) throw new MoecapRangeError('ERR_INVALID_ARGUMENT', 'secondsPer1MTokens must be > 0');
  if (!(inputs.power.watts >= 0)) throw new MoecapRangeError('ERR_INVALID_ARGUMENT', 'power must be >= 0 W');
  const hardwarePriceUsd = inputs.components.reduce((a, c) => a + c.priceUsd, 0);
  const hardwareUsdPerHour = hardwarePriceUsd / (years * HOURS_PER_YEAR * u);
  const energyUsdPerHour = (inputs.power.watts * usdPerKWh) / 1000;
  return {
    usdPer1MTokens: ((hardwareUsdPerHour + energyUsdPerHour) * s) / 3600,
    hardwareUsdPerHour,
    energyUsdPerHour,
    hardwarePriceUsd,
    inputs,
  };
}

export function gpuComponents(prices: PriceTable, gpu: string, count = 1): CostComponent[] {
  const e = prices.gpu[gpu];
  if (!e) throw new MoecapRangeError('ERR_INVALID_ARGUMENT', `no price for gpu '${gpu}' (known: ${Object.keys(prices.gpu).join(', ')})`);
  return [{ name: `${count}× ${gpu}`, priceUsd: count * e.priceUsd, powerW: count * e.powerW, source: e.source }];
}

/** Power from energy counters when any measured one exists (J over the timed seconds), else the TDP model. */
export function powerFrom(components: CostComponent[], energyJoules: number | null, seconds: number, energySource?: string): PowerSource {
  if (energyJoules !== null && Number.isFinite(energyJoules) && seconds > 0)
    return { kind: 'measured', watts: energyJoules / seconds, source: energySource ?? 'energy counter' };
  return {
    kind: 'tdp-model',
    watts: components.reduce((a, c) => a + c.powerW, 0),
    source: "sum of the components' TDP-style figures (no energy counter on this machine)",
  };
}

/** Merges user overrides (partial, e.g. from a JSON file) over the defaults, checking types. */
export function mergePrices(base: PriceTable, o: unknown): PriceTable {
  if (o === null || typeof o !== 'object') throw new MoecapTypeError('ERR_INVALID_OPTION', 'price overrides must be a JSON object');
  const r: PriceTable = JSON.parse(JSON.stringify(base));
  const obj = o as Record<string, unknown>;
  const num = (k: string, v: unknown) => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new MoecapTypeError('ERR_INVALID_OPTION', `price override '${k}' must be a number >= 0`);
    return v;
  };
  const entry = (k: string, v: unknown, prev?: PriceEntry): PriceEntry => {
    if (v === null || typeof v !== 'object') throw new MoecapTypeError('ERR_INVALID_OPTION', `price override '${k}' must be an object`);
    const e = v as Record<string, unknown>;
    return {
      priceUsd: e.priceUsd !== undefined ? num(`${k}.priceUsd`, e.priceUsd) : (prev?.priceUsd ?? num(`${k}.priceUsd`, undefined)),
      powerW: e.powerW !== undefined ? num(`${k}.powerW`, e.powerW) : (prev?.powerW ?? num(`${k}.powerW`, undefined)),
      source: typeof e.source === 'string' ? e.source : 'user override',
    };
  };
  for (const [k, v] of Object.entries(obj)) {
    switch (k) {
      case 'amortisationYears':
      case 'utilisation':
      case 'usdPerKWh':
        r[k] = num(k, v);
        break;
      case 'cpuPerCore':
      case 'dramPerGB':
      case 'nvmePerGB':
        r[k] = entry(k, v, r[k]);
        break;
      case 'gpu':
        if (v === null || typeof v !== 'object') throw new MoecapTypeError('ERR_INVALID_OPTION', "price override 'gpu' must be an object");
        for (const [g, e] of Object.entries(v as object)) r.gpu[g] = entry(`gpu.${g}`, e, r.gpu[g]);
        break;
      case 'note':
        break;
      default:
        throw new MoecapTypeError(
          'ERR_INVALID_OPTION',
          `unknown price override '${k}' (known: gpu, cpuPerCore, dramPerGB, nvmePerGB, amortisationYears, utilisation, usdPerKWh)`,
        );
    }
  }
  if (!(r.utilisation > 0 && r.utilisation <= 1)) throw new PlanError('utilisation must be in (0, 1]');
  return r;
}
