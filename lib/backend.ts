// backendInfo(requested): which backend a layer would run on and why. 'auto' (the default) takes
// CUDA only when the driver, a device and build-cuda/libmoecap_cuda.so are all usable, else the
// CPU with the specific reason; MOECAP_BACKEND=cpu|cuda|auto overrides the argument.
import { loadAddon } from './native/loader';
import { callNative } from './native/call';
import type { Backend, BackendInfo } from './types';

export type { Backend, BackendInfo } from './types';

export function backendInfo(requested: Backend = 'auto'): BackendInfo {
  const addon = loadAddon();
  return callNative(() => addon.backendInfo(requested)) as BackendInfo;
}
