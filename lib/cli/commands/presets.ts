// `moecap presets`: the model shapes `moecap run --preset` knows, with router semantics and sources.
import { PRESETS, expertBytes } from '../../cap/presets';
import type { Command } from '../command';

export const presetsCommand: Command = {
  name: 'presets',
  summary: 'the model presets and their router semantics',
  description: 'Lists the model presets (one MoE layer shape each) with router semantics and sources.',
  options: [{ name: 'json', type: 'boolean', description: 'print JSON' }],
  async run({ options }, io) {
    if (options.json) {
      io.out(JSON.stringify(PRESETS, null, 2) + '\n');
      return 0;
    }
    const header = ['preset', 'MoE L', 'H', 'E', 'k', 'F', 'shared', 'router', 'S_e bf16'];
    const rows = PRESETS.map((p) => [
      p.name,
      `${p.moeLayers}/${p.layers}`,
      String(p.hidden),
      String(p.experts),
      String(p.topK),
      String(p.intermediate),
      p.shared ? `${p.shared.count}×${p.shared.intermediate / p.shared.count}${p.shared.gated ? ' gated' : ''}` : '–',
      [
        p.router.scoring,
        p.router.renormalize ? 'renorm' : 'no-renorm',
        p.router.routedScalingFactor !== 1 ? `×${p.router.routedScalingFactor}` : '',
        p.router.groups ? `groups ${p.router.groups.count}/keep ${p.router.groups.keep}` : '',
        p.router.selectionBias ? 'bias' : '',
      ]
        .filter(Boolean)
        .join(' '),
      `${(expertBytes(p, 2) / 1e6).toFixed(1)} MB`,
    ]);
    const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    const line = (c: string[]) =>
      c
        .map((x, i) => (i === 0 || i >= 6 ? x.padEnd(w[i]) : x.padStart(w[i])))
        .join('  ')
        .trimEnd();
    io.out([line(header), ...rows.map(line)].join('\n') + '\n');
    io.out("MoE L: MoE layers / all layers. S_e: bytes of one routed expert (3·H·F·2). Sources: each model's public config.json (--json).\n");
    return 0;
  },
};
