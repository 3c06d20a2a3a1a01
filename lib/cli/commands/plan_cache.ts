// `moecap plan-cache TRACE --model PATH|--preset NAME --capacity 8,16,32 --policy lru,...,belady`:
// replays the trace through the core's cache policies and Belády's bound, no kernel runs.
import type { Command } from '../command';
import { MoecapError } from '../../errors';
import { resolvePeaks } from '../../cap/peaks';
import { timeBoundPeakFor } from '../../cap/hardware';
import { bytesPerWeight } from '../../cap/presets';
import { resolveModel } from '../../interop/model_shape';
import { TraceSpill } from '../../interop/trace_spill';
import { libuvPoolSize, planCache } from '../../interop/cache_plan';
import { REPLAY_POLICIES, type ReplayPolicy } from '../../interop/cache_replay';

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

export const planCacheCommand: Command = {
  name: 'plan-cache',
  summary: "replay a routing trace through the expert cache policies (and Belády's bound): hit rate, slow-tier bytes and time per token",
  positional: 'TRACE',
  options: [
    { name: 'model', type: 'string', description: 'checkpoint folder (config.json)' },
    { name: 'preset', type: 'string', description: 'model preset instead of --model' },
    { name: 'capacity', type: 'number-list', description: 'resident experts per layer (or fractions < 1 of the experts)', default: [8, 16, 32] },
    { name: 'policy', type: 'string-list', description: 'lru, lfu, lfru, static, belady', default: [...REPLAY_POLICIES] },
    { name: 'batch', type: 'number', description: 'tokens per pass (1: one decoding sequence)', default: 1 },
    { name: 'dtype', type: 'string', description: 'expert storage: f32, bf16, int8, int4, mxfp4, fp8', default: 'bf16' },
    { name: 'static-profile', type: 'number', description: 'static: passes replayed before the hot set is pinned', default: 100 },
    { name: 'slow-bw', type: 'number', description: 'slow tier read bandwidth, GB/s (default: the calibrated offload read bandwidth)' },
    { name: 'hardware', type: 'string', description: "compute side from a datasheet GPU (default: this machine's calibrated profile)" },
    { name: 'hardware-profile', type: 'string', description: 'a calibrated profile file' },
  ],
  async run({ options, positional }, io) {
    if (positional.length !== 1) throw new MoecapError('ERR_USAGE', 'usage: moecap plan-cache TRACE --model PATH|--preset NAME');
    const model = resolveModel(options.model as string | undefined, options.preset as string | undefined);
    const policies = options.policy as string[];
    for (const p of policies)
      if (!(REPLAY_POLICIES as readonly string[]).includes(p))
        throw new MoecapError('ERR_INVALID_OPTION', `--policy ${p}: known ${REPLAY_POLICIES.join(', ')}`);
    const dtype = options.dtype as string;
    try {
      bytesPerWeight(dtype);
    } catch (e) {
      throw new MoecapError('ERR_INVALID_OPTION', `--dtype: ${(e as Error).message}`);
    }
    const batch = options.batch as number;
    if (!(Number.isInteger(batch) && batch >= 1)) throw new MoecapError('ERR_INVALID_OPTION', '--batch must be an integer >= 1');
    let peaks;
    try {
      peaks = resolvePeaks((options.hardware as string | undefined) ?? null, (options['hardware-profile'] as string | undefined) ?? null);
    } catch (e) {
      throw new MoecapError('ERR_INVALID_OPTION', (e as Error).message);
    }
    const havePeaks = !('available' in peaks);
    const slowBw =
      options['slow-bw'] !== undefined
        ? (options['slow-bw'] as number) * 1e9
        : havePeaks
          ? (peaks as { offloadBandwidth: number | null }).offloadBandwidth
          : null;
    const p = havePeaks ? (peaks as import('../../cap/hardware').PeakSource) : null;
    const peak = p ? timeBoundPeakFor(dtype, p) : null;
    const peakText = !peak ? '' : peak.value ? `${peak.which} peak${peak.note ? ` (${peak.note})` : ''}` : `no ${peak.which} peak: no compute times`;
    const trace = await TraceSpill.read(positional[0], { experts: model.experts, topK: model.topK });
    try {
      const plan = await planCache({
        trace,
        model,
        dtype,
        capacities: options.capacity as number[],
        policies: policies as ReplayPolicy[],
        tokensPerPass: batch,
        staticProfilePasses: options['static-profile'] as number,
        slowTierBandwidth: slowBw,
        memoryBandwidth: p?.memoryBandwidth ?? null,
        peakFlops: peak?.value ?? null,
      });
      io.out(
        `${positional[0]}: ${plan.tokens} tokens × ${plan.traceLayers} layers (model ${model.name}: ${plan.modelLayers} MoE layers${plan.layerScale !== 1 ? `, each trace layer counted ${plan.layerScale.toFixed(2)}×` : ''}), ` +
          `T = ${batch}, expert ${(plan.expertBytes / 1e6).toFixed(2)} MB (${dtype}), ${plan.meanDistinctPerPass.toFixed(2)} distinct experts per pass per layer\n`,
      );
      io.out(
        `slow tier: ${slowBw ? `${(slowBw / 1e9).toFixed(2)} GB/s${options['slow-bw'] !== undefined ? ' (--slow-bw)' : ' (calibrated)'}` : 'unknown (run moecap calibrate or give --slow-bw): no times'}; ` +
          `compute side: ${p ? `${p.name} (${p.kind}), ${peakText}` : 'no peaks: no times'}\n`,
      );
      io.out(
        `replay: ${plan.traceLayers} layers × ${plan.rows.length} configs in ${plan.replay.seconds.toFixed(1)} s, ` +
          `${plural(plan.replay.layersAtOnce, 'layer')} at once (libuv pool ${libuvPoolSize()}) × ${plural(plan.replay.threadsPerLayer, 'thread')} each\n`,
      );
      io.out('capacity  policy   hit rate   slow-tier MB/token   slow ms/token   compute ms/token   ms/token overlapped..serial\n');
      const ms = (v: number | null) => (v === null ? 'n/a' : (v * 1e3).toFixed(3));
      for (const r of plan.rows)
        io.out(
          `${String(r.capacity).padStart(8)}  ${r.policy.padEnd(7)}  ${(r.hitRate * 100).toFixed(2).padStart(7)}%   ${(r.slowBytesPerToken / 1e6).toFixed(3).padStart(18)}   ${ms(r.slowSecondsPerToken).padStart(13)}   ${ms(r.computeSecondsPerToken).padStart(16)}   ${ms(r.secondsPerTokenOverlapped)}..${ms(r.secondsPerTokenSerial)}\n`,
        );
    } finally {
      trace.close();
    }
    return 0;
  },
};
