// A hand-written ep_results.json in the exact shape `moecap run --ep` writes (typed against
// EpResults, so a change of the format fails to compile here): two ranks, rank 1's S-MBU above 1
// with its cause, and a run where rank 1's S-MFU is unavailable. Numbers are arbitrary but distinct.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { EpRankSummary, EpResults } from '../../lib/ep_run';
import type { RankCeiling } from '../../lib/ep_utilisation';

const BYTES = { router: 0, experts: 1.5e6, shared: 2.5e5, attention: 0, activations: 3.2e4, total: 1.782e6 };

function rank(rank: number, T: number, smbu: number, smfu: number | null): EpRankSummary {
  const seconds = (40 + 10 * rank) * 1e-6 * T;
  return {
    rank,
    experts: rank === 0 ? [0, 1, 2, 3] : [4, 5, 6, 7],
    dispatchNs: 11000 * T + 1000 * rank,
    computeNs: seconds * 1e9,
    combineNs: 7000 * T + 500 * rank,
    totalNs: 30000 * T + 2000 * rank,
    bytesSent: 3072 * T,
    bytesReceived: 3104 * T,
    rowsSent: 2 * T,
    rowsReceived: 2 * T,
    dropped: 0,
    offload: null,
    compute: { seconds, rows: 2 * T, sharedRows: T / 2, experts: 4, bytes: BYTES, flops: 1.25e6 * T },
    smbu: {
      value: smbu,
      bytesPerPass: BYTES.total,
      seconds,
      peakBandwidth: 9.5e9,
      bandwidthNow: { before: 9.5e9, after: 9.1e9 },
      ...(smbu > 1 ? { above1: 'working set (1.7 MiB) fits in the caches: reads served above the DRAM bandwidth' } : {}),
    },
    smfu:
      smfu === null
        ? { available: false, reason: "this rank's CPU has no bf16 compute loop" }
        : { value: smfu, flopsPerPass: 1.25e6 * T, seconds, peakFlops: 3.1e10, peakDtype: 'f32' },
  };
}

const CEILING: RankCeiling = {
  threads: 1,
  bandwidthBefore: 9.5e9,
  bandwidthAfter: 9.1e9,
  peakFlops: { f32: 3.1e10, bf16: null, int8: 6.2e10 },
  statistic: 'read: best window before and after the passes; compute: best of 14 windows a unit, before and after',
};

export function epFixture(T: number, utilisation: Array<[number, number | null]>): EpResults {
  const perRank = utilisation.map(([b, f], r) => rank(r, T, b, f));
  return {
    schema: 'moecap-ep/1',
    ranks: perRank.length,
    placement: 'contiguous',
    redundant: 0,
    preset: 'tiny',
    phase: 'decode',
    tokens: T,
    dtype: 'f32',
    layers: 1,
    residentFraction: null,
    capacityFactor: 0,
    backend: 'cpu',
    transport: 'mpi',
    mpi: { library: '/opt/moecap/build-mpi/libmoecap_mpi.so', built: 'Open MPI 4.1.4', runtime: 'Open MPI v4.1.4' },
    link: {
      latencySeconds: 7.25e-7 + T * 1e-9,
      bandwidthBytesPerSecond: 8.06e8 + T * 1e6,
      pingpong: [
        { bytes: 8, seconds: 7.25e-7 + T * 1e-9 },
        { bytes: 4194304, seconds: 4194304 / (8.06e8 + T * 1e6) },
      ],
      alltoall: [{ bytes: 1024, seconds: 2.06e-6 }],
    },
    ceilings: perRank.map(() => CEILING),
    perRank,
    perLayer: [{ layer: 0, perRank, passNs: 30000 * T + 2000, dispatchShare: 0.31 + T / 1000, combineShare: 0.17 + T / 2000, imbalance: 1.1 + T / 100 }],
    passNs: 30000 * T + 2000,
    dispatchShare: 0.31 + T / 1000,
    combineShare: 0.17 + T / 2000,
    imbalance: 1.1 + T / 100,
    tokensPerSecond: T / ((30000 * T + 2000) / 1e9),
  };
}

/** Writes each run into its own folder (as `moecap run --ep --out DIR` does); returns the folders. */
export function writeEpRuns(runs: EpResults[]): string[] {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-ep-report-'));
  return runs.map((r) => {
    const d = path.join(root, `T${r.tokens}`);
    fs.mkdirSync(d);
    fs.writeFileSync(path.join(d, 'ep_results.json'), JSON.stringify(r, null, 2) + '\n');
    return d;
  });
}
