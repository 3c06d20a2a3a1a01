import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { dropRate, layerFidelity, routingAgreement, vectorErrors } from '../../lib/cap/accuracy';
import { writeJsonAtomic } from '../../lib/io/atomic_write';

describe('fidelity arithmetic', () => {
  test('vector errors by hand', () => {
    const e = vectorErrors([1, 2, 2], [1, 2, 3]); // d = (0,0,-1): ‖d‖=1, ‖r‖=√14
    expect(e.relativeL2).toBeCloseTo(1 / Math.sqrt(14), 14);
    expect(e.maxAbsError).toBe(1);
    expect(e.cosine).toBeCloseTo(11 / Math.sqrt(9 * 14), 14);
    expect(vectorErrors([0, 0], [0, 0])).toEqual({ relativeL2: 0, maxAbsError: 0, cosine: 1 });
    expect(() => vectorErrors([1], [1, 2])).toThrow(RangeError);
  });
  test('routing agreement compares sets, not order', () => {
    expect(routingAgreement([0, 1, 2, 3, 4, 5], [1, 0, 2, 4, 4, 5], 2)).toBeCloseTo(2 / 3, 14);
    expect(() => routingAgreement([0, 1, 2], [0, 1, 2], 2)).toThrow(/multiple of topK/);
    expect(dropRate(3, 12)).toBe(0.25);
    expect(dropRate(0, 0)).toBe(0);
  });
  test('layer fidelity on a sample of tokens', () => {
    // T=3 H=2 k=1; sample tokens 0 and 2; reference ids for every token
    const f = layerFidelity({
      output: [1, 1, 9, 9, 2, 2],
      ids: [0, 1, 3],
      reference: { output: [1, 1, 2, 3], expertIds: [0, 1, 2], sample: [0, 2] },
      hidden: 2,
      topK: 1,
      dropped: 1,
      assignments: 4,
    });
    expect(f.tokensCompared).toBe(2);
    expect(f.maxAbsError).toBe(1);
    expect(f.relativeL2).toBeCloseTo(1 / Math.sqrt(1 + 1 + 4 + 9), 14);
    expect(f.routingAgreement).toBe(0.5); // token 0 agrees, token 2 (3 vs 2) does not
    expect(f.dropRate).toBe(0.25);
  });
});

describe('atomic write', () => {
  test('writes whole files and leaves no temporary behind', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-atomic-'));
    const f = path.join(dir, 'r.json');
    writeJsonAtomic(f, { a: 1 });
    writeJsonAtomic(f, { a: 2 });
    expect(JSON.parse(fs.readFileSync(f, 'utf8'))).toEqual({ a: 2 });
    expect(fs.readdirSync(dir)).toEqual(['r.json']);
    expect(() => writeJsonAtomic(path.join(dir, 'missing', 'x.json'), 1)).toThrow();
    fs.rmSync(dir, { recursive: true });
  });
});
