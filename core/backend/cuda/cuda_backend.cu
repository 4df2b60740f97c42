// The CUDA backend's op table. This first version registers the backend, manages device
// memory and reports every op as not supported; the CUDA issue fills the table in.
#include <cuda_runtime.h>

#include <cstdio>

extern "C" {
#include "core/backend/backend.h"
}

static int g_device = -1;

static unmix_status cuda_init(void) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0)
    return unmix_error_set(UNMIX_ERR_UNSUPPORTED, "no CUDA device is usable here (%s)",
                           e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
  g_device = 0;
  cudaSetDevice(g_device);
  return UNMIX_OK;
}
static void cuda_shutdown(void) {}
static bool cuda_supports_op(enum unmix_op op) {
  (void)op;
  return false;
}
static void cuda_set_precision(enum unmix_precision p) { (void)p; }
static void *cuda_alloc(size_t bytes) {
  void *p = nullptr;
  if (cudaMalloc(&p, bytes ? bytes : 256) != cudaSuccess) return nullptr;
  return p;
}
static void cuda_free(void *p) { cudaFree(p); }
static void *cuda_alloc_host(size_t bytes) {
  void *p = nullptr;
  if (cudaMallocHost(&p, bytes ? bytes : 256) != cudaSuccess) return nullptr;
  return p;
}
static void cuda_free_host(void *p) { cudaFreeHost(p); }
static void cuda_h2d(void *d, const void *s, size_t n) { cudaMemcpy(d, s, n, cudaMemcpyHostToDevice); }
static void cuda_d2h(void *d, const void *s, size_t n) { cudaMemcpy(d, s, n, cudaMemcpyDeviceToHost); }
static void cuda_d2d(void *d, const void *s, size_t n) { cudaMemcpy(d, s, n, cudaMemcpyDeviceToDevice); }
static void cuda_sync(void) { cudaDeviceSynchronize(); }

static unmix_backend make_table(void) {
  unmix_backend b = {};
  b.name = "cuda";
  b.device = UNMIX_DEVICE_CUDA;
  b.init = cuda_init;
  b.shutdown = cuda_shutdown;
  b.supports_op = cuda_supports_op;
  b.set_precision = cuda_set_precision;
  b.alloc = cuda_alloc;
  b.free = cuda_free;
  b.alloc_host = cuda_alloc_host;
  b.free_host = cuda_free_host;
  b.memcpy_h2d = cuda_h2d;
  b.memcpy_d2h = cuda_d2h;
  b.memcpy_d2d = cuda_d2d;
  b.synchronize = cuda_sync;
  return b;
}

extern "C" const unmix_backend unmix_backend_cuda = make_table();
