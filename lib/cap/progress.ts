// Progress of a sweep: a bar with ETA on a terminal (cli-progress), plain lines otherwise
// (logs, CI, pipes). Written to stderr so `--json` output on stdout stays clean.
import { SingleBar, Presets } from 'cli-progress';
import type { Progress } from './runner';

export interface ProgressSink {
  update(p: Progress): void;
  stop(): void;
}

export function progressSink(stream: NodeJS.WriteStream & { isTTY?: boolean } = process.stderr, quiet = false): ProgressSink {
  if (quiet) return { update() {}, stop() {} };
  if (stream.isTTY) {
    const bar = new SingleBar(
      { stream, format: ' {bar} {value}/{total} configs | {stage} {id} | ETA {eta_formatted}', hideCursor: true, clearOnComplete: true, etaBuffer: 4 },
      Presets.shades_classic,
    );
    let started = false;
    return {
      update(p) {
        if (!started) {
          bar.start(p.configCount, 0, { stage: p.stage, id: p.configId });
          started = true;
        }
        const done = p.configIndex + (p.stage === 'done' || p.stage === 'skipped' ? 1 : 0);
        bar.update(done, { stage: p.stage === 'timed' ? `${p.samplesDone}/${p.samplesTarget}` : p.stage, id: p.configId });
      },
      stop() {
        if (started) bar.stop();
      },
    };
  }
  return {
    update(p) {
      if (p.stage !== 'done' && p.stage !== 'skipped') return;
      const eta = p.etaSeconds === null ? '' : `, ETA ${Math.max(0, p.etaSeconds).toFixed(0)} s`;
      const what = p.stage === 'skipped' ? 'kept from the earlier run' : `${p.result!.tokensPerSecond.toPrecision(4)} tokens/s`;
      stream.write(`[${p.configIndex + 1}/${p.configCount}] ${p.configId}: ${what} (${p.elapsedSeconds.toFixed(1)} s${eta})\n`);
    },
    stop() {},
  };
}
