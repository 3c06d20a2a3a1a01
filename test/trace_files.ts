// Routing traces for the tests, in the exact on-disk layouts the readers take: the JSONL
// ({"layer", "token", "experts"} per line, the layers of a token interleaved as engines record them)
// and the binary .mctrace (written by lib/interop/trace_binary.ts).
import * as fs from 'fs';
import { writeBinaryTrace } from '../lib/interop/trace_binary';

/** layers[l]: layer l's ids [tokens, k]; every layer has the same tokens. */
export function writeJsonlTrace(file: string, layers: Int32Array[], k: number): void {
  const lines: string[] = [];
  for (let t = 0; t < layers[0].length / k; t++)
    for (let l = 0; l < layers.length; l++) lines.push(JSON.stringify({ layer: l, token: t, experts: Array.from(layers[l].subarray(t * k, t * k + k)) }));
  fs.writeFileSync(file, lines.join('\n') + '\n');
}

/** The same layers as a binary trace over `experts` experts. */
export function writeMctrace(file: string, layers: Int32Array[], k: number, experts: number): void {
  writeBinaryTrace(file, { layers: layers.length, topK: k, tokens: layers.map((ids) => ids.length / k), layer: (l) => layers[l] }, experts);
}
