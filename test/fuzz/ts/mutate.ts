// A small seeded fuzzer for the TypeScript parsers of outside input: mutations of valid seed files
// (byte flips, truncation, insertion, splicing, and on JSON: type swaps, huge or non-finite
// numbers, deep nesting, long strings, removed or duplicated keys). Deterministic for a seed, so a
// failure is reproduced by its seed and iteration.

/** xorshift32: a fast, seeded PRNG. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)];
  }
}

const ODD_VALUES: unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  0.5,
  -0.0,
  1e308,
  -1e308,
  2 ** 53 + 2,
  Number.MAX_SAFE_INTEGER,
  1e-320,
  '',
  'x',
  '0',
  'true',
  'NaN',
  [],
  {},
  [null],
  { kind: 'cpu-measured' },
  '__proto__',
  'constructor',
];
const HUGE_NUMBER_TEXT = ['1e999', '-1e999', '1e309', '123456789012345678901234567890', '-0', '4294967296', '9007199254740993', '1e-400'];

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Every (parent, key) slot of a JSON value, for picking one at random. */
function slots(v: Json, out: Array<{ parent: Json[] | { [k: string]: Json }; key: string | number }> = []) {
  if (Array.isArray(v))
    v.forEach((c, i) => {
      out.push({ parent: v, key: i });
      slots(c, out);
    });
  else if (v !== null && typeof v === 'object')
    for (const k of Object.keys(v)) {
      out.push({ parent: v, key: k });
      slots(v[k], out);
    }
  return out;
}

const NEST = '\u0001nest\u0001';

/** `v` inside `depth` arrays or objects, as text (JSON.stringify itself overflows on deep values). */
function nestedText(v: Json, depth: number, rng: Rng): string {
  const inner = JSON.stringify(v) ?? 'null';
  const obj = rng.next() < 0.5;
  return (obj ? '{"a":' : '[').repeat(depth) + inner + (obj ? '}' : ']').repeat(depth);
}

/** One structural mutation of parsed JSON text; null when the text does not parse. */
function mutateJson(text: string, rng: Rng): string | null {
  let v: Json;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  const all = slots(v);
  let nested: string | null = null;
  const ops = rng.int(3) + 1;
  for (let n = 0; n < ops; n++) {
    if (!all.length) return JSON.stringify(rng.pick(ODD_VALUES));
    const { parent, key } = rng.pick(all);
    const p = parent as Record<string | number, Json>;
    switch (rng.int(7)) {
      case 0:
        p[key] = rng.pick(ODD_VALUES) as Json;
        break; // type swap
      case 1:
        p[key] = 'x'.repeat(1 + rng.int(1 << 20));
        break; // long string
      case 2:
        if (nested === null) {
          nested = nestedText(p[key], 1 + rng.int(rng.next() < 0.2 ? 20000 : 64), rng);
          p[key] = NEST;
        }
        break; // deep nesting
      case 3:
        if (Array.isArray(parent)) parent.splice(Number(key), 1);
        else delete p[key];
        break; // remove
      case 4:
        if (Array.isArray(parent)) parent.push(...Array(1 + rng.int(64)).fill(parent[Number(key)]));
        else p[key + '_'] = p[key];
        break; // duplicate / unknown key
      case 5:
        p[key] = typeof p[key] === 'number' ? -(p[key] as number) * (rng.next() < 0.5 ? 1e300 : 1) : (rng.int(2000) - 1000) / 7;
        break; // numbers
      case 6: {
        const s = JSON.stringify(p[key]) ?? 'null';
        p[key] = s.length < 1e5 ? (s as Json) : null;
        break;
      } // value as a string
    }
  }
  let out = JSON.stringify(v);
  if (nested !== null) out = out.replace(JSON.stringify(NEST), () => nested!);
  // Numbers JSON.stringify cannot write: put them in the text.
  if (rng.next() < 0.3) out = out.replace(/-?\d+(\.\d+)?(e[+-]?\d+)?/, rng.pick(HUGE_NUMBER_TEXT));
  return out;
}

/** One text-level mutation (also for JSONL). */
function mutateText(text: string, rng: Rng, others: readonly string[]): string {
  const b = Buffer.from(text, 'utf8');
  switch (rng.int(7)) {
    case 0: {
      // byte flips
      for (let i = 0, n = 1 + rng.int(8); i < n && b.length; i++) b[rng.int(b.length)] ^= 1 << rng.int(8);
      return b.toString('utf8');
    }
    case 1:
      return text.slice(0, rng.int(text.length + 1)); // truncation
    case 2: {
      // insert structural characters
      const at = rng.int(text.length + 1);
      return text.slice(0, at) + rng.pick(['{', '}', '[', ']', ',', ':', '"', '\n', '\u0000', '\\', 'null', '1e999', '\ufeff']) + text.slice(at);
    }
    case 3: {
      // splice with another seed
      const o = rng.pick(others);
      return text.slice(0, rng.int(text.length + 1)) + o.slice(rng.int(o.length + 1));
    }
    case 4: {
      // duplicate or drop lines
      const lines = text.split('\n');
      const i = rng.int(lines.length);
      if (rng.next() < 0.5) lines.splice(i, 0, ...Array(1 + rng.int(4)).fill(lines[i]));
      else lines.splice(i, 1);
      return lines.join('\n');
    }
    case 5:
      return text.replace(/-?\d+(\.\d+)?(e[+-]?\d+)?/g, (m) => (rng.next() < 0.1 ? rng.pick(HUGE_NUMBER_TEXT) : m));
    default:
      return ''; // empty
  }
}

/** A mutated input from the seeds: JSON-aware for JSON seeds (per line for JSONL), else text-level. */
export function mutate(seeds: readonly string[], rng: Rng, jsonl = false): string {
  const seed = rng.pick(seeds);
  if (rng.next() < 0.55) {
    if (jsonl) {
      const lines = seed.split('\n');
      const i = rng.int(lines.length);
      const m = mutateJson(lines[i], rng);
      if (m !== null) {
        lines[i] = m;
        return lines.join('\n');
      }
    } else {
      const m = mutateJson(seed, rng);
      if (m !== null) return m;
    }
  }
  let t = mutateText(seed, rng, seeds);
  if (rng.next() < 0.3) t = mutateText(t, rng, seeds);
  return t;
}
