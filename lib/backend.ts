// backendInfo(requested): which backend a layer would run on and why. 'auto' (the default) takes
// CUDA only when the driver, a device and build-cuda/libmoecap_cuda.so are all usable, else the
// CPU with the specific reason; MOECAP_BACKEND=cpu|cuda|auto overrides the argument.
import { loadAddon } from './native/loader';
import type { NativeBackendInfo } from './native/types';

export type Backend = 'cpu' | 'cuda' | 'auto';
export type BackendInfo = NativeBackendInfo;

export function backendInfo(requested: Backend = 'auto'): BackendInfo {
  return loadAddon().backendInfo(requested);
}
