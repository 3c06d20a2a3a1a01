// The fields of ep_results.json (written by rank 0 of `moecap run --ep`, lib/ep_run.ts) that the
// expert-parallel report reads, checked before anything is drawn: a truncated, edited or foreign
// file is refused with one line naming the field, never half-drawn. Nothing here measures.
import type { EpResults } from '../ep_run';
import { ReportInputError, shown } from '../errors';

/** The ep_results.json schema this report reads. */
export const EP_SCHEMA = 'moecap-ep/1';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** True when the parsed file says it is an expert-parallel results file (of any version). */
export function looksLikeEpResults(raw: unknown): boolean {
  return isObj(raw) && typeof raw.schema === 'string' && raw.schema.startsWith('moecap-ep/');
}

function need(ok: boolean, name: string, field: string, what: string): void {
  if (!ok) throw new ReportInputError(`${name}: ${field} ${what} (not a complete ep_results.json: truncated, edited or another program's)`);
}

// Unavailable (`available` false with its reason), else `available` absent: the page tells them apart by the key.
function checkUnavailable(o: Obj, name: string, field: string): boolean {
  if (!('available' in o)) return false;
  need(o.available === false, name, `${field}.available`, 'must be false where present');
  need(typeof o.reason === 'string', name, `${field}.reason`, 'must be a string');
  return true;
}

// A rank's S-MBU / S-MFU: a value (with its peak, and why it is above 1 where it is), or unavailable with its reason.
function checkRatio(u: unknown, name: string, field: string, flops: boolean): void {
  need(isObj(u), name, field, 'must be an object');
  const o = u as Obj;
  if (checkUnavailable(o, name, field)) return;
  need(isNum(o.value), name, `${field}.value`, 'must be a number');
  need(o.above1 === undefined || typeof o.above1 === 'string', name, `${field}.above1`, 'must be a string where present');
  if (flops) need(typeof o.peakDtype === 'string' && isNum(o.peakFlops), name, field, 'must hold peakDtype (a string) and peakFlops (a number)');
}

// A rank's ceilings: its read bandwidth windows, or unavailable with its reason.
function checkCeiling(c: unknown, i: number, name: string): void {
  const at = `ceilings[${i}]`;
  need(isObj(c), name, at, 'must be an object');
  if (checkUnavailable(c as Obj, name, at)) return;
  need(isNum((c as Obj).bandwidthBefore) && isNum((c as Obj).bandwidthAfter), name, at, 'must hold bandwidthBefore and bandwidthAfter (numbers)');
}

function checkRank(p: unknown, i: number, name: string): void {
  const at = `perRank[${i}]`;
  need(isObj(p), name, at, 'must be an object');
  const o = p as Obj;
  need(o.rank === i, name, `${at}.rank`, `must be ${i}`);
  need(Array.isArray(o.experts), name, `${at}.experts`, 'must be an array');
  for (const k of ['dispatchNs', 'computeNs', 'combineNs', 'totalNs', 'bytesSent', 'bytesReceived'])
    need(isNum(o[k]) && (o[k] as number) >= 0, name, `${at}.${k}`, 'must be a number >= 0');
  need(isObj(o.compute) && isNum((o.compute as Obj).seconds) && isNum((o.compute as Obj).flops), name, `${at}.compute`, 'must hold seconds and flops');
  checkRatio(o.smbu, name, `${at}.smbu`, false);
  checkRatio(o.smfu, name, `${at}.smfu`, true);
}

/** Checks a parsed ep_results.json and returns it typed, or throws ReportInputError naming the field. */
export function toEpResults(raw: unknown, name = 'ep_results.json'): EpResults {
  need(isObj(raw), name, 'the file', 'must be a JSON object');
  const r = raw as Obj;
  if (r.schema !== EP_SCHEMA) throw new ReportInputError(`${name}: schema ${shown(r.schema)} is not supported by this report (it reads ${EP_SCHEMA})`);
  need(Number.isInteger(r.ranks) && (r.ranks as number) >= 1, name, 'ranks', 'must be an integer >= 1');
  for (const k of ['placement', 'preset', 'phase', 'dtype', 'backend']) need(typeof r[k] === 'string', name, k, 'must be a string');
  need(Number.isInteger(r.tokens) && (r.tokens as number) >= 1, name, 'tokens', 'must be an integer >= 1');
  for (const k of ['passNs', 'dispatchShare', 'combineShare', 'imbalance', 'tokensPerSecond', 'capacityFactor']) need(isNum(r[k]), name, k, 'must be a number');
  need(Number.isInteger(r.layers) && (r.layers as number) >= 1, name, 'layers', 'must be an integer >= 1');
  need(Number.isInteger(r.redundant) && (r.redundant as number) >= 0, name, 'redundant', 'must be an integer >= 0');
  need(r.residentFraction === null || isNum(r.residentFraction), name, 'residentFraction', 'must be a number or null');
  need(r.transport === undefined || r.transport === 'mpi' || r.transport === 'nccl', name, 'transport', "must be 'mpi' or 'nccl'");
  need(isObj(r.mpi) && typeof (r.mpi as Obj).runtime === 'string', name, 'mpi', 'must hold runtime (a string)');
  need(
    isObj(r.link) && isNum((r.link as Obj).latencySeconds) && isNum((r.link as Obj).bandwidthBytesPerSecond),
    name,
    'link',
    'must hold latencySeconds and bandwidthBytesPerSecond',
  );
  need(Array.isArray(r.perRank) && r.perRank.length === r.ranks, name, 'perRank', `must list the ${r.ranks} ranks`);
  (r.perRank as unknown[]).forEach((p, i) => checkRank(p, i, name));
  need(Array.isArray(r.ceilings) && r.ceilings.length === r.ranks, name, 'ceilings', `must list the ${r.ranks} ranks`);
  (r.ceilings as unknown[]).forEach((c, i) => checkCeiling(c, i, name));
  return raw as EpResults;
}
