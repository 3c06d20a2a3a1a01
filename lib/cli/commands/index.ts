// Every `moecap` command, in the order `moecap help` lists them.
import type { Command } from '../command';
import { runCommand } from './run';
import { presetsCommand } from './presets';
import { layerCommand } from './layer';
import { infoCommand } from './info';
import { calibrateCommand } from './calibrate';
import { countersCommand } from './counters';
import { reportCommand } from './report';
import { analyzeCommand } from './analyze';
import { traceCommand } from './trace';
import { planCacheCommand } from './plan_cache';
import { inspectCommand } from './inspect';
import { epPlanCommand } from './ep_plan';

export const COMMANDS: readonly Command[] = [
  runCommand,
  presetsCommand,
  layerCommand,
  infoCommand,
  calibrateCommand,
  countersCommand,
  reportCommand,
  analyzeCommand,
  traceCommand,
  planCacheCommand,
  inspectCommand,
  epPlanCommand,
];
