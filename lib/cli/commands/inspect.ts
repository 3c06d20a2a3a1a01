// `moecap inspect PATH`: a checkpoint's family, MoE layers, shapes, on-disk dtypes and routing,
// read from its headers and configuration only.
import { UsageError } from '../../errors';
import { openCheckpoint } from '../../checkpoint/checkpoint';
import { describeCheckpoint, formatDescription } from '../../checkpoint/describe';
import type { Command } from '../command';

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'describe an MoE checkpoint (safetensors folder or .gguf): layers, shapes, dtypes, routing',
  description:
    'Reads the headers and config.json (or GGUF metadata) of a checkpoint: architecture, MoE and dense layers, ' +
    'E, k, F, shared experts, tensor shapes and on-disk dtypes, bytes per expert and the routing rule. No weights are read.',
  positional: 'PATH',
  options: [{ name: 'json', type: 'boolean', description: 'print JSON instead of text' }],
  async run({ options, positional }, { out }) {
    if (positional.length !== 1) throw new UsageError('inspect takes one PATH: a checkpoint folder, a .safetensors file or a .gguf file');
    const d = describeCheckpoint(openCheckpoint(positional[0]));
    out(options.json ? JSON.stringify(d, null, 2) + '\n' : formatDescription(d));
    return 0;
  },
};
