// What `moecap inspect` reports about a checkpoint: its family, MoE layers, shapes, on-disk
// dtypes and bytes per expert, from the headers only (no tensor data is read).
import * as path from 'path';
import { checkLayer, rowBytes, summariseLayers, type Checkpoint } from './checkpoint';
import type { TensorSlice } from './families';
import type { RouterGroups } from '../types';

export interface CheckpointDescription {
  path: string;
  format: 'safetensors' | 'gguf';
  files: string[];
  architecture: string;
  family: string;
  layers: number;
  moeLayers: number[];
  denseLayers: number[];
  hidden: number;
  intermediate: number;
  experts: number;
  topK: number;
  sharedExperts: { intermediate: number; gated: boolean } | null;
  routing: {
    rule: string;
    scoring: string;
    renormalize: boolean;
    routedScalingFactor: number;
    groups: RouterGroups | null;
    selectionBias: boolean;
  };
  /** The tensors of the first MoE layer: shape and on-disk dtype. */
  tensors: Array<{ name: string; shape: number[]; dtype: string }>;
  /** On-disk bytes of one routed expert (gate + up + down) in the first MoE layer. */
  bytesPerExpert: number;
  /** On-disk bytes of all routed experts over all MoE layers (same per layer). */
  expertBytesTotal: number;
}

export function describeCheckpoint(ck: Checkpoint): CheckpointDescription {
  const p = ck.plan;
  const first = p.moeLayers[0];
  const src = checkLayer(ck, first, false);
  // Block-scaled FP8 weights count their scale_inv tensor's share too.
  const bytes = (slices: TensorSlice[]) =>
    slices.reduce((a, s) => {
      const t = ck.tensors.get(s.tensor)!;
      const sc = t.dtype === 'F8_E4M3' ? ck.tensors.get(`${s.tensor}_scale_inv`) : undefined;
      return a + s.rows * rowBytes(t) + (sc ? (sc.byteLength * s.rows) / t.shape[0] : 0);
    }, 0);
  const mx = src.mxfp4
    ? [src.mxfp4.gateUp, src.mxfp4.down].flatMap((n) =>
        ['_blocks', '_scales'].map((x) => ({
          tensor: n + x,
          rowStart: 0,
          rows: ck.tensors
            .get(n + x)!
            .shape.slice(0, -1)
            .reduce((a, b) => a * b, 1),
        })),
      )
    : [];
  const eb = src.expertBiases
    ? [...(src.expertBiases.gateUp ?? []), ...(src.expertBiases.gate ?? []), ...(src.expertBiases.up ?? []), ...src.expertBiases.down]
    : [];
  const experts = [...(src.mxfp4 ? mx : src.transposed ? [...src.transposed.gateUp, ...src.transposed.down] : [...src.gate, ...src.up, ...src.down]), ...eb];
  const bytesPerExpert = bytes(experts) / p.experts;
  return {
    path: ck.path,
    format: ck.format,
    files: ck.files.map((f) => path.basename(f)),
    architecture: p.architecture,
    family: p.family,
    layers: p.layers,
    moeLayers: p.moeLayers,
    denseLayers: p.denseLayers,
    hidden: p.hidden,
    intermediate: p.intermediate,
    experts: p.experts,
    topK: p.topK,
    sharedExperts: p.sharedExperts ?? null,
    routing: {
      rule: p.routingRule,
      scoring: p.scoring,
      renormalize: p.renormalize,
      routedScalingFactor: p.routedScalingFactor,
      groups: p.groups ?? null,
      selectionBias: p.selectionBias,
    },
    tensors: src.expected.map((e) => {
      const t = ck.tensors.get(e.tensor)!;
      return { name: e.tensor, shape: t.shape, dtype: t.dtype };
    }),
    bytesPerExpert,
    expertBytesTotal: bytesPerExpert * p.experts * p.moeLayers.length,
  };
}

function mib(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(2)} MiB` : `${n} B`;
}

/** Text form of a description. Per-expert tensors are summarised by the first expert's. */
export function formatDescription(d: CheckpointDescription): string {
  const lines = [
    `${d.path} (${d.format}, ${d.files.length} file${d.files.length === 1 ? '' : 's'})`,
    `architecture   ${d.architecture} (family ${d.family})`,
    `layers         ${d.layers}: MoE ${summariseLayers(d.moeLayers)}; dense (skipped) ${summariseLayers(d.denseLayers)}`,
    `shape          H ${d.hidden}, F ${d.intermediate}, E ${d.experts}, k ${d.topK}`,
    `shared         ${d.sharedExperts ? `F ${d.sharedExperts.intermediate}${d.sharedExperts.gated ? ', sigmoid-gated' : ''}` : 'none'}`,
    `routing        ${d.routing.rule}`,
    `bytes/expert   ${mib(d.bytesPerExpert)} on disk (all routed experts: ${mib(d.expertBytesTotal)})`,
    `tensors (layer ${d.moeLayers[0]}):`,
  ];
  const shown = d.tensors.filter((t) => !/\.experts\.([1-9]\d*)\./.test(t.name));
  for (const t of shown) lines.push(`  ${t.name.padEnd(52)} [${t.shape.join(', ')}] ${t.dtype}`);
  if (shown.length < d.tensors.length) lines.push(`  (… the same for experts 1-${d.experts - 1})`);
  return lines.join('\n') + '\n';
}
