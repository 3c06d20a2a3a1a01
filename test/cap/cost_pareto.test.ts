import { raplEnergy } from '../../lib/cap/energy';
import { costPerMillionTokens, DEFAULT_PRICES, gpuComponents, mergePrices, powerFrom } from '../../lib/cap/cost';
import { cpuBillOfMaterials } from '../../lib/cap/bill_of_materials';
import { paretoFrontier, type CapPoint } from '../../lib/cap/pareto';
import { radarScores } from '../../lib/cap/radar';

describe('cost per 1M tokens', () => {
  test('hand calculation: one H100 SXM at its TDP, 1000 tokens/s', () => {
    const components = gpuComponents(DEFAULT_PRICES, 'h100-sxm');
    const power = powerFrom(components, null, 1);
    expect(power).toMatchObject({ kind: 'tdp-model', watts: 700 });
    const r = costPerMillionTokens({ components, amortisationYears: 3, utilisation: 1, usdPerKWh: 0.13, power, secondsPer1MTokens: 1e6 / 1000 });
    // hardware 30000 / (3·8760 h) = 1.14155 $/h; energy 700 W · 0.13 $/kWh = 0.091 $/h; × 1000 s / 3600
    expect(r.hardwareUsdPerHour).toBeCloseTo(30000 / 26280, 12);
    expect(r.energyUsdPerHour).toBeCloseTo(0.091, 12);
    expect(r.usdPer1MTokens).toBeCloseTo(((30000 / 26280 + 0.091) * 1000) / 3600, 12);
    expect(r.usdPer1MTokens).toBeCloseTo(0.3423757, 6);
    // utilisation 0.5 doubles the hardware part only
    const h = costPerMillionTokens({ ...r.inputs, utilisation: 0.5 });
    expect(h.hardwareUsdPerHour).toBeCloseTo(2 * r.hardwareUsdPerHour, 12);
  });
  test('measured power replaces the TDP model, labelled', () => {
    const need = (gb: number) => ({ residentWeightBytes: gb * 1e9, bufferBytes: 0, kvCacheBytes: 0, offloadedBytes: 0 });
    const p = powerFrom(cpuBillOfMaterials(DEFAULT_PRICES, { cores: 2, need: need(24) }), 50, 2, 'powercap:package-0');
    expect(p).toEqual({ kind: 'measured', watts: 25, source: 'powercap:package-0' });
    const cpu = cpuBillOfMaterials(DEFAULT_PRICES, { cores: 2, need: need(10) });
    expect(cpu[0].priceUsd).toBe(246);
    expect(cpu[1].priceUsd).toBe(40);
    expect(powerFrom(cpu, null, 1).watts).toBeCloseTo(2 * 3.75 + 10 * 0.375, 12);
  });
  test('overrides and bad input', () => {
    const m = mergePrices(DEFAULT_PRICES, { usdPerKWh: 0.3, gpu: { 'h100-sxm': { priceUsd: 20000 } }, cpuPerCore: { priceUsd: 1, powerW: 2, source: 'mine' } });
    expect(m.usdPerKWh).toBe(0.3);
    expect(m.gpu['h100-sxm']).toMatchObject({ priceUsd: 20000, powerW: 700, source: 'user override' });
    expect(m.cpuPerCore).toEqual({ priceUsd: 1, powerW: 2, source: 'mine' });
    expect(DEFAULT_PRICES.usdPerKWh).toBe(0.13);
    expect(() => mergePrices(DEFAULT_PRICES, { bogus: 1 })).toThrow(/unknown price override 'bogus'/);
    expect(() => mergePrices(DEFAULT_PRICES, { utilisation: 2 })).toThrow(/utilisation/);
    expect(() => mergePrices(DEFAULT_PRICES, { usdPerKWh: 'x' })).toThrow(/usdPerKWh/);
    expect(() =>
      costPerMillionTokens({
        components: [],
        amortisationYears: 3,
        utilisation: 1,
        usdPerKWh: 0.1,
        power: { kind: 'tdp-model', watts: 1, source: '' },
        secondsPer1MTokens: 0,
      }),
    ).toThrow(RangeError);
  });
});

const SET: CapPoint[] = [
  { id: 'A', cost: 1, accuracy: 0.9, performance: 100 },
  { id: 'B', cost: 2, accuracy: 0.9, performance: 100 }, // A is as good and cheaper
  { id: 'C', cost: 0.5, accuracy: 0.5, performance: 50 },
  { id: 'D', cost: 1, accuracy: 0.95, performance: 90 },
  { id: 'E', cost: 3, accuracy: 0.5, performance: 40 }, // dominated by A and by C; A comes first
  { id: 'F', cost: 1, accuracy: 0.9, performance: 100 }, // ties A: neither dominates
];

describe('Pareto frontier', () => {
  test('hand-made set', () => {
    const r = paretoFrontier(SET);
    expect(r.frontier).toEqual(['A', 'C', 'D', 'F']);
    expect(r.dominatedBy).toEqual({ B: 'A', E: 'A' });
  });
  test('bad input', () => {
    expect(() => paretoFrontier([SET[0], SET[0]])).toThrow(/duplicate/);
    expect(() => paretoFrontier([{ id: 'x', cost: NaN, accuracy: 1, performance: 1 }])).toThrow(/cost/);
  });
});

describe('radar normalisation', () => {
  const pts = [SET[0], SET[2], SET[3]]; // A, C, D
  test('ratio-to-best: p/max, a/max, min(c)/c', () => {
    const r = radarScores(pts);
    expect(r[0]).toEqual({ id: 'A', cost: 0.5, accuracy: 0.9 / 0.95, performance: 1 });
    expect(r[1]).toEqual({ id: 'C', cost: 1, accuracy: 0.5 / 0.95, performance: 0.5 });
    expect(r[2]).toEqual({ id: 'D', cost: 0.5, accuracy: 1, performance: 0.9 });
  });
  test('min-max, cost inverted, constant axis → 1', () => {
    const r = radarScores(pts, 'min-max');
    expect(r[0]).toMatchObject({ id: 'A', cost: 0, performance: 1 });
    expect(r[0].accuracy).toBeCloseTo(0.4 / 0.45, 14);
    expect(r[1]).toEqual({ id: 'C', cost: 1, accuracy: 0, performance: 0 });
    expect(r[2].performance).toBeCloseTo(0.8, 12);
    expect(radarScores([SET[0], SET[5]], 'min-max')[0]).toEqual({ id: 'A', cost: 1, accuracy: 1, performance: 1 });
  });
});

describe('RAPL energy without double counting', () => {
  const e = (name: string, value: number) => ({ name, available: true as const, unit: 'J', value, source: 'powercap' });
  test('packages + dram subzones; core subzones are inside their package', () => {
    const r = raplEnergy([
      e('energy:package-0 (intel-rapl:0)', 100),
      e('energy:core (intel-rapl:0:0)', 60),
      e('energy:dram (intel-rapl:0:1)', 10),
      e('energy:package-1 (intel-rapl:1)', 90),
      { name: 'gpu', available: false, reason: 'no driver' },
    ]);
    expect(r!.joules).toBe(200);
    expect(r!.source).toMatch(/package-0.*dram.*package-1/);
  });
  test('psys alone when present; nothing measured → null', () => {
    expect(raplEnergy([e('energy:package-0 (intel-rapl:0)', 5), e('energy:psys (intel-rapl:1)', 9)])!.joules).toBe(9);
    expect(raplEnergy([{ name: 'energy', available: false, unit: 'J', reason: 'no /sys/class/powercap' }])).toBeNull();
  });
});
