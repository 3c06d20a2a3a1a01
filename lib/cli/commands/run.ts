// `moecap run`: a CAP sweep from the command line. Lists (`--batch 1,4`) sweep; the cartesian
// product runs in order. Bad input gives one line naming the problem, exit code 2, and no results
// file; Ctrl-C keeps the finished configs (exit 130) and `--resume DIR` continues them.
import * as path from 'path';
import { UsageError } from '../../errors';
import type { OptionSpec } from '../args';
import type { Command } from '../command';
import { DEFAULT_PLAN, type RunPlan } from '../../cap/plan';
import { run, planFromResults } from '../../cap/runner';
import { renderTable } from '../../cap/table';
import { progressSink } from '../../cap/progress';
import { epPlanFromArgs, renderEp, runEp } from '../../ep_run';

const OPTIONS: OptionSpec[] = [
  { name: 'preset', type: 'string-list', description: "model presets (see 'moecap presets')", default: DEFAULT_PLAN.presets },
  {
    name: 'layers',
    type: 'number-list',
    description: 'MoE layers run in sequence; with --model, the decoder layer indices (default: its first MoE layer)',
    default: DEFAULT_PLAN.layers,
  },
  { name: 'model', type: 'string', description: 'a checkpoint (folder with config.json + safetensors, or .gguf) whose layers run instead of the presets' },
  {
    name: 'cache-dir',
    type: 'string',
    description:
      'with --model and --offload: folder of converted expert files, reused while the checkpoint is unchanged (default $MOECAP_CACHE_DIR or ~/.cache/moecap)',
  },
  { name: 'activations', type: 'string', description: 'with --model: captured hidden states [T, H] (safetensors or .npy, f32/f16/bf16) fed to every layer' },
  { name: 'phase', type: 'string-list', description: 'prefill, decode', default: DEFAULT_PLAN.phases },
  { name: 'batch', type: 'number-list', description: 'sequences per pass', default: DEFAULT_PLAN.batch },
  { name: 'seq', type: 'number-list', description: 'prefill tokens per sequence (T = batch × seq)', default: DEFAULT_PLAN.seqLen },
  { name: 'steps', type: 'number-list', description: 'decode steps per repeat (T = batch per step)', default: DEFAULT_PLAN.steps },
  {
    name: 'dtype',
    type: 'string-list',
    description: "weights: f32, bf16, int8, int4, mxfp4, fp8; with --model also native (the checkpoint's stored precision, its default)",
    default: DEFAULT_PLAN.dtypes,
  },
  { name: 'threads', type: 'number-list', description: 'compute threads (default: all CPUs)' },
  { name: 'capacity-factor', type: 'number-list', description: 'expert capacity factor (0 = unlimited)', default: DEFAULT_PLAN.capacityFactor },
  {
    name: 'offload',
    type: 'number-list',
    description: 'fraction of experts resident (0..1]; the rest stream from a weights file',
    default: DEFAULT_PLAN.residentFraction,
  },
  { name: 'offload-policy', type: 'string', description: 'expert cache policy with --offload: lru, lfu, lfru, static', default: DEFAULT_PLAN.offloadPolicy },
  { name: 'cold', type: 'boolean', description: 'with --offload: drop the weights file page cache so loads reach the device' },
  { name: 'skew', type: 'number-list', description: 'Zipf exponent of designed routing (0 = natural router)', default: DEFAULT_PLAN.skew },
  { name: 'trace', type: 'string', description: 'replay routing from a trace: JSONL {layer, token, experts} or binary .mctrace (as plan-cache reads it)' },
  { name: 'repeats', type: 'number', description: 'timed repeats per config', default: DEFAULT_PLAN.repeats },
  { name: 'budget', type: 'number', description: 'seconds per config (stops repeating once spent)' },
  { name: 'warmup', type: 'number', description: 'untimed samples first', default: DEFAULT_PLAN.warmup },
  { name: 'fidelity-tokens', type: 'number', description: 'tokens checked against the fp64 reference', default: DEFAULT_PLAN.fidelityTokens },
  { name: 'seed', type: 'number', description: 'weight and input seed', default: DEFAULT_PLAN.seed },
  {
    name: 'hardware',
    type: 'string',
    description:
      'datasheet peaks (h100-sxm, h100-pcie, h200, a100-sxm, a100-pcie, rtx-4090, a6000, l40s): a projection on the CPU backend; with --backend cuda, the GPU that runs',
  },
  {
    name: 'backend',
    type: 'string',
    description: 'where the layers run: cpu, cuda (refused with the reason when CUDA is unusable)',
    default: DEFAULT_PLAN.backend,
  },
  { name: 'skip-calibration', type: 'boolean', description: 'with no hardware profile, do not take the quick calibration (S-MBU/S-MFU unavailable)' },
  { name: 'no-bandwidth-check', type: 'boolean', description: 'do not measure the read bandwidth around each config (S-MBU against the profile)' },
  { name: 'hardware-profile', type: 'string', description: 'measured peaks from `moecap calibrate` (JSON)' },
  { name: 'prices', type: 'string', description: 'JSON overriding the cost assumptions' },
  { name: 'task-accuracy', type: 'string', description: 'JSON {task, accuracy, source} from a full-model evaluation' },
  { name: 'radar', type: 'string', description: 'radar normalisation: ratio-to-best, min-max', default: DEFAULT_PLAN.radarMethod },
  { name: 'out', type: 'string', description: 'output folder (default ./moecap-results/<timestamp>/)' },
  { name: 'resume', type: 'string', description: 'continue the sweep in this folder (plan from its results.json)' },
  { name: 'json', type: 'boolean', description: 'print the results object instead of the table' },
  {
    name: 'report',
    type: 'boolean',
    description: 'also write the HTML report (report.html in the output folder; with --ep, rank 0 writes it beside ep_results.json)',
  },
  { name: 'quiet', type: 'boolean', description: 'no progress output' },
  {
    name: 'ep',
    type: 'number',
    description:
      'expert parallelism over N ranks: launch as `mpirun -np N npx moecap run --ep N ...` (one preset, phase, batch, dtype; needs npm run build:mpi)',
  },
  {
    name: 'ep-placement',
    type: 'string',
    description: "with --ep: contiguous, balanced (from --trace, else from routing this run's input)",
    default: 'contiguous',
  },
  { name: 'ep-redundant', type: 'number', description: 'with --ep: replicate the R hottest experts on one more rank each', default: 0 },
  {
    name: 'ep-transport',
    type: 'string',
    description:
      'with --ep: mpi (host buffers; GPU ranks stage rows through host memory), nccl (GPU ranks: between the GPUs over NCCL; needs --backend cuda), auto (= mpi)',
    default: 'mpi',
  },
  { name: 'force', type: 'boolean', description: "with --out: replace an earlier run's results in that folder" },
];

const SUMMARY =
  'Measures MoE layers of model presets on this machine and scores them on Cost, Accuracy and Performance:\n' +
  'TTFT-equivalent/TPOT, tokens/s, distinct experts, S-MBU/S-MFU, $/1M tokens, fidelity vs fp64, Pareto frontier.\n' +
  'Writes results.json (schema/results.schema.json) and MoE-CAP files (cap_metrics_*, metrics_*, metadata_*).';

const PLAN_FLAGS = [
  'preset',
  'layers',
  'phase',
  'batch',
  'seq',
  'steps',
  'dtype',
  'threads',
  'capacity-factor',
  'offload',
  'offload-policy',
  'cold',
  'skew',
  'trace',
  'repeats',
  'budget',
  'warmup',
  'fidelity-tokens',
  'seed',
  'hardware',
  'hardware-profile',
  'prices',
  'task-accuracy',
  'radar',
  'backend',
  'skip-calibration',
  'no-bandwidth-check',
  'model',
  'cache-dir',
  'activations',
];

export function timestampFolder(d = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/** CLI options → plan (list-valued options as given; validation happens in the runner). */
export function planFromArgs(o: Record<string, unknown>, given: ReadonlySet<string> = new Set()): Partial<RunPlan> {
  // Files are stored absolute in the plan so `--resume` works from any folder.
  const file = (k: string) => (o[k] === undefined ? null : path.resolve(String(o[k])));
  const model = file('model');
  if (!model) for (const k of ['cache-dir', 'activations']) if (given.has(k)) throw new UsageError(`--${k} needs --model PATH`);
  if (model && given.has('preset')) throw new UsageError("--model runs the checkpoint's layers; drop --preset");
  return {
    presets: o.preset as string[],
    layers: model ? DEFAULT_PLAN.layers : (o.layers as number[]),
    model: model
      ? { path: model, layers: given.has('layers') ? (o.layers as number[]) : [], cacheDir: file('cache-dir'), activations: file('activations') }
      : null,
    phases: o.phase as RunPlan['phases'],
    batch: o.batch as number[],
    seqLen: o.seq as number[],
    steps: o.steps as number[],
    // A checkpoint runs at the precision it stores its experts in unless --dtype says otherwise.
    dtypes: model && !given.has('dtype') ? ['native'] : (o.dtype as string[]),
    threads: (o.threads as number[] | undefined) ?? [null],
    capacityFactor: o['capacity-factor'] as number[],
    residentFraction: o.offload as number[],
    offloadPolicy: o['offload-policy'] as RunPlan['offloadPolicy'],
    coldCache: Boolean(o.cold),
    skew: o.skew as number[],
    trace: file('trace'),
    repeats: o.repeats as number,
    budgetSeconds: (o.budget as number | undefined) ?? null,
    warmup: o.warmup as number,
    fidelityTokens: o['fidelity-tokens'] as number,
    seed: o.seed as number,
    hardware: (o.hardware as string | undefined) ?? null,
    hardwareProfile: file('hardware-profile'),
    prices: file('prices'),
    taskAccuracy: file('task-accuracy'),
    radarMethod: o.radar as RunPlan['radarMethod'],
    backend: o.backend as RunPlan['backend'],
    calibrateIfMissing: !o['skip-calibration'],
    bandwidthCheck: !o['no-bandwidth-check'],
  };
}

export const runCommand: Command = {
  name: 'run',
  summary: 'CAP run: presets × workloads on this machine; cost, accuracy, performance',
  description: SUMMARY,
  options: OPTIONS,
  async run({ options: o, positional, given }, io) {
    const ac = new AbortController();
    let interrupts = 0;
    const onSigint = () => {
      if (++interrupts > 1) process.exit(130);
      io.err('moecap run: interrupted — finishing the current sample and saving the finished configs (Ctrl-C again to quit now)\n');
      ac.abort();
    };
    try {
      if (positional.length) throw new UsageError(`unexpected argument '${positional[0]}' (options start with --)`);
      if (given.has('ep')) {
        const epOut = (o.out as string | undefined) ?? path.join('moecap-results', timestampFolder());
        const r = await runEp(epPlanFromArgs(o, given), epOut);
        if (r) io.out(o.json ? JSON.stringify(r, null, 2) + '\n' : renderEp(r));
        if (r && o.report) {
          // Rank 0 only (the others have no results): report.html beside ep_results.json.
          const { writeEpReport } = await import('../../report/write_report');
          const { file } = await writeEpReport([epOut]);
          if (!o.json) io.out(`report: ${file}\n`);
        }
        return 0;
      }
      if (given.has('ep-placement') || given.has('ep-redundant')) throw new UsageError('--ep-placement and --ep-redundant need --ep N');
      if (given.has('ep-transport')) throw new UsageError('--ep-transport needs --ep N');
      let plan: Partial<RunPlan>;
      let outDir: string;
      const resume = o.resume as string | undefined;
      if (resume !== undefined) {
        const flag = PLAN_FLAGS.find((f) => given.has(f));
        if (flag) throw new UsageError(`--resume takes the plan from ${path.join(resume, 'results.json')}; drop --${flag}`);
        if (o.out !== undefined && path.resolve(o.out as string) !== path.resolve(resume)) throw new UsageError('--resume DIR writes to DIR; drop --out');
        plan = planFromResults(resume);
        outDir = resume;
      } else {
        plan = planFromArgs(o, given);
        outDir = (o.out as string | undefined) ?? path.join('moecap-results', timestampFolder());
      }
      const progress = io.progress ?? process.stderr;
      const sink = progressSink(progress, Boolean(o.quiet) || Boolean(o.json && !progress.isTTY));
      process.on('SIGINT', onSigint);
      let results;
      try {
        const quiet = Boolean(o.quiet) || Boolean(o.json);
        results = await run(plan, {
          outDir,
          resume: resume !== undefined,
          force: Boolean(o.force),
          signal: ac.signal,
          onProgress: (p) => sink.update(p),
          onNotice: (m) => {
            if (!quiet) io.err(m + '\n');
          },
        });
      } finally {
        sink.stop();
      }
      if (o.json) io.out(JSON.stringify(results, null, 2) + '\n');
      else {
        io.out(`moecap run: ${results.configs.length} config(s), results in ${path.join(outDir, 'results.json')}\n`);
        io.out(renderTable(results));
      }
      if (o.report && results.configs.length > 0) {
        // Loaded on demand: Vega adds start-up time that plain runs should not pay.
        const { writeReport } = await import('../../report/write_report');
        const { file } = await writeReport(outDir);
        if (!o.json) io.out(`report: ${file}\n`);
      }
      return results.status === 'complete' ? 0 : 130;
    } finally {
      process.removeListener('SIGINT', onSigint);
    }
  },
};
