// Hardware and software counters around a timed region (native/core/counters): perf events,
// RAPL energy, NVML, getrusage. Each reading is measured (value, unit, source) or unavailable
// (reason) — never a zero standing in for a counter the machine lacks.
import { loadAddon } from './native/loader';
import { callNative } from './native/call';

export type CounterReading =
  { name: string; available: true; value: number; unit?: string; source: string } | { name: string; available: false; unit?: string; reason: string };

export type CounterAvailability =
  { name: string; available: true; unit?: string; source: string } | { name: string; available: false; unit?: string; reason: string };

interface NativeCounters {
  start(): void;
  stop(): CounterReading[];
  probe(): CounterAvailability[];
}

/**
 * Opens the counters for the threads this process has now (open after a warm-up pass so the
 * compute and libuv threads exist and are counted).
 */
export class Counters {
  private readonly native: NativeCounters;
  constructor() {
    const addon = loadAddon() as unknown as { NativeCounters: new () => NativeCounters };
    this.native = callNative(() => new addon.NativeCounters());
  }
  start(): void {
    callNative(() => this.native.start());
  }
  stop(): CounterReading[] {
    return callNative(() => this.native.stop());
  }
  probe(): CounterAvailability[] {
    return callNative(() => this.native.probe());
  }
}

export function probeCounters(): CounterAvailability[] {
  return new Counters().probe();
}
