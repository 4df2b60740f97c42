// CPU emulation of the CUDA subset our backend's kernels use, so that they run (slowly) on a
// machine without a GPU: one std::thread per CUDA thread, std::barrier for __syncthreads and
// for warp-synchronous shuffles/ballots; cuBLAS GEMM through CBLAS; no cuDNN. See run.sh.
#pragma once
#include <atomic>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>
#include <cfloat>
#include <cstdio>
using std::isfinite; using std::isnan;

struct dim3 { unsigned x, y, z; dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {} };
struct uint3e { unsigned x, y, z; };
extern thread_local uint3e threadIdx, blockIdx;
extern dim3 blockDim, gridDim;
struct emu_tls { std::barrier<> *block; std::barrier<> *warp; uint64_t *slots; };
extern thread_local emu_tls emu_t;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)

inline void __syncthreads() { emu_t.block->arrive_and_wait(); }
inline unsigned emu_tid() { return threadIdx.x + threadIdx.y * blockDim.x + threadIdx.z * blockDim.x * blockDim.y; }
template <class T> T __shfl_xor_sync(unsigned, T v, int o) {
  static_assert(sizeof(T) <= 8, "");
  unsigned lane = emu_tid() & 31;
  uint64_t bits = 0; memcpy(&bits, &v, sizeof v);
  emu_t.slots[lane] = bits;
  emu_t.warp->arrive_and_wait();
  uint64_t got = emu_t.slots[lane ^ (unsigned)o];
  emu_t.warp->arrive_and_wait();
  T r; memcpy(&r, &got, sizeof r); return r;
}
inline unsigned __ballot_sync(unsigned, int p) {
  unsigned lane = emu_tid() & 31;
  emu_t.slots[lane] = p ? 1 : 0;
  emu_t.warp->arrive_and_wait();
  unsigned m = 0; for (int i = 0; i < 32; i++) m |= (unsigned)emu_t.slots[i] << i;
  emu_t.warp->arrive_and_wait();
  return m;
}
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline unsigned atomicAdd(unsigned *a, unsigned v) { return std::atomic_ref<unsigned>(*a).fetch_add(v); }
inline unsigned __float_as_uint(float f) { unsigned u; memcpy(&u, &f, 4); return u; }
inline float __fmul_rn(float a, float b) { volatile float r = a * b; return r; }
inline float __fsub_rn(float a, float b) { volatile float r = a - b; return r; }

template <class... P> struct emu_kernel_call {
  void (*k)(P...); dim3 g, b;
  template <class... A> void operator()(A... args) const {
    gridDim = g; blockDim = b;
    const unsigned nt = b.x * b.y * b.z;
    const unsigned ws = nt < 32 ? nt : 32;
    if (nt % ws) { fprintf(stderr, "emu: block of %u threads\n", nt); abort(); }
    for (unsigned bz = 0; bz < g.z; bz++)
      for (unsigned by = 0; by < g.y; by++)
        for (unsigned bx = 0; bx < g.x; bx++) {
          std::barrier<> bar(nt);
          std::vector<std::unique_ptr<std::barrier<>>> wb;
          for (unsigned w = 0; w < nt / ws; w++) wb.emplace_back(new std::barrier<>(ws));
          std::vector<uint64_t> slots(nt);
          std::vector<std::thread> ts;
          ts.reserve(nt);
          for (unsigned t = 0; t < nt; t++)
            ts.emplace_back([&, t] {
              threadIdx = {t % b.x, (t / b.x) % b.y, t / (b.x * b.y)};
              blockIdx = {bx, by, bz};
              emu_t = {&bar, wb[t / ws].get(), slots.data() + (t / ws) * ws};
              k(static_cast<P>(args)...);
            });
          for (auto &t : ts) t.join();
        }
  }
};
template <class... P, class G, class B, class... R>
emu_kernel_call<P...> emu_launcher(void (*k)(P...), G g, B b, R...) { return {k, dim3(g), dim3(b)}; }

/* ---- runtime ---------------------------------------------------------------------------------- */
typedef int cudaError_t;
enum { cudaSuccess = 0, cudaErrorMemoryAllocation = 2, cudaErrorInvalidDeviceFunction = 98,
       cudaErrorNoKernelImageForDevice = 209, cudaErrorUnsupportedPtxVersion = 222, cudaErrorInsufficientDriver = 35,
       cudaErrorIllegalAddress = 700, cudaErrorLaunchFailure = 719, cudaErrorMisalignedAddress = 716 };
typedef void *cudaStream_t;
enum cudaMemcpyKind { cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
#define cudaStreamNonBlocking 1
struct cudaDeviceProp { char name[256]; int multiProcessorCount, major, minor; size_t totalGlobalMem; };
inline const char *cudaGetErrorString(cudaError_t) { return "emulated error"; }
inline const char *cudaGetErrorName(cudaError_t) { return "emuError"; }
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline cudaError_t cudaGetDeviceCount(int *c) { *c = 1; return cudaSuccess; }
inline cudaError_t cudaSetDevice(int) { return cudaSuccess; }
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int) {
  strcpy(p->name, "CPU emulation"); p->multiProcessorCount = 2; p->major = 9; p->minor = 0; p->totalGlobalMem = 1ull << 33;
  return cudaSuccess; }
inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, int) { *s = (void *)1; return cudaSuccess; }
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaMalloc(void **p, size_t n);
inline cudaError_t cudaMalloc(double **p, size_t n) { return cudaMalloc((void **)p, n); }
cudaError_t cudaFree(void *p);
inline cudaError_t cudaMallocHost(void **p, size_t n) { return cudaMalloc(p, n); }
inline cudaError_t cudaFreeHost(void *p) { return cudaFree(p); }
inline cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind, cudaStream_t) { memmove(d, s, n); return cudaSuccess; }
inline cudaError_t cudaMemGetInfo(size_t *f, size_t *t) { *f = 1ull << 32; *t = 1ull << 33; return cudaSuccess; }

/* ---- cuBLAS (GEMM through CBLAS, column-major, as cuBLAS defines it) ------------------------------ */
typedef int cublasStatus_t;
enum { CUBLAS_STATUS_SUCCESS = 0, CUBLAS_STATUS_ALLOC_FAILED = 3, CUBLAS_STATUS_INVALID_VALUE = 7 };
typedef void *cublasHandle_t;
typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 } cublasOperation_t;
typedef enum { CUBLAS_DEFAULT_MATH = 0 } cublasMath_t;
typedef enum { CUBLAS_COMPUTE_32F = 68, CUBLAS_COMPUTE_32F_FAST_TF32 = 77 } cublasComputeType_t;
typedef enum { CUDA_R_32F = 0, CUDA_R_16BF = 14 } cudaDataType;
enum { CUBLAS_GEMM_DEFAULT = -1 };
inline const char *cublasGetStatusName(cublasStatus_t) { return "emu"; }
inline const char *cublasGetStatusString(cublasStatus_t) { return "emu"; }
inline cublasStatus_t cublasCreate(cublasHandle_t *h) { *h = (void *)1; return 0; }
inline cublasStatus_t cublasDestroy(cublasHandle_t) { return 0; }
inline cublasStatus_t cublasSetStream(cublasHandle_t, cudaStream_t) { return 0; }
inline cublasStatus_t cublasSetMathMode(cublasHandle_t, cublasMath_t) { return 0; }
cublasStatus_t cublasGemmEx(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void *alpha, const void *A, cudaDataType at, int lda, const void *B, cudaDataType bt,
                            int ldb, const void *beta, void *C, cudaDataType ct, int ldc, cublasComputeType_t, int);

/* ---- cuDNN (handles only: the convolutions are not emulated) ---------------------------------------- */
typedef int cudnnStatus_t;
enum { CUDNN_STATUS_SUCCESS = 0, CUDNN_STATUS_ALLOC_FAILED = 2, CUDNN_STATUS_NOT_SUPPORTED = 3000 };
#define CUDNN_MAJOR 9
#define CUDNN_MINOR 0
typedef void *cudnnHandle_t;
inline const char *cudnnGetErrorString(cudnnStatus_t) { return "emu"; }
inline void cudnnGetLastErrorString(char *m, size_t n) { if (n) m[0] = 0; }
inline size_t cudnnGetVersion() { return 90000; }
inline cudnnStatus_t cudnnCreate(cudnnHandle_t *h) { *h = (void *)1; return 0; }
inline cudnnStatus_t cudnnDestroy(cudnnHandle_t) { return 0; }
inline cudnnStatus_t cudnnSetStream(cudnnHandle_t, cudaStream_t) { return 0; }
