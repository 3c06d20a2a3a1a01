// Task accuracy (MMLU, GSM8K, …) measured on a full model elsewhere, given to the CAP score as an
// input with its source. File: JSON, one object or an array of
//   { "task": "gsm8k", "accuracy": 0.81, "source": "lm-eval 0.4.2, 5-shot, 2025-01-10", "preset"?: "...", "dtype"?: "bf16" }
// accuracy is a fraction in [0, 1]. A config takes the most specific matching entry.
import { PlanError } from '../errors';
import * as fs from 'fs';
import type { TaskAccuracy } from './results';

export function loadTaskAccuracy(file: string): TaskAccuracy[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new PlanError(`cannot read task accuracy file '${file}': ${(e as Error).message}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new PlanError(`task accuracy file '${file}' is not valid JSON`);
  }
  const list = Array.isArray(v) ? v : [v];
  if (list.length === 0) throw new PlanError(`task accuracy file '${file}' is empty`);
  return list.map((e, i) => {
    const where = `task accuracy file '${file}'${Array.isArray(v) ? ` entry ${i}` : ''}`;
    if (e === null || typeof e !== 'object') throw new PlanError(`${where}: expected an object {task, accuracy, source}`);
    const o = e as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!['task', 'accuracy', 'source', 'preset', 'dtype'].includes(k)) throw new PlanError(`${where}: unknown field '${k}'`);
    if (typeof o.task !== 'string' || !o.task) throw new PlanError(`${where}: 'task' must be a non-empty string`);
    if (typeof o.accuracy !== 'number' || !(o.accuracy >= 0 && o.accuracy <= 1)) throw new PlanError(`${where}: 'accuracy' must be a fraction in [0, 1]`);
    if (typeof o.source !== 'string' || !o.source) throw new PlanError(`${where}: 'source' must say where the figure comes from`);
    for (const k of ['preset', 'dtype'] as const) if (o[k] !== undefined && typeof o[k] !== 'string') throw new PlanError(`${where}: '${k}' must be a string`);
    const r: TaskAccuracy = { task: o.task, accuracy: o.accuracy, source: o.source };
    if (o.preset !== undefined) r.preset = o.preset as string;
    if (o.dtype !== undefined) r.dtype = o.dtype as string;
    return r;
  });
}

export function matchTaskAccuracy(list: TaskAccuracy[] | null, preset: string, dtype: string): TaskAccuracy | null {
  if (!list) return null;
  const fits = list.filter((e) => (e.preset === undefined || e.preset === preset) && (e.dtype === undefined || e.dtype === dtype));
  const score = (e: TaskAccuracy) => (e.preset !== undefined ? 2 : 0) + (e.dtype !== undefined ? 1 : 0);
  return fits.sort((a, b) => score(b) - score(a))[0] ?? null;
}
