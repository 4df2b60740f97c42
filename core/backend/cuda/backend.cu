// The CUDA backend's op table and lifecycle: device selection, the one stream, the cuBLAS
// and cuDNN handles bound to it, memory, precision and determinism switches, scratch
// buffers, and the error reporting that every check in the backend ends in.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/backend/cuda/cuda_backend.h"
#include "core/backend/cuda/internal.cuh"

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

/* Host arrays reach the device through one pinned staging buffer: the caller's array is
 * copied into it at once (so the caller may free or reuse its array on return, whatever
 * memory it is), and the asynchronous copy from pinned memory is really asynchronous. The
 * event recorded after each copy guards the buffer: the next upload waits for it before
 * overwriting the staged bytes. A cudaMemcpyAsync straight from the caller's pageable
 * array would be a use-after-free wherever the driver chose not to stage it. */
static void *g_stage;
static size_t g_stage_cap;
static cudaEvent_t g_stage_done;

void unmix_cuda_upload(void *dst, const void *src, size_t bytes) {
  if (!bytes) return;
  if (!g_stage_done) UNMIX_CUDA_CHECK(cudaEventCreateWithFlags(&g_stage_done, cudaEventDisableTiming));
  UNMIX_CUDA_CHECK(cudaEventSynchronize(g_stage_done)); // the previous upload has left the buffer
  if (bytes > g_stage_cap) {
    if (g_stage) UNMIX_CUDA_CHECK(cudaFreeHost(g_stage));
    g_stage = nullptr;
    g_stage_cap = 0;
    const size_t want = bytes < 65536 ? 65536 : bytes + bytes / 4;
    UNMIX_CUDA_CHECK(cudaMallocHost(&g_stage, want));
    g_stage_cap = want;
  }
  memcpy(g_stage, src, bytes);
  UNMIX_CUDA_CHECK(cudaMemcpyAsync(dst, g_stage, bytes, cudaMemcpyHostToDevice, unmix_cuda.stream));
  UNMIX_CUDA_CHECK(cudaEventRecord(g_stage_done, unmix_cuda.stream));
}

static void upload_release(void) {
  if (g_stage_done) {
    cudaEventSynchronize(g_stage_done);
    cudaEventDestroy(g_stage_done);
  }
  if (g_stage) cudaFreeHost(g_stage);
  g_stage_done = nullptr;
  g_stage = nullptr;
  g_stage_cap = 0;
}

/* ---- lifecycle ----------------------------------------------------------------------------- */
static __global__ void probe_kernel(int *flag) {
  if (flag) *flag = 1;
}

static unmix_status cuda_start(void) {
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
  UNMIX_LAUNCH(probe_kernel, 1, 1, 0, unmix_cuda.stream, nullptr);
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
  upload_release();
  if (unmix_cuda.dnn) cudnnDestroy(unmix_cuda.dnn);
  if (unmix_cuda.blas) cublasDestroy(unmix_cuda.blas);
  if (unmix_cuda.stream) cudaStreamDestroy(unmix_cuda.stream);
  unmix_cuda.dnn = nullptr;
  unmix_cuda.blas = nullptr;
  unmix_cuda.stream = nullptr;
}

/* A start that fails half-way gives back what it had created (stream, cuBLAS handle...),
 * so a process that goes on without the GPU does not hold them. */
static unmix_status cuda_init(void) {
  unmix_status st = cuda_start();
  if (st != UNMIX_OK) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", unmix_error_message());
    cuda_shutdown();
    cudaGetLastError();
    unmix_error_set(st, "%s", msg);
  }
  return st;
}

extern "C" const unmix_backend unmix_backend_cuda;

/* The table, minus what this backend's kernels refuse: a top-k whose k exceeds the rank
 * pass's grid, and a convolution pass that cuDNN has no kernel for in the asked precision
 * (found by planning it, which is what running it would do first). */
static bool cuda_supports_op(enum unmix_op op, const struct unmix_op_query *q) {
  if (!unmix_backend_has_op(&unmix_backend_cuda, op)) return false;
  if (!q) return true;
  if (op == UNMIX_OP_TOPK && q->k > 0) return q->k <= unmix_cuda_topk_max_k() && (q->d <= 0 || q->k <= q->d);
  if (q->conv && unmix_op_uses_precision(op) && !strcmp(unmix_op_family(op), "conv"))
    return unmix_cuda_conv_supported(q->conv, op, q->prec);
  return true;
}

static void cuda_set_precision(enum unmix_precision p) {
  UNMIX_REQUIRE(p == UNMIX_PREC_FP32 || p == UNMIX_PREC_TF32 || p == UNMIX_PREC_BF16, "bad precision %d", (int)p);
  if (p != unmix_cuda.prec) unmix_cuda_weights_unpin_all(); // pins hold the old precision's copies
  unmix_cuda.prec = p; // read by the GEMM and convolution paths at each call
}

static void cuda_set_deterministic(bool on) { unmix_cuda.deterministic = on; }
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
  unmix_cuda_weights_forget((const float *)p); // a pinned store's memory may be reused
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
/* Copies to and from the host are complete, as far as the caller can tell, when they return:
 * it may reuse the host buffer at once (h2d) or read it (d2h). An upload no longer waits for
 * the compute stream to drain: it is staged through the pinned buffer and ordered on the
 * stream, so the host prepares the next batch while the GPU still computes (it waits only
 * for the previous upload's copy). Device-to-device copies are ordered on the stream. */
static void cuda_h2d(void *d, const void *s, size_t n) { unmix_cuda_upload(d, s, n); }
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
  b.set_deterministic = cuda_set_deterministic;
  b.alloc = cuda_alloc;
  b.free = cuda_free;
  b.alloc_host = cuda_alloc_host;
  b.free_host = cuda_free_host;
  b.memcpy_h2d = cuda_h2d;
  b.memcpy_d2h = cuda_d2h;
  b.memcpy_d2d = cuda_d2d;
  b.synchronize = cuda_sync;
  b.weights_pin = unmix_cuda_weights_pin;
  b.weights_unpin = unmix_cuda_weights_unpin;
#define UNMIX_OP(NAME, name, family, params) b.name = unmix_cuda_##name;
#include "core/backend/ops.def"
#undef UNMIX_OP
  return b;
}

extern "C" const unmix_backend unmix_backend_cuda = make_table();
