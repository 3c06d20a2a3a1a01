// A checkpoint as a CAP run's model (`moecap run --model PATH`): its shape registered as a preset
// (so the sweep, cost and report code work unchanged), the layers it runs, and their inputs.
import * as path from 'path';
import { PlanError, shown } from '../errors';
import { registerPreset, type ModelPreset } from '../cap/presets';
import { checkLayer, nativeDtype, openCheckpoint, summariseLayers, type Checkpoint } from './checkpoint';
import type { DType } from '../types';
import { normWeight, normalisedInputs, readActivations } from './inputs';

export interface ModelPlan {
  /** Checkpoint folder or file (absolute). */
  path: string;
  /** Decoder layer indices run in sequence (MoE layers); empty = the checkpoint's first MoE layer. */
  layers: number[];
  /** Folder of converted expert files (offload), null = the default (defaultCacheDir()). */
  cacheDir: string | null;
  /** Captured hidden states [T, H] fed to every layer, null = normalised random inputs. */
  activations: string | null;
}

const opened = new Map<string, Checkpoint>();

export function checkpointOf(m: ModelPlan): Checkpoint {
  let ck = opened.get(m.path);
  if (!ck) {
    ck = openCheckpoint(m.path);
    opened.set(m.path, ck);
  }
  return ck;
}

/**
 * `--dtype native` of a checkpoint run: the engine dtype that holds the layers' experts as stored
 * (nativeDtype); one dtype for all the layers run, else an error naming each layer's.
 */
export function checkpointNativeDtype(m: ModelPlan): DType {
  const ck = checkpointOf(m);
  const per = m.layers.map((l) => [l, nativeDtype(ck, checkLayer(ck, l))] as const);
  const kinds = new Set(per.map(([, d]) => d));
  if (kinds.size !== 1)
    throw new PlanError(
      `dtype native: the layers run store their experts in different precisions (${per.map(([l, d]) => `layer ${l}: ${d}`).join(', ')}); pick a dtype`,
    );
  return per[0][1];
}

/** Validates the model plan, registers the checkpoint's shape as a preset; returns its name and the layers. */
export function registerCheckpointModel(m: ModelPlan): { preset: string; layers: number[] } {
  if (typeof m.path !== 'string' || !path.isAbsolute(m.path)) throw new PlanError(`model.path must be an absolute path, got ${shown(m.path)}`);
  const ck = checkpointOf(m);
  const p = ck.plan;
  const layers = m.layers.length ? m.layers : p.moeLayers.slice(0, 1);
  for (const l of layers) checkLayer(ck, l);
  const name = `checkpoint:${path.basename(m.path)}`;
  const preset: ModelPreset = {
    name,
    layers: p.layers,
    moeLayers: p.moeLayers.length,
    hidden: p.hidden,
    experts: p.experts,
    topK: p.topK,
    intermediate: p.intermediate,
    ...(p.sharedExperts ? { shared: { intermediate: p.sharedExperts.intermediate, count: 1, gated: p.sharedExperts.gated } } : {}),
    router: {
      scoring: p.scoring,
      renormalize: p.renormalize,
      routedScalingFactor: p.routedScalingFactor,
      selectionBias: p.selectionBias,
      ...(p.groups ? { groups: p.groups } : {}),
    },
    notes: `${p.architecture} checkpoint ${m.path}, layers ${summariseLayers(layers)} (${p.routingRule})`,
    modelId: path.basename(m.path),
    source: m.path,
  };
  registerPreset(preset);
  return { preset: name, layers };
}

/** The input rows of checkpoint layer `layer` for one pass of T tokens (variant v), and how they were made. */
export function checkpointInputs(m: ModelPlan, layer: number, T: number, seed: number, v: number): { x: Float32Array; what: string } {
  const ck = checkpointOf(m);
  const H = ck.plan.hidden;
  if (m.activations) {
    const all = activationsOf(m.activations, H);
    const rows = all.length / H;
    const x = new Float32Array(T * H);
    for (let t = 0; t < T; t++) {
      const r = (v * T + t) % rows;
      x.set(all.subarray(r * H, (r + 1) * H), t * H);
    }
    return { x, what: `captured activations from ${m.activations} (${rows} rows, cycled)` };
  }
  const g = normWeight(ck, layer);
  if (!g)
    return {
      x: normalisedInputs(T, new Float32Array(H).fill(1), seed),
      what: `RMS-normalised N(0,1) vectors (layer ${layer} has no post-attention norm weight in the checkpoint)`,
    };
  return { x: normalisedInputs(T, g.values, seed), what: `RMS-normalised N(0,1) vectors × layer ${layer}'s ${g.tensor} (the MoE block's input)` };
}

const activationCache = new Map<string, Float32Array>();
function activationsOf(file: string, H: number): Float32Array {
  let a = activationCache.get(file);
  if (!a) {
    a = readActivations(file, H);
    activationCache.set(file, a);
  }
  return a;
}
