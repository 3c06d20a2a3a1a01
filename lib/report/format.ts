// Number and text formatting for the page. Formatting rounds for reading; it never fills in a
// missing figure (null prints as the word that says why).

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Three significant digits, plain for everyday magnitudes, exponent otherwise. */
export function sig(v: number | null, missing = 'unavailable'): string {
  if (v === null) return missing;
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e-3 && a < 1e6) return Number(v.toPrecision(3)).toString();
  return v.toExponential(2);
}

const SI = [
  { p: 1e12, s: 'T' },
  { p: 1e9, s: 'G' },
  { p: 1e6, s: 'M' },
  { p: 1e3, s: 'k' },
];

/** 3.3e10 B/s → "33 GB/s" */
export function si(v: number | null, unit: string, missing = 'unavailable'): string {
  if (v === null) return missing;
  for (const { p, s } of SI) if (Math.abs(v) >= p) return `${sig(v / p)} ${s}${unit}`;
  return `${sig(v)} ${unit}`;
}

export function percent(v: number | null, missing = 'unavailable'): string {
  return v === null ? missing : `${sig(100 * v)}%`;
}

export function bytes(v: number | null, missing = 'unknown'): string {
  if (v === null) return missing;
  const gib = v / 2 ** 30;
  return gib >= 1 ? `${sig(gib)} GiB` : `${sig(v / 2 ** 20)} MiB`;
}

export function money(v: number | null, missing = 'unavailable'): string {
  return v === null ? missing : `$${sig(v)}`;
}
