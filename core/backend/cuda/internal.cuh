// Internals shared by the CUDA backend's translation units: the backend state (stream,
// library handles, precision), the checks that turn every CUDA/cuDNN/cuBLAS failure into a
// panic with file:line and a hint, launch and scratch helpers, fixed-order block reductions,
// and the declarations of every op (generated from core/backend/ops.def).
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstddef>
#include <cstdint>

extern "C" {
#include "core/backend/backend.h"
#include "core/util/error.h"
#include "core/util/log.h"
}

/* ---- state ------------------------------------------------------------------------------ */
struct unmix_cuda_state {
  int device;
  int sm_count;
  cudaStream_t stream;   // every op runs here, in issue order
  cublasHandle_t blas;   // bound to `stream`
  cudnnHandle_t dnn;     // bound to `stream`
  enum unmix_precision prec;
  bool deterministic;
  bool sync_debug;       // UNMIX_CUDA_SYNC=1: synchronise after every launch to locate faults
};
extern struct unmix_cuda_state unmix_cuda;

/* ---- checks ------------------------------------------------------------------------------ */
[[noreturn]] void unmix_cuda_fail_rt(cudaError_t e, const char *expr, const char *file, int line);
[[noreturn]] void unmix_cuda_fail_dnn(cudnnStatus_t s, const char *expr, const char *file, int line);
[[noreturn]] void unmix_cuda_fail_blas(cublasStatus_t s, const char *expr, const char *file, int line);
void unmix_cuda_after_launch(const char *file, int line);

static inline void unmix_cuda_check_rt(cudaError_t e, const char *expr, const char *file, int line) {
  if (e != cudaSuccess) unmix_cuda_fail_rt(e, expr, file, line);
}
static inline void unmix_cuda_check_dnn(cudnnStatus_t s, const char *expr, const char *file, int line) {
  if (s != CUDNN_STATUS_SUCCESS) unmix_cuda_fail_dnn(s, expr, file, line);
}
static inline void unmix_cuda_check_blas(cublasStatus_t s, const char *expr, const char *file, int line) {
  if (s != CUBLAS_STATUS_SUCCESS) unmix_cuda_fail_blas(s, expr, file, line);
}
#define UNMIX_CUDA_CHECK(expr) unmix_cuda_check_rt((expr), #expr, __FILE__, __LINE__)
#define UNMIX_CUDNN_CHECK(expr) unmix_cuda_check_dnn((expr), #expr, __FILE__, __LINE__)
#define UNMIX_CUBLAS_CHECK(expr) unmix_cuda_check_blas((expr), #expr, __FILE__, __LINE__)
/* After every kernel launch: launch-configuration errors at once, execution errors too when
 * UNMIX_CUDA_SYNC=1. */
#define UNMIX_CUDA_LAUNCHED() unmix_cuda_after_launch(__FILE__, __LINE__)

/* ---- launch helpers ------------------------------------------------------------------------ */
/* Every kernel launch of the backend goes through UNMIX_LAUNCH, so one definition decides
 * how kernels run: the <<<>>> launch under nvcc, or the emulated device's launcher when the
 * .cu files are compiled as host C++ (the EMU build). Launches are checked afterwards with
 * UNMIX_CUDA_LAUNCHED(). */
#ifdef __CUDACC__
#define UNMIX_LAUNCH(kernel, grid, block, smem, stream, ...) kernel<<<(grid), (block), (smem), (stream)>>>(__VA_ARGS__)
#else
#include "core/backend/cuda/emu/emu_launch.h"
#endif
#define UNMIX_CUDA_THREADS 256
/* Blocks for a grid-stride loop over n items: enough to fill the GPU, never 0. */
static inline unsigned unmix_cuda_blocks(int64_t n, int threads = UNMIX_CUDA_THREADS) {
  int64_t b = (n + threads - 1) / threads;
  int64_t cap = (int64_t)(unmix_cuda.sm_count > 0 ? unmix_cuda.sm_count : 80) * 16;
  if (b > cap) b = cap;
  if (b < 1) b = 1;
  return (unsigned)b;
}
#define UNMIX_GRID_STRIDE(i, n)                                                                    \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                        \
       i += (int64_t)blockDim.x * gridDim.x)

/* A grid-stride launch over n items (n its first argument); returns from the caller when n <= 0. */
#define UNMIX_LAUNCH_N(kernel, n, ...)                                                                   \
  do {                                                                                                   \
    if ((n) <= 0) return;                                                                                \
    UNMIX_LAUNCH(kernel, unmix_cuda_blocks(n), UNMIX_CUDA_THREADS, 0, unmix_cuda.stream, (n), __VA_ARGS__); \
    UNMIX_CUDA_LAUNCHED();                                                                               \
  } while (0)

/* Threads for a block that reduces one row of d values: a power of two in [32, 256]. Depends
 * on d alone, so the summation order (and the result) is the same on every run. */
static inline int unmix_cuda_row_threads(int64_t d) {
  int t = 32;
  while (t < 256 && t < d) t *= 2;
  return t;
}

/* One block per row of d values (n rows); returns from the caller when n <= 0. */
#define UNMIX_LAUNCH_ROWS(kernel, n, d, ...)                                                             \
  do {                                                                                                   \
    if ((n) <= 0) return;                                                                                \
    UNMIX_LAUNCH(kernel, (unsigned)(n), unmix_cuda_row_threads(d), 0, unmix_cuda.stream, __VA_ARGS__);   \
    UNMIX_CUDA_LAUNCHED();                                                                               \
  } while (0)

/* ---- scratch memory ---------------------------------------------------------------------- */
/* One device buffer per slot, grown on demand and kept. Ops run in stream order on one
 * stream, so an op may reuse a slot that an earlier op used; within one op each slot has one
 * use. Growing frees the old buffer, which waits for the device (cudaFree synchronises). */
enum unmix_cuda_slot {
  UNMIX_SLOT_PARTIAL = 0, // reduction partials (double)
  UNMIX_SLOT_STATS,       // batch-norm per-(split, channel) statistics
  UNMIX_SLOT_SEGMENTS,    // host arrays copied to the device (segment tables)
  UNMIX_SLOT_BF16_A,      // bf16 copies of GEMM/conv operands
  UNMIX_SLOT_BF16_B,
  UNMIX_SLOT_BF16_C,
  UNMIX_SLOT_TOPK,        // top-k candidates
  UNMIX_SLOT_TEMP,        // anything else local to one op
  UNMIX_SLOT_COUNT
};
void *unmix_cuda_scratch(enum unmix_cuda_slot slot, size_t bytes);
void unmix_cuda_scratch_release(void);
/* Copies a small host array into device memory, stream-ordered, through a pinned staging
 * buffer: the host array may be freed or reused as soon as this returns. */
void unmix_cuda_upload(void *dst, const void *src, size_t bytes);

/* ---- fixed-order block reductions (device) ---------------------------------------------- */
/* Sum over a block whose size is a multiple of 32 (at most 1024). Every thread gets the
 * result. The order depends only on blockDim, so results repeat bit for bit. `sh` holds 32. */
__device__ __forceinline__ double unmix_warp_sum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ double unmix_block_sum(double v, double *sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = unmix_warp_sum(v);
  __syncthreads(); // sh may still be read from a previous call
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  double t = lane < nw ? sh[lane] : 0.0;
  return unmix_warp_sum(t);
}
/* Maximum that ignores NaN (as `if (v > mx) mx = v` does): NaN never wins. */
__device__ __forceinline__ double unmix_max_nonan(double a, double b) { return b > a ? b : a; }
__device__ __forceinline__ double unmix_block_max(double v, double *sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  for (int o = 16; o > 0; o >>= 1) v = unmix_max_nonan(v, __shfl_xor_sync(0xffffffffu, v, o));
  __syncthreads();
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  double t = lane < nw ? sh[lane] : -INFINITY;
  for (int o = 16; o > 0; o >>= 1) t = unmix_max_nonan(t, __shfl_xor_sync(0xffffffffu, t, o));
  return t;
}

/* ---- shared helpers between translation units --------------------------------------------- */
/* f32 -> bf16 (round to nearest even) of a rows x cols matrix with leading dimension ld,
 * packed densely (leading dimension cols). */
void unmix_cuda_to_bf16(int64_t rows, int64_t cols, int64_t ld, const float *x, uint16_t *y);
/* y = bf16->f32(x) (beta == 0) or y += bf16->f32(x) (beta == 1). */
void unmix_cuda_from_bf16(int64_t n, const uint16_t *x, float *y, bool accumulate);
/* Deterministic column sums of an (n, d) matrix: out[j] (+)= sum_i x[i, j] in double. */
void unmix_cuda_col_sum_acc(int n, int d, const float *x, float *out, bool accumulate);
void unmix_cuda_conv_release(void);
/* Whether cuDNN has a kernel for conv op `op` (a UNMIX_OP_CONV2D_* value) with this geometry
 * in precision `prec` under the current determinism setting (plans the pass; see conv.cu). */
void unmix_cuda_weights_pin(const float *base, int64_t n); // conv.cu: see backend.h weights_pin
void unmix_cuda_weights_unpin(const float *base);
void unmix_cuda_weights_forget(const float *base); // drops a pin whatever its count (memory freed)
void unmix_cuda_weights_unpin_all(void);
bool unmix_cuda_conv_supported(const struct unmix_conv_geom *g, enum unmix_op op, enum unmix_precision prec);
/* The largest k that topk's rank pass can launch. */
int64_t unmix_cuda_topk_max_k(void);

/* ---- the ops: one function per row of core/backend/ops.def (contracts written there) -- */
#define UNMIX_OP(NAME, name, family, params) void unmix_cuda_##name params;
#include "core/backend/ops.def"
#undef UNMIX_OP
