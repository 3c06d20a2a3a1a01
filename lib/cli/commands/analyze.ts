// `moecap analyze DIR --model PATH|--preset NAME`: a MoE-CAP output folder's passes recomputed
// with our S-MBU/S-MFU definitions, beside MoE-CAP's own figures (its cap_metrics file when the
// folder has one, else its formula re-derived) and the reason they differ.
import type { Command } from '../command';
import { MoecapError } from '../../errors';
import { resolveModel } from '../../interop/model_shape';
import { readMoecapFolder } from '../../interop/moecap_folder';
import { datasheetForGpu, oursForPass, theirsForPass, bytesPerParam } from '../../interop/recompute';

// MoE-CAP's peak table (moe_cap/utils/hardware_utils.py PEAK_FLOPS_DICT) for the GPUs we have
// datasheets of: its bf16/fp16 entries are sparse figures, its float32 ones the dense bf16 figure.
const THEIR_PEAK: Record<string, { f32: number; b16: number; i8: number }> = {
  'h100-sxm': { f32: 989e12, b16: 1979e12, i8: 3958e12 }, 'h100-pcie': { f32: 756e12, b16: 1513e12, i8: 3026e12 },
  h200: { f32: 989e12, b16: 1979e12, i8: 3958e12 }, 'a100-sxm': { f32: 312e12, b16: 624e12, i8: 1248e12 },
  'a100-pcie': { f32: 312e12, b16: 624e12, i8: 1248e12 }, a6000: { f32: 309.7e12, b16: 309.7e12, i8: 309.7e12 },
};

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

export const analyzeCommand: Command = {
  name: 'analyze',
  summary: 'recompute S-MBU/S-MFU of a MoE-CAP output folder (vLLM/SGLang runs) with moecap\'s definitions',
  positional: 'DIR',
  options: [
    { name: 'model', type: 'string', description: 'checkpoint folder (config.json) of the model that ran' },
    { name: 'preset', type: 'string', description: 'model preset instead of --model' },
    { name: 'hardware', type: 'string', description: 'datasheet GPU to use instead of the one MoE-CAP recorded' },
  ],
  async run({ options, positional }, io) {
    if (positional.length !== 1) throw new MoecapError('ERR_USAGE', 'usage: moecap analyze DIR --model PATH|--preset NAME');
    const model = resolveModel(options.model as string | undefined, options.preset as string | undefined);
    for (const run of readMoecapFolder(positional[0])) {
      const gpu = (options.hardware as string | undefined) ?? run.gpuName;
      const d = gpu ? datasheetForGpu(gpu) : null;
      if (!d) throw new MoecapError('ERR_INVALID_OPTION', `run ${run.key}: no datasheet for GPU '${gpu ?? '(not recorded)'}'; give --hardware NAME`);
      const precision = run.precision ?? 'bfloat16';
      const b = bytesPerParam(precision);
      const tp = THEIR_PEAK[d.name];
      const theirPeak = tp ? (b === 4 ? tp.f32 : b === 2 ? tp.b16 : tp.i8) : null;
      io.out(`${run.key}: ${run.modelName ?? '?'} on ${run.numGpus}× ${gpu} (datasheet ${d.name}), ${precision}, ${run.passes.length} passes\n`);
      for (const phase of ['prefill', 'decode'] as const) {
        const ps = run.passes.filter((p) => p.phase === phase && !(phase === 'prefill' && p.seqLensSum <= 10));
        if (!ps.length) continue;
        const ours = ps.map((p) => oursForPass(p, model, precision, d, run.numGpus));
        const legacyKey = phase === 'prefill' ? 'prefill' : 'decoding';
        const published = run.legacy ? { smbu: run.legacy[`${legacyKey}_smbu`], smfu: run.legacy[`${legacyKey}_smfu`] } : null;
        const derived = theirPeak ? ps.map((p) => theirsForPass(p, model, precision, d.memoryBandwidth, theirPeak, run.numGpus)) : null;
        const their = published && typeof published.smbu === 'number'
          ? { smbu: published.smbu as number, smfu: published.smfu as number, from: 'their cap_metrics file' }
          : derived ? { smbu: mean(derived.map((x) => x.smbu)), smfu: mean(derived.map((x) => x.smfu)), from: 'their formula, re-derived' } : null;
        const o = { smbu: mean(ours.map((x) => x.smbu)), smfu: mean(ours.map((x) => x.smfu)) };
        const f = (v: number) => `${(v * 100).toFixed(2)}%`;
        io.out(`  ${phase} (${ps.length} passes, mean per pass)\n`);
        io.out(`    S-MBU  theirs ${their ? f(their.smbu) : 'n/a'}  ours ${f(o.smbu)}  ${their ? `diff ${f(o.smbu - their.smbu)}` : ''}  reason: ours adds router, shared experts (${model.sharedCount}), MLA/KV from the config and the dense layers\n`);
        io.out(`    S-MFU  theirs ${their ? f(their.smfu) : 'n/a'}  ours ${f(o.smfu)}  ${their ? `×${(o.smfu / their.smfu).toFixed(2)}` : ''}  reason: k = ${model.topK} routed experts per token (theirs counts 1) and the dense peak ${(d.peakFlops.bf16! / 1e12).toFixed(0)} TFLOP/s (theirs: half of ${theirPeak ? (theirPeak / 1e12).toFixed(0) : '?'})\n`);
        if (their) io.out(`    (theirs: ${their.from})\n`);
      }
    }
    return 0;
  },
};
