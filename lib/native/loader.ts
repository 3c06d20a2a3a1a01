// Loads the compiled addon: a prebuilt binary from prebuilds/<platform>-<arch>/ or one built from
// source into build/Release (node-gyp-build decides; PREBUILDS_ONLY=1 restricts it to prebuilds).
// A failure lists every path tried, the platform found, and what to do.
import * as fs from 'fs';
import * as path from 'path';
import type { NativeAddon } from './types';

export const PACKAGE_ROOT = path.resolve(__dirname, '..', '..');

function glibcVersion(): string {
  try {
    const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
    return header?.glibcVersionRuntime ?? 'not glibc (musl or other)';
  } catch {
    return 'unknown';
  }
}

function candidatePaths(root: string): string[] {
  const out: string[] = [];
  if (!process.env.PREBUILDS_ONLY) {
    out.push(path.join(root, 'build', 'Release', 'moecap.node'), path.join(root, 'build', 'Debug', 'moecap.node'));
  }
  const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  if (fs.existsSync(dir)) {
    for (const f of fs.readdirSync(dir)) if (f.endsWith('.node')) out.push(path.join(dir, f));
  } else {
    out.push(path.join(dir, '*.node'));
  }
  return out;
}

let cached: NativeAddon | undefined;

export function loadAddon(root: string = PACKAGE_ROOT): NativeAddon {
  if (cached && root === PACKAGE_ROOT) return cached;
  let addon: NativeAddon;
  // MOECAP_ADDON_PATH: an addon built elsewhere (scripts/sanitize.sh's sanitized build).
  const override = process.env.MOECAP_ADDON_PATH;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- node-gyp-build ships no type declarations
    const nodeGypBuild = require('node-gyp-build') as (dir: string) => unknown;
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- a .node file at a path known only at run time
    addon = (override ? require(path.resolve(override)) : nodeGypBuild(root)) as NativeAddon;
  } catch (err) {
    // With MOECAP_ADDON_PATH set, that file is the only one tried.
    const tried = (override ? [path.resolve(override)] : candidatePaths(root))
      .map((p) => `  - ${p}${fs.existsSync(p) ? ' (exists, but failed to load)' : ' (missing)'}`)
      .join('\n');
    const cause = err instanceof Error ? err.message.split('\n')[0] : String(err);
    const e = new Error(
      `moecap: could not load the native addon.\n` +
        `Tried:\n${tried}\n` +
        `Found: platform=${process.platform} arch=${process.arch} glibc=${glibcVersion()} node=${process.version} ` +
        `(N-API ${process.versions.napi})${process.env.PREBUILDS_ONLY ? ' PREBUILDS_ONLY=1' : ''}\n` +
        `Cause: ${cause}\n` +
        (override ? `To fix: point MOECAP_ADDON_PATH at a built addon, or unset it. Otherwise, ` : 'To fix: ') +
        `install on linux-x64 with glibc >= 2.28 to use the prebuilt binary, or build from source ` +
        `(needs python3, make and a C++17 compiler): \`npm rebuild moecap\` or \`npx node-gyp rebuild\` in ${root}.`,
    );
    (e as Error & { cause?: unknown }).cause = err;
    throw e;
  }
  if (root === PACKAGE_ROOT) cached = addon;
  return addon;
}
