/* A stand-in for libcuda.so.1 for the loader tests (test/cuda/cuda_host.test.ts): compiled with
 * -DFAKE_VERSION=… -DFAKE_DEVICES=… and named by MOECAP_CUDA_DRIVER, so every reason the loader
 * can give is reachable on a machine without a GPU. Never used outside the tests. */
int cuInit(unsigned flags) {
  (void)flags;
  return FAKE_DEVICES > 0 ? 0 : 100; /* CUDA_ERROR_NO_DEVICE */
}
int cuDriverGetVersion(int* v) {
  *v = FAKE_VERSION;
  return 0;
}
int cuDeviceGetCount(int* n) {
  *n = FAKE_DEVICES;
  return 0;
}
