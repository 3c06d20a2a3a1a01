// Rows per expert of a single-process pass's routed ids: the routing "trace" balanced and redundant
// placements take.
export function loadsOf(ids: Int32Array, E: number): number[] {
  const n = new Array<number>(E).fill(0);
  for (const e of ids) n[e]++;
  return n;
}
