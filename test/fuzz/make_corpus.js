// Writes the seed corpus of the expert-file header fuzz target (test/fuzz/corpus/expert_file_header/):
// the first bytes (header, table, checksum) of weights files the engine itself writes, in the exact
// on-disk layout, for the target's layer (f32, H=16, F=8, E=6, seed 3) and for other dtypes (mode
// bit 1: the shape from the header), plus truncated and flipped ones. Needs the built addon and dist/.
// Usage: node test/fuzz/make_corpus.js
const fs = require('fs');
const os = require('os');
const path = require('path');
const { loadAddon } = require('../../dist/native/loader.js');

const out = path.join(__dirname, 'corpus', 'expert_file_header');
const HEAD = 88 + 24 * 6 + 8; // 6 experts
const EXTRA = 1 << 2; // mode bits 2-7 = 1: the file extends 64 KiB past the given bytes

async function head(dtype) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-corpus-'));
  try {
    const p = path.join(dir, 'e.bin');
    const l = await loadAddon().createLayer({
      hidden: 16,
      intermediate: 8,
      experts: 6,
      topK: 1,
      dtype,
      weights: { seed: 3 },
      offload: { capacity: 2, path: p },
    });
    l.close();
    return fs.readFileSync(p).subarray(0, HEAD);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

(async () => {
  fs.mkdirSync(out, { recursive: true });
  const put = (name, mode, bytes) => fs.writeFileSync(path.join(out, name), Buffer.concat([Buffer.from([mode]), bytes]));
  const f32 = await head('f32');
  put('valid-f32', EXTRA, f32);
  for (const dtype of ['bf16', 'int8', 'int4']) put(`valid-${dtype}`, EXTRA | 2, await head(dtype));
  put('truncated-header', EXTRA, f32.subarray(0, 50));
  put('truncated-table', EXTRA, f32.subarray(0, 150));
  const flip = (off, bit, mode) => {
    const b = Buffer.from(f32);
    b[off] ^= bit;
    return [mode, b];
  };
  put('flipped-table-bytes', ...flip(80, 1, EXTRA));
  put('flipped-experts', ...flip(24, 1, EXTRA));
  put('flipped-w13-k-resealed', ...flip(32, 2, EXTRA | 1));
  put('flipped-entry-offset-resealed', ...flip(88 + 24 * 2 + 1, 0x40, EXTRA | 1));
  put('no-extra-bytes', 0, f32);
})();
