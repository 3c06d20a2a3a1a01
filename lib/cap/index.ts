// The CAP benchmark's programmatic API (mirrors `moecap run` / `moecap presets`).
export { run, capSummary, planFromResults, PlanError, type Progress, type RunOptions } from './runner';
export { DEFAULT_PLAN, validatePlan, expandPlan, type RunPlan } from './plan';
export { PRESETS, findPreset, type ModelPreset } from './presets';
export { DATASHEETS, findDatasheet, machineKey, defaultProfilePath, type CpuMeasuredProfile, type PeakSource } from './hardware';
export { DEFAULT_PRICES, costPerMillionTokens, type PriceTable } from './cost';
export { paretoFrontier } from './pareto';
export { radarScores, type RadarMethod } from './radar';
export { validateResults, SCHEMA_VERSION, type Results, type ConfigResult } from './results';
export { writeMoecapFiles, moecapRecords } from './moecap_files';
export { calibrate, loadProfile, saveProfile, profilePath, readBandwidthNow, type CalibrateOptions } from './calibrate';
export { profileWarnings, orderingViolations, type ProfileWarning } from './ceilings';
export { memoryNeed, cpuBillOfMaterials, gpuBillOfMaterials, gpusNeeded, type MemoryNeed } from './bill_of_materials';
