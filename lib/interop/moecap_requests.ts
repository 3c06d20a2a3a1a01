// A MoE-CAP run's per-request records, as its client measured them, and the request latency they
// give (Auto-CAP/MoE-CAP moe_cap/runner/openai_api_profile.py):
//   output_data_<ds>_<ts>.jsonl  since 2026-03-19, one request per line: index, input_tokens, output_tokens
//                                (the generated text); since 2026-07-01 success, input_token_count,
//                                output_token_count; since 2026-07-08 ttft_s and latency_s (client seconds)
//   detailed_results_<ds>.jsonl  before 2026-03-19, one request per line: prompt_length, success, output_len,
//                                ttft, latency, itl
// MoE-CAP writes a time it did not measure as 0 (`or 0`: a failed request, or a first token of a
// non-streaming one), so 0 reads as not measured.
/* eslint-disable @typescript-eslint/no-explicit-any -- MoE-CAP files are external JSON of loose shape, read field by field */
import { summarize, type Summary } from '../cap/metrics';
import { shown } from '../errors';
import { corrupt, jsonlLines, parseLine } from './jsonl_lines';

export interface MoecapRequest {
  line: number;
  /** null: the record does not say (output_data before 2026-07-01). */
  success: boolean | null;
  outputTokens: number | null;
  /** Client seconds to the first token, null where not measured. */
  ttft: number | null;
  /** Client seconds to the last token, null where not measured. */
  latency: number | null;
}

export type RequestLayout = 'output_data' | 'per-request detailed_results';

export interface RequestRecords {
  file: string;
  layout: RequestLayout;
  requests: MoecapRequest[];
}

// The field names of each layout.
const FIELDS: Record<RequestLayout, { ttft: string; latency: string; output: string }> = {
  output_data: { ttft: 'ttft_s', latency: 'latency_s', output: 'output_token_count' },
  'per-request detailed_results': { ttft: 'ttft', latency: 'latency', output: 'output_len' },
};

/** A record of the older per-request detailed_results layout: no forward_mode, a request's token counts. */
export const isRequestRecord = (r: Record<string, unknown>) => r.forward_mode === undefined && ('prompt_length' in r || 'output_len' in r);

/** One request from its parsed line; `bad(field, message)` makes the error naming file, line and field. */
export function requestFromRecord(r: Record<string, any>, line: number, layout: RequestLayout, bad: (f: string, m: string) => Error): MoecapRequest {
  const f = FIELDS[layout];
  // A time: absent, null or 0 → not measured; anything else must be a finite number >= 0.
  const seconds = (k: string): number | null => {
    const v = r[k];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw bad(k, `must be seconds >= 0, got ${shown(v)}`);
    return v > 0 ? v : null;
  };
  const count = (k: string): number | null => {
    const v = r[k];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw bad(k, `must be an integer >= 0, got ${shown(v)}`);
    return v;
  };
  if (r.success !== undefined && r.success !== null && typeof r.success !== 'boolean') throw bad('success', `must be true or false, got ${shown(r.success)}`);
  return {
    line,
    success: typeof r.success === 'boolean' ? r.success : null,
    outputTokens: count(f.output),
    ttft: seconds(f.ttft),
    latency: seconds(f.latency),
  };
}

/** An output_data file's requests. */
export function readOutputData(file: string): RequestRecords {
  const what = 'MoE-CAP output data';
  const requests: MoecapRequest[] = [];
  for (const ln of jsonlLines(file, what, 16 << 20)) {
    const r = parseLine(file, what, ln);
    if (r === null || typeof r !== 'object' || Array.isArray(r)) throw corrupt(file, what, ln.line, '(line)', 'expected an object');
    requests.push(requestFromRecord(r as Record<string, any>, ln.line, 'output_data', (k, m) => corrupt(file, what, ln.line, k, m)));
  }
  return { file, layout: 'output_data', requests };
}

export interface RequestLatency {
  attempted: number;
  /** Requests recorded as successful; null when the records do not say. */
  completed: number | null;
  /** Completed requests with a measured first token: the client's time to it. */
  ttft: Summary | null;
  /** Completed requests with >= 2 tokens and both times: (latency − TTFT) / (tokens − 1), the mean gap between its tokens. */
  tpot: Summary | null;
  /** Completed requests with a measured latency: the client's time to the last token. */
  e2e: Summary | null;
}

/** The client-side latency of the run's requests (only the completed ones count, as MoE-CAP's figures). */
export function requestLatency(rr: RequestRecords): RequestLatency {
  const known = rr.requests.some((q) => q.success !== null);
  const done = rr.requests.filter((q) => q.success === true);
  const ttfts: number[] = [],
    tpots: number[] = [],
    e2es: number[] = [];
  for (const q of done) {
    if (q.ttft !== null) ttfts.push(q.ttft);
    if (q.latency !== null) e2es.push(q.latency);
    if (q.ttft !== null && q.latency !== null && q.outputTokens !== null && q.outputTokens >= 2 && q.latency >= q.ttft)
      tpots.push((q.latency - q.ttft) / (q.outputTokens - 1));
  }
  const summary = (xs: number[]) => (xs.length ? summarize(xs) : null);
  return { attempted: rr.requests.length, completed: known ? done.length : null, ttft: summary(ttfts), tpot: summary(tpots), e2e: summary(e2es) };
}
