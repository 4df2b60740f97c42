// The CUDA backend's op table and lifecycle: device selection, the one stream, the cuBLAS
// and cuDNN handles bound to it, memory, precision and determinism switches, scratch
// buffers, and the error reporting that every check in the backend ends in.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/backend/cuda/cuda_backend.h"
#include "core/backend/cuda/cuda_internal.cuh"

struct unmix_cuda_state unmix_cuda = {-1, 0, nullptr, nullptr, nullptr, UNMIX_PREC_TF32, false, false};

/* ---- error reporting ------------------------------------------------------------------ */
static const char *rt_hint(cudaError_t e) {
  switch (e) {
    case cudaErrorMemoryAllocation:
      return "the GPU is out of memory: lower the batch size, or look for other processes in nvidia-smi";
    case cudaErrorNoKernelImageForDevice:
    case cudaErrorInvalidDeviceFunction:
    case cudaErrorUnsupportedPtxVersion:
      return "this build has no code for this GPU: rebuild with -DCMAKE_CUDA_ARCHITECTURES=<the GPU's compute "
             "capability, e.g. 80 or 90>";
    case cudaErrorInsufficientDriver:
      return "the NVIDIA driver is older than the CUDA runtime of this build: update the driver";
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorMisalignedAddress:
      return "a kernel touched memory it should not: run under compute-sanitizer; the fault may belong to an "
             "earlier op (UNMIX_CUDA_SYNC=1 checks after every launch)";
    default:
      return "set UNMIX_CUDA_SYNC=1 to synchronise after every launch so that the failing op is the one named";
  }
}

void unmix_cuda_fail_rt(cudaError_t e, const char *expr, const char *file, int line) {
  unmix_panic(file, line, "CUDA error %s (%s) in `%s`; hint: %s", cudaGetErrorName(e), cudaGetErrorString(e), expr,
              rt_hint(e));
}

void unmix_cuda_fail_dnn(cudnnStatus_t s, const char *expr, const char *file, int line) {
  char detail[512] = "";
  cudnnGetLastErrorString(detail, sizeof detail);
  const char *hint = "CUDNN_LOGERR_DBG=1 CUDNN_LOGDEST_DBG=stderr makes cuDNN explain itself";
  if (s == CUDNN_STATUS_ALLOC_FAILED) hint = "the GPU is out of memory: lower the batch size";
  else if (s == CUDNN_STATUS_NOT_SUPPORTED)
    hint = "cuDNN has no kernel for this convolution in this precision; try precision fp32 or tf32";
  unmix_panic(file, line, "cuDNN error %s in `%s`%s%s; hint: %s", cudnnGetErrorString(s), expr,
              detail[0] ? ": " : "", detail, hint);
}

void unmix_cuda_fail_blas(cublasStatus_t s, const char *expr, const char *file, int line) {
  const char *hint = "set UNMIX_CUDA_SYNC=1 to locate the failing op";
  if (s == CUBLAS_STATUS_ALLOC_FAILED) hint = "the GPU is out of memory: lower the batch size";
  else if (s == CUBLAS_STATUS_INVALID_VALUE) hint = "a GEMM got a bad size or leading dimension (a caller bug)";
  unmix_panic(file, line, "cuBLAS error %s (%s) in `%s`; hint: %s", cublasGetStatusName(s), cublasGetStatusString(s),
              expr, hint);
}

void unmix_cuda_after_launch(const char *file, int line) {
  unmix_cuda_check_rt(cudaGetLastError(), "kernel launch", file, line);
  if (unmix_cuda.sync_debug) unmix_cuda_check_rt(cudaStreamSynchronize(unmix_cuda.stream), "kernel", file, line);
}

/* ---- scratch ----------------------------------------------------------------------------- */
static void *g_scratch[UNMIX_SLOT_COUNT];
static size_t g_scratch_cap[UNMIX_SLOT_COUNT];

void *unmix_cuda_scratch(enum unmix_cuda_slot slot, size_t bytes) {
  UNMIX_REQUIRE(slot >= 0 && slot < UNMIX_SLOT_COUNT, "bad CUDA scratch slot %d", (int)slot);
  if (bytes == 0) bytes = 256;
  if (bytes > g_scratch_cap[slot]) {
    // Earlier ops queued on the stream may still read the old buffer.
    UNMIX_CUDA_CHECK(cudaStreamSynchronize(unmix_cuda.stream));
    if (g_scratch[slot]) UNMIX_CUDA_CHECK(cudaFree(g_scratch[slot]));
    g_scratch[slot] = nullptr;
    g_scratch_cap[slot] = 0;
    size_t want = bytes + bytes / 4; // headroom so slowly growing requests don't reallocate each time
    UNMIX_CUDA_CHECK(cudaMalloc(&g_scratch[slot], want));
    g_scratch_cap[slot] = want;
  }
  return g_scratch[slot];
}

void unmix_cuda_scratch_release(void) {
  for (int i = 0; i < UNMIX_SLOT_COUNT; i++) {
    if (g_scratch[i]) cudaFree(g_scratch[i]);
    g_scratch[i] = nullptr;
    g_scratch_cap[i] = 0;
  }
}

void unmix_cuda_upload(void *dst, const void *src, size_t bytes) {
  // Pageable source: cudaMemcpyAsync returns once the bytes are staged, so `src` is free.
  if (bytes) UNMIX_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, unmix_cuda.stream));
}

/* ---- lifecycle ----------------------------------------------------------------------------- */
static __global__ void probe_kernel(int *flag) {
  if (flag) *flag = 1;
}

static unmix_status cuda_init(void) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    cudaGetLastError(); // clear the sticky error so later runtime calls are not confused
    return unmix_error_set(UNMIX_ERR_UNSUPPORTED, "no CUDA device is usable here (%s)",
                           e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
  }
  unmix_cuda.device = 0;
  if ((e = cudaSetDevice(0)) != cudaSuccess)
    return unmix_error_set(UNMIX_ERR_DEVICE, "cannot use CUDA device 0: %s", cudaGetErrorString(e));
  cudaDeviceProp prop;
  if ((e = cudaGetDeviceProperties(&prop, 0)) != cudaSuccess)
    return unmix_error_set(UNMIX_ERR_DEVICE, "cannot query CUDA device 0: %s", cudaGetErrorString(e));
  unmix_cuda.sm_count = prop.multiProcessorCount;
  if ((e = cudaStreamCreateWithFlags(&unmix_cuda.stream, cudaStreamNonBlocking)) != cudaSuccess)
    return unmix_error_set(UNMIX_ERR_DEVICE, "cannot create a CUDA stream on %s: %s", prop.name,
                           cudaGetErrorString(e));
  // A build without code for this GPU fails at its first kernel; find out now, while the
  // registry can still report the backend as unavailable instead of a later op panicking.
  probe_kernel<<<1, 1, 0, unmix_cuda.stream>>>(nullptr);
  e = cudaGetLastError();
  if (e == cudaSuccess) e = cudaStreamSynchronize(unmix_cuda.stream);
  if (e != cudaSuccess)
    return unmix_error_set(UNMIX_ERR_UNSUPPORTED,
                           "CUDA kernels of this build do not run on %s (sm_%d%d): %s; rebuild with "
                           "-DCMAKE_CUDA_ARCHITECTURES=%d%d",
                           prop.name, prop.major, prop.minor, cudaGetErrorString(e), prop.major, prop.minor);
  cublasStatus_t bs = cublasCreate(&unmix_cuda.blas);
  if (bs != CUBLAS_STATUS_SUCCESS)
    return unmix_error_set(UNMIX_ERR_DEVICE, "cuBLAS would not start on %s: %s", prop.name,
                           cublasGetStatusString(bs));
  UNMIX_CUBLAS_CHECK(cublasSetStream(unmix_cuda.blas, unmix_cuda.stream));
  // FP32 GEMMs pass their compute type explicitly; the default math mode adds no TF32.
  UNMIX_CUBLAS_CHECK(cublasSetMathMode(unmix_cuda.blas, CUBLAS_DEFAULT_MATH));
  size_t dnn_version = cudnnGetVersion();
  if (dnn_version / 10000 != CUDNN_MAJOR)
    return unmix_error_set(UNMIX_ERR_DEVICE,
                           "cuDNN %zu is loaded but this build was compiled against cuDNN %d.%d: install cuDNN %d "
                           "or rebuild",
                           dnn_version, CUDNN_MAJOR, CUDNN_MINOR, CUDNN_MAJOR);
  cudnnStatus_t ds = cudnnCreate(&unmix_cuda.dnn);
  if (ds != CUDNN_STATUS_SUCCESS)
    return unmix_error_set(UNMIX_ERR_DEVICE, "cuDNN would not start on %s: %s", prop.name,
                           cudnnGetErrorString(ds));
  UNMIX_CUDNN_CHECK(cudnnSetStream(unmix_cuda.dnn, unmix_cuda.stream));
  const char *sync = getenv("UNMIX_CUDA_SYNC");
  if (sync && *sync) {
    if (!strcmp(sync, "1")) unmix_cuda.sync_debug = true;
    else if (strcmp(sync, "0") != 0) unmix_log_warn("UNMIX_CUDA_SYNC=%s is neither 0 nor 1; taken as 0", sync);
  }
  unmix_log_debug("cuda backend: %s (sm_%d%d, %d SMs, %.1f GiB), cuDNN %zu, cuBLAS on one stream%s", prop.name,
                  prop.major, prop.minor, prop.multiProcessorCount, prop.totalGlobalMem / 1073741824.0, dnn_version,
                  unmix_cuda.sync_debug ? ", synchronising after every launch" : "");
  return UNMIX_OK;
}

static void cuda_shutdown(void) {
  if (unmix_cuda.stream) cudaStreamSynchronize(unmix_cuda.stream);
  unmix_cuda_conv_release();
  unmix_cuda_scratch_release();
  if (unmix_cuda.dnn) cudnnDestroy(unmix_cuda.dnn);
  if (unmix_cuda.blas) cublasDestroy(unmix_cuda.blas);
  if (unmix_cuda.stream) cudaStreamDestroy(unmix_cuda.stream);
  unmix_cuda.dnn = nullptr;
  unmix_cuda.blas = nullptr;
  unmix_cuda.stream = nullptr;
}

/* Every op of the table is implemented; the switch makes a new enum value fail here until it
 * is (the compiler warns on a missing case under -Wall). */
static bool cuda_supports_op(enum unmix_op op) {
  switch (op) {
    case UNMIX_OP_CONV2D_FORWARD:
    case UNMIX_OP_CONV2D_BACKWARD_DATA:
    case UNMIX_OP_CONV2D_BACKWARD_WEIGHT:
    case UNMIX_OP_BATCHNORM_FORWARD_TRAIN:
    case UNMIX_OP_BATCHNORM_FORWARD_EVAL:
    case UNMIX_OP_BATCHNORM_BACKWARD:
    case UNMIX_OP_RELU_FORWARD:
    case UNMIX_OP_RELU_BACKWARD:
    case UNMIX_OP_ADD:
    case UNMIX_OP_ADD_RELU_FORWARD:
    case UNMIX_OP_MAXPOOL_FORWARD:
    case UNMIX_OP_MAXPOOL_BACKWARD:
    case UNMIX_OP_AVGPOOL_FORWARD:
    case UNMIX_OP_AVGPOOL_BACKWARD:
    case UNMIX_OP_PAD2D_FORWARD:
    case UNMIX_OP_PAD2D_BACKWARD:
    case UNMIX_OP_GEMM:
    case UNMIX_OP_LINEAR_FORWARD:
    case UNMIX_OP_LINEAR_BACKWARD:
    case UNMIX_OP_L2NORM_FORWARD:
    case UNMIX_OP_L2NORM_BACKWARD:
    case UNMIX_OP_SOFTMAX_FORWARD:
    case UNMIX_OP_SOFTMAX_BACKWARD:
    case UNMIX_OP_LOG_SOFTMAX_FORWARD:
    case UNMIX_OP_LOG_SOFTMAX_BACKWARD:
    case UNMIX_OP_CROSS_ENTROPY_FORWARD:
    case UNMIX_OP_CROSS_ENTROPY_BACKWARD:
    case UNMIX_OP_SOFT_CROSS_ENTROPY_FORWARD:
    case UNMIX_OP_SOFT_CROSS_ENTROPY_BACKWARD:
    case UNMIX_OP_FLIP_BATCH:
    case UNMIX_OP_GATHER_ROWS:
    case UNMIX_OP_SCATTER_ROWS:
    case UNMIX_OP_COPY:
    case UNMIX_OP_FILL:
    case UNMIX_OP_SCALE:
    case UNMIX_OP_AXPY:
    case UNMIX_OP_AXPBY:
    case UNMIX_OP_MIX_GLOBAL:
    case UNMIX_OP_MIX_REGION:
    case UNMIX_OP_SUM:
    case UNMIX_OP_SUMSQ_SEGMENTS:
    case UNMIX_OP_ROW_SUM:
    case UNMIX_OP_COL_SUM:
    case UNMIX_OP_SCALE_ROWS:
    case UNMIX_OP_SCALE_COLS:
    case UNMIX_OP_EXP_SCALED:
    case UNMIX_OP_TRANSPOSE:
    case UNMIX_OP_ROW_DOT:
    case UNMIX_OP_AXPY_ROWS:
    case UNMIX_OP_SGD_STEP:
    case UNMIX_OP_EMA:
    case UNMIX_OP_TOPK:
    case UNMIX_OP_NONFINITE_COUNT:
      return true;
    case UNMIX_OP_COUNT:
      return false;
  }
  return false;
}

static void cuda_set_precision(enum unmix_precision p) {
  UNMIX_REQUIRE(p == UNMIX_PREC_FP32 || p == UNMIX_PREC_TF32 || p == UNMIX_PREC_BF16, "bad precision %d", (int)p);
  unmix_cuda.prec = p; // read by the GEMM and convolution paths at each call
}

extern "C" void unmix_cuda_set_deterministic(bool on) { unmix_cuda.deterministic = on; }
extern "C" bool unmix_cuda_deterministic(void) { return unmix_cuda.deterministic; }
extern "C" void *unmix_cuda_stream(void) { return (void *)unmix_cuda.stream; }

/* ---- memory ------------------------------------------------------------------------------- */
static void *cuda_alloc(size_t bytes) {
  void *p = nullptr;
  // cudaMalloc returns 256-byte aligned memory, more than the 64 bytes the contract asks.
  cudaError_t e = cudaMalloc(&p, bytes ? bytes : 256);
  if (e != cudaSuccess) {
    cudaGetLastError(); // an out-of-memory is not sticky, but keep the next check clean
    return nullptr;
  }
  return p;
}
/* Ops queued on the stream may still use p: wait for them before the memory can be reused. */
static void cuda_free(void *p) {
  if (!p) return;
  UNMIX_CUDA_CHECK(cudaStreamSynchronize(unmix_cuda.stream));
  UNMIX_CUDA_CHECK(cudaFree(p));
}
static void *cuda_alloc_host(size_t bytes) {
  void *p = nullptr;
  if (cudaMallocHost(&p, bytes ? bytes : 256) != cudaSuccess) {
    cudaGetLastError();
    return nullptr;
  }
  return p;
}
static void cuda_free_host(void *p) {
  if (!p) return;
  UNMIX_CUDA_CHECK(cudaStreamSynchronize(unmix_cuda.stream));
  UNMIX_CUDA_CHECK(cudaFreeHost(p));
}
/* Copies to and from the host are complete when they return (the caller may reuse or read
 * the host buffer at once); device-to-device copies are ordered on the stream. */
static void cuda_h2d(void *d, const void *s, size_t n) {
  if (!n) return;
  UNMIX_CUDA_CHECK(cudaMemcpyAsync(d, s, n, cudaMemcpyHostToDevice, unmix_cuda.stream));
  UNMIX_CUDA_CHECK(cudaStreamSynchronize(unmix_cuda.stream));
}
static void cuda_d2h(void *d, const void *s, size_t n) {
  if (!n) return;
  UNMIX_CUDA_CHECK(cudaMemcpyAsync(d, s, n, cudaMemcpyDeviceToHost, unmix_cuda.stream));
  UNMIX_CUDA_CHECK(cudaStreamSynchronize(unmix_cuda.stream));
}
static void cuda_d2d(void *d, const void *s, size_t n) {
  if (!n || d == s) return;
  UNMIX_CUDA_CHECK(cudaMemcpyAsync(d, s, n, cudaMemcpyDeviceToDevice, unmix_cuda.stream));
}
static void cuda_sync(void) { UNMIX_CUDA_CHECK(cudaStreamSynchronize(unmix_cuda.stream)); }

/* ---- the table ------------------------------------------------------------------------------ */
static unmix_backend make_table(void) {
  unmix_backend b = {};
  b.name = "cuda";
  b.device = UNMIX_DEVICE_CUDA;
  b.init = cuda_init;
  b.shutdown = cuda_shutdown;
  b.supports_op = cuda_supports_op;
  b.set_precision = cuda_set_precision;
  b.set_deterministic = unmix_cuda_set_deterministic;
  b.alloc = cuda_alloc;
  b.free = cuda_free;
  b.alloc_host = cuda_alloc_host;
  b.free_host = cuda_free_host;
  b.memcpy_h2d = cuda_h2d;
  b.memcpy_d2h = cuda_d2h;
  b.memcpy_d2d = cuda_d2d;
  b.synchronize = cuda_sync;
  b.conv2d_forward = unmix_cuda_conv2d_forward;
  b.conv2d_backward_data = unmix_cuda_conv2d_backward_data;
  b.conv2d_backward_weight = unmix_cuda_conv2d_backward_weight;
  b.batchnorm_forward_train = unmix_cuda_batchnorm_forward_train;
  b.batchnorm_forward_eval = unmix_cuda_batchnorm_forward_eval;
  b.batchnorm_backward = unmix_cuda_batchnorm_backward;
  b.relu_forward = unmix_cuda_relu_forward;
  b.relu_backward = unmix_cuda_relu_backward;
  b.add = unmix_cuda_add;
  b.add_relu_forward = unmix_cuda_add_relu_forward;
  b.maxpool_forward = unmix_cuda_maxpool_forward;
  b.maxpool_backward = unmix_cuda_maxpool_backward;
  b.avgpool_forward = unmix_cuda_avgpool_forward;
  b.avgpool_backward = unmix_cuda_avgpool_backward;
  b.pad2d_forward = unmix_cuda_pad2d_forward;
  b.pad2d_backward = unmix_cuda_pad2d_backward;
  b.gemm = unmix_cuda_gemm;
  b.linear_forward = unmix_cuda_linear_forward;
  b.linear_backward = unmix_cuda_linear_backward;
  b.l2norm_forward = unmix_cuda_l2norm_forward;
  b.l2norm_backward = unmix_cuda_l2norm_backward;
  b.softmax_forward = unmix_cuda_softmax_forward;
  b.softmax_backward = unmix_cuda_softmax_backward;
  b.log_softmax_forward = unmix_cuda_log_softmax_forward;
  b.log_softmax_backward = unmix_cuda_log_softmax_backward;
  b.cross_entropy_forward = unmix_cuda_cross_entropy_forward;
  b.cross_entropy_backward = unmix_cuda_cross_entropy_backward;
  b.soft_cross_entropy_forward = unmix_cuda_soft_cross_entropy_forward;
  b.soft_cross_entropy_backward = unmix_cuda_soft_cross_entropy_backward;
  b.flip_batch = unmix_cuda_flip_batch;
  b.gather_rows = unmix_cuda_gather_rows;
  b.scatter_rows = unmix_cuda_scatter_rows;
  b.copy = unmix_cuda_copy;
  b.fill = unmix_cuda_fill;
  b.scale = unmix_cuda_scale;
  b.axpy = unmix_cuda_axpy;
  b.axpby = unmix_cuda_axpby;
  b.mix_global = unmix_cuda_mix_global;
  b.mix_region = unmix_cuda_mix_region;
  b.sum = unmix_cuda_sum;
  b.sumsq_segments = unmix_cuda_sumsq_segments;
  b.row_sum = unmix_cuda_row_sum;
  b.col_sum = unmix_cuda_col_sum;
  b.scale_rows = unmix_cuda_scale_rows;
  b.scale_cols = unmix_cuda_scale_cols;
  b.exp_scaled = unmix_cuda_exp_scaled;
  b.transpose = unmix_cuda_transpose;
  b.row_dot = unmix_cuda_row_dot;
  b.axpy_rows = unmix_cuda_axpy_rows;
  b.sgd_step = unmix_cuda_sgd_step;
  b.ema = unmix_cuda_ema;
  b.topk = unmix_cuda_topk;
  b.nonfinite_count = unmix_cuda_nonfinite_count;
  return b;
}

extern "C" const unmix_backend unmix_backend_cuda = make_table();
