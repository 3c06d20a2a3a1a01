// Where a checkpoint layer's converted experts live between runs: one engine expert file per
// (checkpoint, layer, dtype) under a cache folder, with a small manifest beside it holding the key
// it was converted from (each source file's size and mtime, the tensor ranges, shape, dtype). A
// run whose key matches reuses the file; any change (a shard rewritten or touched, another dtype)
// converts again. The native writer is atomic (temp + rename), so a crash leaves at most a temp
// file, removed here on the next conversion once its process is gone.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { MoecapError } from '../errors';

/** The default cache folder: $MOECAP_CACHE_DIR, else $XDG_CACHE_HOME/moecap, else ~/.cache/moecap. */
export function defaultCacheDir(): string {
  const env = process.env.MOECAP_CACHE_DIR;
  if (env) return env;
  const xdg = process.env.XDG_CACHE_HOME;
  return path.join(xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.cache'), 'moecap');
}

export interface ExpertStore {
  /** The engine expert file. */
  file: string;
  /** The engine's offload.path: `file`, or for an expert-parallel rank `file` less the ".rank<r>-of-<P>" the engine appends. */
  offloadPath: string;
  manifest: string;
  key: string;
  /** True when a file converted from this exact key is already there. */
  reused: boolean;
}

interface Manifest {
  format: 'moecap-expert-manifest';
  version: 1;
  key: string;
  convertedAt: string;
}

function readManifest(file: string): Manifest | null {
  try {
    const m = JSON.parse(fs.readFileSync(file, 'utf8')) as Manifest;
    return m && m.format === 'moecap-expert-manifest' && m.version === 1 && typeof m.key === 'string' ? m : null;
  } catch {
    return null;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Decides where the experts of one layer go and whether the file there can be reused. `file`:
 * an explicit offload.path (manifest `${file}.json`), else a name under `cacheDir`. `rank` (an
 * expert-parallel rank): the file is the rank's own, the name with the ".rank<r>-of-<P>" suffix the
 * engine gives a rank's offload.path. A stale file (key differs, or no manifest) and leftovers of
 * conversions whose process died are removed, so the layer converts afresh.
 */
export function openExpertStore(o: {
  checkpoint: string;
  layer: number;
  dtype: string;
  key: string;
  cacheDir?: string;
  file?: string;
  rank?: { rank: number; ranks: number };
}): ExpertStore {
  let file = o.file;
  if (!file) {
    const abs = path.resolve(o.checkpoint);
    const tag = crypto.createHash('sha256').update(abs).digest('hex').slice(0, 12);
    const base =
      path
        .basename(abs)
        .replace(/[^A-Za-z0-9._-]/g, '_')
        .slice(0, 64) || 'checkpoint';
    const dir = path.join(o.cacheDir ?? defaultCacheDir(), 'experts', `${base}-${tag}`);
    try {
      fs.mkdirSync(dir, { recursive: true });
    } catch (e) {
      throw new MoecapError('ERR_IO', `cannot create the expert cache folder ${dir} (cacheDir): ${(e as Error).message}`);
    }
    file = path.join(dir, `layer${o.layer}-${o.dtype}.experts`);
  }
  const offloadPath = file;
  if (o.rank) file += `.rank${o.rank.rank}-of-${o.rank.ranks}`;
  const manifest = `${file}.json`;
  const m = readManifest(manifest);
  const reused = m !== null && m.key === o.key && fs.existsSync(file);
  if (!reused) {
    for (const f of [file, manifest]) fs.rmSync(f, { force: true });
    const dir = path.dirname(file),
      prefix = `${path.basename(file)}.tmp-`;
    for (const name of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
      const pid = name.startsWith(prefix) ? Number(name.slice(prefix.length).split('-')[0]) : NaN;
      if (Number.isInteger(pid) && pid > 0 && !alive(pid)) fs.rmSync(path.join(dir, name), { force: true });
    }
  }
  return { file, offloadPath, manifest, key: o.key, reused };
}

/**
 * Builds a layer over a store: a cached file whose manifest matches but which no longer validates
 * (damaged on disk, ERR_CORRUPT_FILE naming it) is discarded and converted again, once; a file just
 * converted is then committed. Returns the store as it ends (null without offload).
 */
export async function buildWithExpertStore<T>(store: ExpertStore | null, build: () => Promise<T>): Promise<{ built: T; store: ExpertStore | null }> {
  const { built, stores } = await buildWithExpertStores([store], build);
  return { built, store: stores[0] };
}

/**
 * The same over the stores of several layers built together (a model): each damaged cached file
 * the build names is discarded and converted again, once per store; then every file just
 * converted is committed. Returns the stores as they end, in the order given.
 */
export async function buildWithExpertStores<T>(
  stores: Array<ExpertStore | null>,
  build: () => Promise<T>,
): Promise<{ built: T; stores: Array<ExpertStore | null> }> {
  const now = [...stores];
  for (;;) {
    try {
      const built = await build();
      for (const s of now) if (s && !s.reused) commitExpertStore(s);
      return { built, stores: now };
    } catch (e) {
      const damaged = (e as MoecapError).code === 'ERR_CORRUPT_FILE' ? now.findIndex((s) => s?.reused && String((e as Error).message).includes(s.file)) : -1;
      if (damaged < 0) throw e;
      now[damaged] = discardExpertStore(now[damaged]!);
    }
  }
}

/** Records the key of a file just converted (temp + rename, so a reader never sees half a manifest). */
export function commitExpertStore(s: ExpertStore): void {
  const body: Manifest = { format: 'moecap-expert-manifest', version: 1, key: s.key, convertedAt: new Date().toISOString() };
  const tmp = `${s.manifest}.tmp-${process.pid}`;
  try {
    fs.writeFileSync(tmp, JSON.stringify(body, null, 1) + '\n');
    fs.renameSync(tmp, s.manifest);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw new MoecapError('ERR_IO', `cannot write the expert manifest ${s.manifest}: ${(e as Error).message}`);
  }
}

/** Removes a cached file found damaged (its manifest matched but the file does not validate), so the layer converts again. */
export function discardExpertStore(s: ExpertStore): ExpertStore {
  for (const f of [s.file, s.manifest]) fs.rmSync(f, { force: true });
  return { ...s, reused: false };
}
