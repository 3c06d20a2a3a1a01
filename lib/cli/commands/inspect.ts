// `moecap inspect PATH`: a checkpoint's family, MoE layers, shapes, on-disk dtypes and routing,
// read from its headers and configuration only (with --error, one layer's weights: conversion_error.ts).
import { UsageError } from '../../errors';
import { openCheckpoint } from '../../checkpoint/checkpoint';
import { describeCheckpoint, formatDescription } from '../../checkpoint/describe';
import { ERROR_DTYPES, formatConversionError, measureConversionError, type ErrorDType } from '../../checkpoint/conversion_error';
import type { Command } from '../command';

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'describe an MoE checkpoint (safetensors folder or .gguf): layers, shapes, dtypes, routing',
  description:
    'Reads the headers and config.json (or GGUF metadata) of a checkpoint: architecture, MoE and dense layers, ' +
    'E, k, F, shared experts, tensor shapes and on-disk dtypes, bytes per expert and the routing rule. No weights are read, ' +
    "except with --error (the first MoE layer's router and 4 sampled experts, to measure each engine dtype's conversion error).",
  positional: 'PATH',
  options: [
    { name: 'json', type: 'boolean', description: 'print JSON instead of text' },
    {
      name: 'error',
      type: 'boolean',
      description: 'also read the first MoE layer (router and 4 sampled experts) and print the error of converting its values to each engine dtype',
    },
    { name: 'dtype', type: 'string', description: 'with --error: the engine dtypes to measure, comma separated (default int4,int8,bf16)' },
  ],
  async run({ options, positional }, { out }) {
    if (positional.length !== 1) throw new UsageError('inspect takes one PATH: a checkpoint folder, a .safetensors file or a .gguf file');
    if (options.dtype !== undefined && !options.error) throw new UsageError('--dtype needs --error');
    const dtypes = String(options.dtype ?? 'int4,int8,bf16')
      .split(',')
      .map((x) => x.trim());
    for (const d of dtypes)
      if (!(ERROR_DTYPES as readonly string[]).includes(d))
        throw new UsageError(`--dtype: unknown dtype ${JSON.stringify(d)} (known: ${ERROR_DTYPES.join(', ')})`);
    const ck = openCheckpoint(positional[0]);
    const d = describeCheckpoint(ck);
    const e = options.error ? measureConversionError(ck, dtypes as ErrorDType[]) : undefined;
    if (options.json) out(JSON.stringify(e ? { ...d, conversionError: e } : d, null, 2) + '\n');
    else out(formatDescription(d) + (e ? formatConversionError(e) : ''));
    return 0;
  },
};
