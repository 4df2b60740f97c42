// Internals shared by the CUDA backend's translation units: the backend state (stream,
// library handles, precision), the checks that turn every CUDA/cuDNN/cuBLAS failure into a
// panic with file:line and a hint, launch and scratch helpers, fixed-order block reductions,
// and the declarations of every op (their contracts are in core/backend/backend.h).
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

/* Threads for a block that reduces one row of d values: a power of two in [32, 256]. Depends
 * on d alone, so the summation order (and the result) is the same on every run. */
static inline int unmix_cuda_row_threads(int64_t d) {
  int t = 32;
  while (t < 256 && t < d) t *= 2;
  return t;
}

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
/* Copies a small host array into device memory (stream-ordered; the host array may be
 * reused once this returns). */
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

/* ---- the ops ------------------------------------------------------------------------------ */
void unmix_cuda_conv2d_forward(const struct unmix_conv_geom *g, const float *x, const float *wt, float *y);
void unmix_cuda_conv2d_backward_data(const struct unmix_conv_geom *g, const float *dy, const float *wt, float *dx);
void unmix_cuda_conv2d_backward_weight(const struct unmix_conv_geom *g, const float *dy, const float *x, float *dwt);

void unmix_cuda_batchnorm_forward_train(const struct unmix_bn_geom *g, const float *x, const float *gamma,
                                        const float *beta, float *y, float *save_mean, float *save_invstd,
                                        float *running_mean, float *running_var, float momentum, float eps);
void unmix_cuda_batchnorm_forward_eval(const struct unmix_bn_geom *g, const float *x, const float *gamma,
                                       const float *beta, const float *running_mean, const float *running_var,
                                       float eps, float *y);
void unmix_cuda_batchnorm_backward(const struct unmix_bn_geom *g, const float *dy, const float *x,
                                   const float *gamma, const float *save_mean, const float *save_invstd, float *dx,
                                   float *dgamma, float *dbeta);

void unmix_cuda_relu_forward(int64_t n, const float *x, float *y);
void unmix_cuda_relu_backward(int64_t n, const float *dy, const float *y, float *dx);
void unmix_cuda_add(int64_t n, const float *a, const float *b, float *y);
void unmix_cuda_add_relu_forward(int64_t n, const float *a, const float *b, float *y);

void unmix_cuda_maxpool_forward(const struct unmix_pool_geom *g, const float *x, float *y, int32_t *argmax);
void unmix_cuda_maxpool_backward(const struct unmix_pool_geom *g, const float *dy, const int32_t *argmax, float *dx);
void unmix_cuda_avgpool_forward(int n, int hw, int c, const float *x, float *y);
void unmix_cuda_avgpool_backward(int n, int hw, int c, const float *dy, float *dx);
void unmix_cuda_pad2d_forward(int n, int h, int w, int c, int pad, float value, const float *x, float *y);
void unmix_cuda_pad2d_backward(int n, int h, int w, int c, int pad, const float *dy, float *dx);

void unmix_cuda_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                     int ldb, float beta, float *c, int ldc);
void unmix_cuda_linear_forward(int n, int in, int out, const float *x, const float *wt, const float *bias, float *y);
void unmix_cuda_linear_backward(int n, int in, int out, const float *dy, const float *x, const float *wt, float *dx,
                                float *dwt, float *dbias);

void unmix_cuda_l2norm_forward(int n, int d, const float *x, float *y, float *norms, float eps);
void unmix_cuda_l2norm_backward(int n, int d, const float *dy, const float *x, const float *norms, float eps,
                                float *dx);
void unmix_cuda_softmax_forward(int n, int d, float scale, const float *x, float *y);
void unmix_cuda_softmax_backward(int n, int d, float scale, const float *dy, const float *y, float *dx);
void unmix_cuda_log_softmax_forward(int n, int d, float scale, const float *x, float *y);
void unmix_cuda_log_softmax_backward(int n, int d, float scale, const float *dy, const float *y, float *dx);
void unmix_cuda_cross_entropy_forward(int n, int d, float scale, const float *logits, const int32_t *labels,
                                      float *probs, float *loss, float *correct_top1, float *correct_top5);
void unmix_cuda_cross_entropy_backward(int n, int d, float scale, float dloss, const float *probs,
                                       const int32_t *labels, float *dlogits);
void unmix_cuda_soft_cross_entropy_forward(int n, int d, float scale, const float *logits, const float *targets,
                                           float *logprobs, float *loss);
void unmix_cuda_soft_cross_entropy_backward(int n, int d, float scale, float dloss, const float *logprobs,
                                            const float *targets, float *dlogits);

void unmix_cuda_flip_batch(int n, int64_t row, const float *x, float *y);
void unmix_cuda_gather_rows(int n, int64_t row, const int32_t *idx, const float *x, float *y);
void unmix_cuda_scatter_rows(int n, int64_t row, const int32_t *idx, const float *x, float *y);
void unmix_cuda_copy(int64_t n, const float *x, float *y);
void unmix_cuda_fill(int64_t n, float value, float *y);
void unmix_cuda_scale(int64_t n, float a, const float *x, float *y);
void unmix_cuda_axpy(int64_t n, float a, const float *x, float *y);
void unmix_cuda_axpby(int64_t n, float a, const float *x, float b, float *y);
void unmix_cuda_mix_global(int n, int64_t row, float lam, const float *x, float *y);
void unmix_cuda_mix_region(int n, int h, int w, int c, int r0, int r1, int c0, int c1, const float *x, float *y);

void unmix_cuda_sum(int64_t n, const float *x, float *out);
void unmix_cuda_sumsq_segments(int nseg, const int64_t *off, const float *x, float *out);
void unmix_cuda_row_sum(int n, int d, const float *x, float *out);
void unmix_cuda_row_dot(int n, int d, const float *a, const float *b, float *out, int out_stride);
void unmix_cuda_axpy_rows(int n, int d, const float *s, int s_stride, const float *x, float *y);
void unmix_cuda_col_sum(int n, int d, const float *x, float *out);
void unmix_cuda_scale_rows(int n, int d, const float *s, float *x);
void unmix_cuda_scale_cols(int n, int d, const float *s, float *x);
void unmix_cuda_exp_scaled(int64_t n, float a, float b, const float *x, float *y);
void unmix_cuda_transpose(int n, int d, const float *x, float *y);

void unmix_cuda_sgd_step(int64_t n, float *p, const float *g, float *buf, float lr, float momentum, float wd,
                         int nseg, const int64_t *off, const float *gscale_seg, const float *wd_seg);
void unmix_cuda_ema(int64_t n, float m, const float *query, float *key);
void unmix_cuda_topk(int n, int d, int k, const float *x, float *vals, int32_t *idx);
void unmix_cuda_nonfinite_count(int64_t n, const float *x, float *out);
