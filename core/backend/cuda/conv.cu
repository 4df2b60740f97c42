// CUDA conv2d through cuDNN's legacy API on NHWC activations and KRSC (= OHWI) filters.
// One plan per (geometry, precision, determinism): descriptors plus the algorithm of each
// pass, chosen on first use (timed with cudnnFind, or in deterministic mode by cuDNN's
// heuristics among the algorithms it reports deterministic) and kept. One workspace, grown
// to the largest any chosen algorithm needs and kept.
// Deterministic mode's choice depends on the geometry, precision and cuDNN's heuristics only,
// never on free memory (the workspace is sized for it, or the run fails clearly).
// Precision: FP32 = FMA-only kernels (no TF32; a default-math row, as cuDNN returned it, only
// where cuDNN lists no FMA row, with a warning); TF32 = tensor-op TF32; BF16 = operands
// rounded to bf16 by our kernel, FP32 accumulation inside cuDNN, bf16 output widened back to
// FP32 (dw: computed into a bf16 buffer, then added in FP32). A pass for which cuDNN has no
// bf16 kernel at all runs in TF32 for that geometry, with a warning; lack of memory never
// changes the precision. Each plan's row, algorithm and math type are logged (info).
// Accumulation: dwt += (beta = 1 in FP32/TF32), dx =.
// Weight pinning (bf16): the graph pins a parameter store for each forward pass (backend.h,
// weights_pin); the store is converted to bf16 once there, and every conv whose filter lies in
// a pinned store reads that copy instead of converting its filter again in each pass.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "core/backend/cuda/internal.cuh"

enum { PASS_FWD = 0, PASS_BWD_DATA = 1, PASS_BWD_FILTER = 2 };
static const char *const g_pass_name[3] = {"forward", "backward-data", "backward-weight"};

struct conv_plan {
  struct unmix_conv_geom g;
  enum unmix_precision prec;
  bool det;
  cudnnTensorDescriptor_t xd, yd;
  cudnnFilterDescriptor_t wd;
  cudnnConvolutionDescriptor_t cd;
  bool chosen[3];
  bool unsupported[3]; // cuDNN has no algorithm for this pass (bf16: it runs through the TF32 plan)
  bool warned[3];
  int row[3]; // index of the chosen row in cuDNN's list (logged)
  int algo[3];
  cudnnMathType_t math[3];
  size_t ws[3];
};

static conv_plan **g_plans;
static int g_nplans, g_cap;
static void *g_ws;
static size_t g_ws_size;

// ---- weight pinning ----------------------------------------------------------------------
// A pinned range is read-only while pinned (the graph's contract: from a forward pass to the end
// of its backward pass), so its bf16 copy stays exact. Pins are counted (two contexts may hold
// the same model); each pin converts afresh. A missing pin only costs a conversion per call; a
// stale one would be wrong, so a free of the store or a precision change drops it outright.
enum { MAX_PINS = 16 };
struct weight_pin {
  const float *base;
  int64_t n;
  int refs;
  uint16_t *bf16;
  size_t cap; // elements
};
static weight_pin g_pins[MAX_PINS];
static int g_pin_next; // round-robin victim when the table is full
static bool g_pin_enabled = true;
static long g_pin_hits, g_pin_converts;

static void pin_drop(weight_pin *p) {
  p->base = nullptr;
  p->n = 0;
  p->refs = 0;
}

static weight_pin *pin_find(const float *base) {
  for (int i = 0; i < MAX_PINS; i++)
    if (g_pins[i].base == base) return &g_pins[i];
  return nullptr;
}

void unmix_cuda_weights_unpin(const float *base) {
  weight_pin *p = base ? pin_find(base) : nullptr;
  if (p && --p->refs <= 0) pin_drop(p);
}

void unmix_cuda_weights_forget(const float *base) {
  weight_pin *p = base ? pin_find(base) : nullptr;
  if (p) pin_drop(p);
}

void unmix_cuda_weights_unpin_all(void) {
  for (int i = 0; i < MAX_PINS; i++) pin_drop(&g_pins[i]);
}

void unmix_cuda_weights_pin(const float *base, int64_t n) {
  if (!g_pin_enabled || unmix_cuda.prec != UNMIX_PREC_BF16 || !base || n <= 0) return;
  weight_pin *p = pin_find(base);
  const int refs = p ? p->refs : 0;
  if (p && p->n != n) pin_drop(p); // a different store at the same address: start over
  if (!p || !p->base) {
    p = nullptr;
    for (int i = 0; i < MAX_PINS && !p; i++)
      if (!g_pins[i].base) p = &g_pins[i];
    if (!p) p = &g_pins[g_pin_next++ % MAX_PINS]; // evicted: its holders convert per call
  }
  if (p->cap < (size_t)n) {
    if (p->bf16) { // queued convs may still read the old copy
      UNMIX_CUDA_CHECK(cudaStreamSynchronize(unmix_cuda.stream));
      UNMIX_CUDA_CHECK(cudaFree(p->bf16));
    }
    p->bf16 = nullptr;
    p->cap = 0;
    if (cudaMalloc((void **)&p->bf16, sizeof(uint16_t) * (size_t)n) != cudaSuccess) {
      cudaGetLastError(); // no room for the copy: convert per call, as without pinning
      pin_drop(p);
      return;
    }
    p->cap = (size_t)n;
  }
  unmix_cuda_to_bf16(1, n, n, base, p->bf16);
  p->refs = p->base == base ? refs + 1 : 1;
  p->base = base;
  p->n = n;
  g_pin_converts++;
}

// The bf16 copy of filter wt (nw floats) when a pinned store holds it, else NULL.
static const uint16_t *pinned_bf16(const float *wt, int64_t nw) {
  for (int i = 0; i < MAX_PINS; i++) {
    const weight_pin *p = &g_pins[i];
    if (p->base && wt >= p->base && wt + nw <= p->base + p->n) {
      g_pin_hits++;
      return p->bf16 + (wt - p->base);
    }
  }
  return nullptr;
}

extern "C" void unmix_cuda_weight_pinning(bool on) {
  g_pin_enabled = on;
  if (!on) unmix_cuda_weights_unpin_all();
}

extern "C" void unmix_cuda_weight_pin_stats(long *hits, long *converts) {
  *hits = g_pin_hits;
  *converts = g_pin_converts;
}

static void pins_release(void) {
  cudaStreamSynchronize(unmix_cuda.stream);
  for (int i = 0; i < MAX_PINS; i++) {
    if (g_pins[i].bf16) cudaFree(g_pins[i].bf16);
    g_pins[i] = weight_pin{};
  }
}

void unmix_cuda_conv_release(void) {
  pins_release();
  for (int i = 0; i < g_nplans; i++) {
    conv_plan *p = g_plans[i];
    cudnnDestroyTensorDescriptor(p->xd);
    cudnnDestroyTensorDescriptor(p->yd);
    cudnnDestroyFilterDescriptor(p->wd);
    cudnnDestroyConvolutionDescriptor(p->cd);
    free(p);
  }
  free(g_plans);
  g_plans = nullptr;
  g_nplans = g_cap = 0;
  if (g_ws) cudaFree(g_ws);
  g_ws = nullptr;
  g_ws_size = 0;
}

static bool same_geom(const struct unmix_conv_geom *a, const struct unmix_conv_geom *b) {
  return a->n == b->n && a->h == b->h && a->w == b->w && a->c == b->c && a->k == b->k && a->r == b->r &&
         a->s == b->s && a->stride == b->stride && a->pad == b->pad;
}

static cudnnMathType_t base_math(enum unmix_precision prec) {
  return prec == UNMIX_PREC_FP32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH;
}

static conv_plan *get_plan(const struct unmix_conv_geom *g, enum unmix_precision prec, bool det) {
  for (int i = 0; i < g_nplans; i++)
    if (g_plans[i]->prec == prec && g_plans[i]->det == det && same_geom(&g_plans[i]->g, g)) return g_plans[i];
  conv_plan *p = (conv_plan *)unmix_xcalloc(1, sizeof *p);
  p->g = *g;
  p->prec = prec;
  p->det = det;
  const cudnnDataType_t dt = prec == UNMIX_PREC_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
  UNMIX_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->xd));
  UNMIX_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->yd));
  UNMIX_CUDNN_CHECK(cudnnCreateFilterDescriptor(&p->wd));
  UNMIX_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&p->cd));
  UNMIX_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->xd, CUDNN_TENSOR_NHWC, dt, g->n, g->c, g->h, g->w));
  UNMIX_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->yd, CUDNN_TENSOR_NHWC, dt, g->n, g->k, g->p, g->q));
  UNMIX_CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->wd, dt, CUDNN_TENSOR_NHWC, g->k, g->c, g->r, g->s));
  UNMIX_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(p->cd, g->pad, g->pad, g->stride, g->stride, 1, 1,
                                                    CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  UNMIX_CUDNN_CHECK(cudnnSetConvolutionMathType(p->cd, base_math(prec)));
  int on, oc, oh, ow;
  UNMIX_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(p->cd, p->xd, p->wd, &on, &oc, &oh, &ow));
  UNMIX_REQUIRE(on == g->n && oc == g->k && oh == g->p && ow == g->q,
                "cuDNN output shape %dx%dx%dx%d differs from the geometry's %dx%dx%dx%d", on, oh, ow, oc, g->n,
                g->p, g->q, g->k);
  if (g_nplans == g_cap) {
    g_cap = g_cap ? 2 * g_cap : 32;
    g_plans = (conv_plan **)unmix_xrealloc(g_plans, sizeof *g_plans * (size_t)g_cap);
  }
  g_plans[g_nplans++] = p;
  return p;
}

/* Makes the workspace at least `bytes`; false (workspace unchanged) when memory is short. */
static bool grow_workspace(size_t bytes) {
  if (bytes <= g_ws_size) return true;
  void *p = nullptr;
  UNMIX_CUDA_CHECK(cudaStreamSynchronize(unmix_cuda.stream)); // the old workspace may be in use
  if (cudaMalloc(&p, bytes) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  if (g_ws) UNMIX_CUDA_CHECK(cudaFree(g_ws));
  g_ws = p;
  g_ws_size = bytes;
  return true;
}

/* The same selection over the three perf-result types (identical layouts, different names). */
struct perf_row {
  int algo;
  cudnnStatus_t status;
  size_t memory;
  cudnnDeterminism_t determinism;
  cudnnMathType_t math;
};

static const char *math_name(cudnnMathType_t m) {
  switch (m) {
    case CUDNN_DEFAULT_MATH: return "default";
    case CUDNN_TENSOR_OP_MATH: return "tensor-op";
    case CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION: return "tensor-op-allow-conversion";
    case CUDNN_FMA_MATH: return "fma";
  }
  return "unknown";
}

enum { PICK_NONE = 0, PICK_OK = 1, PICK_NO_MEMORY = -1 };

/* Whether cuDNN's row may run for this plan, memory aside. FP32 takes the rows cuDNN labels
 * FMA; only when it lists none does it take a DEFAULT-math row, as cuDNN returned it (never
 * forcing FMA onto an engine that may need tensor cores or another workspace; plan_for warns
 * that such a pass may use TF32). TF32/BF16 never take ALLOW_CONVERSION rows (fp16 rounding). */
static bool usable(const conv_plan *p, const perf_row *r, bool fp32_default_ok) {
  if (r->status != CUDNN_STATUS_SUCCESS) return false;
  if (p->prec == UNMIX_PREC_FP32) {
    if (r->math != CUDNN_FMA_MATH && !(fp32_default_ok && r->math == CUDNN_DEFAULT_MATH)) return false;
  } else if (r->math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) {
    return false;
  }
  return !p->det || r->determinism == CUDNN_DETERMINISTIC;
}

/* The first usable row, in cuDNN's order (fastest first). In deterministic mode the choice
 * must not depend on free memory (two runs or two ranks would then run different algorithms
 * and get different bits): the first usable row is taken and the workspace grown to its size,
 * or the run fails (PICK_NO_MEMORY). Otherwise a row whose workspace cannot be allocated is
 * passed over (the order is timed, hence run-dependent, anyway); PICK_NO_MEMORY when rows
 * existed but none fitted. PICK_NONE: cuDNN has no usable row at all. */
static int pick(conv_plan *p, int pass, const perf_row *rows, int count) {
  bool any_fma = false;
  for (int i = 0; i < count; i++) any_fma |= rows[i].status == CUDNN_STATUS_SUCCESS && rows[i].math == CUDNN_FMA_MATH;
  // Outside deterministic mode, leave room for the activations yet to come.
  size_t limit = SIZE_MAX;
  if (!p->det) {
    size_t free_b = 0, total_b = 0;
    UNMIX_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    limit = g_ws_size + free_b / 2;
  }
  bool short_of_memory = false;
  for (int i = 0; i < count; i++) {
    const perf_row *r = &rows[i];
    if (!usable(p, r, !any_fma)) continue;
    if (r->memory > limit || !grow_workspace(r->memory)) {
      short_of_memory = true;
      if (p->det) break; // the deterministic choice is this row or nothing
      continue;
    }
    p->row[pass] = i;
    p->algo[pass] = r->algo;
    p->math[pass] = r->math;
    p->ws[pass] = r->memory;
    return PICK_OK;
  }
  return short_of_memory ? PICK_NO_MEMORY : PICK_NONE;
}

#define MAX_ALGOS 16
#define FILL_ROWS(perf, n, rows)                                                                       \
  for (int i_ = 0; i_ < (n); i_++) {                                                                   \
    (rows)[i_].algo = (int)(perf)[i_].algo;                                                            \
    (rows)[i_].status = (perf)[i_].status;                                                             \
    (rows)[i_].memory = (perf)[i_].memory;                                                             \
    (rows)[i_].determinism = (perf)[i_].determinism;                                                   \
    (rows)[i_].math = (perf)[i_].mathType;                                                             \
  }

/* Candidate algorithms for a pass, best first: timed by cudnnFind (which allocates its own
 * buffers, so the caller's dw is never touched), or cuDNN's heuristics in deterministic mode
 * and when Find itself fails (e.g. it ran out of memory). An empty list (cuDNN has nothing
 * for this layout/type) is the caller's to report. */
static int list_algos(conv_plan *p, int pass, perf_row *rows) {
  int n = 0;
  cudnnStatus_t st = CUDNN_STATUS_NOT_SUPPORTED, sh = CUDNN_STATUS_SUCCESS;
  UNMIX_CUDNN_CHECK(cudnnSetConvolutionMathType(p->cd, base_math(p->prec)));
  cudnnHandle_t h = unmix_cuda.dnn;
  if (pass == PASS_FWD) {
    cudnnConvolutionFwdAlgoPerf_t perf[MAX_ALGOS];
    if (!p->det) st = cudnnFindConvolutionForwardAlgorithm(h, p->xd, p->wd, p->cd, p->yd, MAX_ALGOS, &n, perf);
    if (p->det || st != CUDNN_STATUS_SUCCESS)
      sh = cudnnGetConvolutionForwardAlgorithm_v7(h, p->xd, p->wd, p->cd, p->yd, MAX_ALGOS, &n, perf);
    if (sh != CUDNN_STATUS_SUCCESS) n = 0;
    FILL_ROWS(perf, n, rows);
  } else if (pass == PASS_BWD_DATA) {
    cudnnConvolutionBwdDataAlgoPerf_t perf[MAX_ALGOS];
    if (!p->det) st = cudnnFindConvolutionBackwardDataAlgorithm(h, p->wd, p->yd, p->cd, p->xd, MAX_ALGOS, &n, perf);
    if (p->det || st != CUDNN_STATUS_SUCCESS)
      sh = cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p->wd, p->yd, p->cd, p->xd, MAX_ALGOS, &n, perf);
    if (sh != CUDNN_STATUS_SUCCESS) n = 0;
    FILL_ROWS(perf, n, rows);
  } else {
    cudnnConvolutionBwdFilterAlgoPerf_t perf[MAX_ALGOS];
    if (!p->det)
      st = cudnnFindConvolutionBackwardFilterAlgorithm(h, p->xd, p->yd, p->cd, p->wd, MAX_ALGOS, &n, perf);
    if (p->det || st != CUDNN_STATUS_SUCCESS)
      sh = cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p->xd, p->yd, p->cd, p->wd, MAX_ALGOS, &n, perf);
    if (sh != CUDNN_STATUS_SUCCESS) n = 0;
    FILL_ROWS(perf, n, rows);
  }
  if ((!p->det && st != CUDNN_STATUS_SUCCESS) || sh != CUDNN_STATUS_SUCCESS) {
    char msg[256]; // reading cuDNN's message clears it, so a later failure reports its own
    cudnnGetLastErrorString(msg, sizeof msg);
    unmix_log_debug("conv %s: cudnnFind %s, heuristics %s (%s)", g_pass_name[pass],
                    p->det ? "not used" : cudnnGetErrorString(st), cudnnGetErrorString(sh), msg);
  }
  return n;
}

static const char *prec_name(enum unmix_precision prec) {
  return prec == UNMIX_PREC_FP32 ? "fp32" : prec == UNMIX_PREC_TF32 ? "tf32" : "bf16";
}

/* Chooses the algorithm of `pass` once per plan; PICK_NONE when cuDNN offers no kernel
 * (remembered, so the question is asked once), PICK_NO_MEMORY when the workspace for it
 * cannot be allocated. */
static int choose(conv_plan *p, int pass) {
  if (p->chosen[pass]) return PICK_OK;
  if (p->unsupported[pass]) return PICK_NONE;
  const struct unmix_conv_geom *g = &p->g;
  perf_row rows[MAX_ALGOS];
  int n = list_algos(p, pass, rows);
  const int r = pick(p, pass, rows, n);
  if (r == PICK_NONE) p->unsupported[pass] = true;
  if (r != PICK_OK) return r;
  p->chosen[pass] = true;
  // Which row and math type each plan runs, once per plan and pass.
  unmix_log_info("conv %s n%d %dx%dx%d -> k%d r%d s%d stride %d pad %d (%s%s): cuDNN row %d of %d, algo %d, "
                 "math %s, workspace %zu",
                 g_pass_name[pass], g->n, g->h, g->w, g->c, g->k, g->r, g->s, g->stride, g->pad, prec_name(p->prec),
                 p->det ? ", deterministic" : "", p->row[pass], n, p->algo[pass], math_name(p->math[pass]),
                 p->ws[pass]);
  if (p->prec == UNMIX_PREC_FP32 && p->math[pass] == CUDNN_DEFAULT_MATH)
    unmix_log_warn("cuDNN lists no FMA-only %s kernel for this fp32 conv; its default-math kernel may use TF32 "
                   "on this GPU (NVIDIA_TF32_OVERRIDE=0 forbids it)",
                   g_pass_name[pass]);
  return PICK_OK;
}

/* The plan that runs `pass` for this geometry: the current precision's, or, only when cuDNN
 * has no bf16 kernel for it at all, the TF32 one (with a warning; supports_op answers false
 * for that geometry in bf16, which is how tests count such passes). A pass that has
 * a kernel but not the memory for its workspace fails: precision never changes for memory. */
static conv_plan *plan_for(const struct unmix_conv_geom *g, int pass, enum unmix_precision prec) {
  conv_plan *p = get_plan(g, prec, unmix_cuda.deterministic);
  const int r = choose(p, pass);
  if (r == PICK_OK) return p;
  if (r == PICK_NONE && p->prec == UNMIX_PREC_BF16) {
    if (!p->warned[pass]) {
      unmix_log_warn("cuDNN has no bf16 %s kernel for conv %dx%dx%d -> %d (%dx%d, stride %d, pad %d); this pass "
                     "runs in tf32",
                     g_pass_name[pass], g->h, g->w, g->c, g->k, g->r, g->s, g->stride, g->pad);
    }
    p->warned[pass] = true;
    return plan_for(g, pass, UNMIX_PREC_TF32);
  }
  if (r == PICK_NO_MEMORY)
    unmix_panic(__FILE__, __LINE__,
                "the GPU is out of memory for the cuDNN workspace of the %s pass of conv n%d %dx%dx%d -> k%d (%dx%d, "
                "stride %d, pad %d) in %s%s mode; hint: lower the batch size%s",
                g_pass_name[pass], g->n, g->h, g->w, g->c, g->k, g->r, g->s, g->stride, g->pad, prec_name(p->prec),
                p->det ? " deterministic" : "", p->det ? " (deterministic mode never picks another algorithm)" : "");
  unmix_panic(__FILE__, __LINE__,
              "cuDNN offers no usable %s algorithm for conv n%d %dx%dx%d -> k%d (%dx%d, stride %d, pad %d) in "
              "%s%s mode; hint: try precision tf32, or turn deterministic mode off",
              g_pass_name[pass], g->n, g->h, g->w, g->c, g->k, g->r, g->s, g->stride, g->pad, prec_name(p->prec),
              p->det ? " deterministic" : "");
}

static int pass_of(enum unmix_op op) {
  return op == UNMIX_OP_CONV2D_FORWARD ? PASS_FWD : op == UNMIX_OP_CONV2D_BACKWARD_DATA ? PASS_BWD_DATA
                                                                                       : PASS_BWD_FILTER;
}

bool unmix_cuda_conv_supported(const struct unmix_conv_geom *g, enum unmix_op op, enum unmix_precision prec) {
  return choose(get_plan(g, prec, unmix_cuda.deterministic), pass_of(op)) == PICK_OK;
}

// The filter in bf16: the pinned copy, or a conversion into scratch slot B.
static const uint16_t *bf16_filter(const float *wt, int64_t nw) {
  const uint16_t *w16 = pinned_bf16(wt, nw);
  if (w16) return w16;
  uint16_t *tmp = (uint16_t *)unmix_cuda_scratch(UNMIX_SLOT_BF16_B, sizeof(uint16_t) * (size_t)nw);
  unmix_cuda_to_bf16(1, nw, nw, wt, tmp);
  return tmp;
}

void unmix_cuda_conv2d_forward(const struct unmix_conv_geom *g, const float *x, const float *wt, float *y) {
  conv_plan *p = plan_for(g, PASS_FWD, unmix_cuda.prec);
  const float one = 1.0f, zero = 0.0f;
  UNMIX_CUDNN_CHECK(cudnnSetConvolutionMathType(p->cd, p->math[PASS_FWD]));
  const cudnnConvolutionFwdAlgo_t algo = (cudnnConvolutionFwdAlgo_t)p->algo[PASS_FWD];
  if (p->prec != UNMIX_PREC_BF16) {
    UNMIX_CUDNN_CHECK(cudnnConvolutionForward(unmix_cuda.dnn, &one, p->xd, x, p->wd, wt, p->cd, algo, g_ws,
                                              g_ws_size, &zero, p->yd, y));
    return;
  }
  const int64_t nx = (int64_t)g->n * g->h * g->w * g->c, nw = (int64_t)g->k * g->r * g->s * g->c,
                ny = (int64_t)g->n * g->p * g->q * g->k;
  uint16_t *x16 = (uint16_t *)unmix_cuda_scratch(UNMIX_SLOT_BF16_A, sizeof(uint16_t) * (size_t)nx);
  const uint16_t *w16 = bf16_filter(wt, nw);
  uint16_t *y16 = (uint16_t *)unmix_cuda_scratch(UNMIX_SLOT_BF16_C, sizeof(uint16_t) * (size_t)ny);
  unmix_cuda_to_bf16(1, nx, nx, x, x16);
  UNMIX_CUDNN_CHECK(cudnnConvolutionForward(unmix_cuda.dnn, &one, p->xd, x16, p->wd, w16, p->cd, algo, g_ws,
                                            g_ws_size, &zero, p->yd, y16));
  unmix_cuda_from_bf16(ny, y16, y, false);
}

void unmix_cuda_conv2d_backward_data(const struct unmix_conv_geom *g, const float *dy, const float *wt, float *dx) {
  conv_plan *p = plan_for(g, PASS_BWD_DATA, unmix_cuda.prec);
  const float one = 1.0f, zero = 0.0f;
  UNMIX_CUDNN_CHECK(cudnnSetConvolutionMathType(p->cd, p->math[PASS_BWD_DATA]));
  const cudnnConvolutionBwdDataAlgo_t algo = (cudnnConvolutionBwdDataAlgo_t)p->algo[PASS_BWD_DATA];
  if (p->prec != UNMIX_PREC_BF16) {
    UNMIX_CUDNN_CHECK(cudnnConvolutionBackwardData(unmix_cuda.dnn, &one, p->wd, wt, p->yd, dy, p->cd, algo, g_ws,
                                                   g_ws_size, &zero, p->xd, dx));
    return;
  }
  const int64_t nx = (int64_t)g->n * g->h * g->w * g->c, nw = (int64_t)g->k * g->r * g->s * g->c,
                ny = (int64_t)g->n * g->p * g->q * g->k;
  uint16_t *dy16 = (uint16_t *)unmix_cuda_scratch(UNMIX_SLOT_BF16_A, sizeof(uint16_t) * (size_t)ny);
  const uint16_t *w16 = bf16_filter(wt, nw);
  uint16_t *dx16 = (uint16_t *)unmix_cuda_scratch(UNMIX_SLOT_BF16_C, sizeof(uint16_t) * (size_t)nx);
  unmix_cuda_to_bf16(1, ny, ny, dy, dy16);
  UNMIX_CUDNN_CHECK(cudnnConvolutionBackwardData(unmix_cuda.dnn, &one, p->wd, w16, p->yd, dy16, p->cd, algo, g_ws,
                                                 g_ws_size, &zero, p->xd, dx16));
  unmix_cuda_from_bf16(nx, dx16, dx, false);
}

void unmix_cuda_conv2d_backward_weight(const struct unmix_conv_geom *g, const float *dy, const float *x,
                                       float *dwt) {
  conv_plan *p = plan_for(g, PASS_BWD_FILTER, unmix_cuda.prec);
  const float one = 1.0f, zero = 0.0f;
  UNMIX_CUDNN_CHECK(cudnnSetConvolutionMathType(p->cd, p->math[PASS_BWD_FILTER]));
  const cudnnConvolutionBwdFilterAlgo_t algo = (cudnnConvolutionBwdFilterAlgo_t)p->algo[PASS_BWD_FILTER];
  if (p->prec != UNMIX_PREC_BF16) {
    UNMIX_CUDNN_CHECK(cudnnConvolutionBackwardFilter(unmix_cuda.dnn, &one, p->xd, x, p->yd, dy, p->cd, algo, g_ws,
                                                     g_ws_size, &one, p->wd, dwt));
    return;
  }
  const int64_t nx = (int64_t)g->n * g->h * g->w * g->c, nw = (int64_t)g->k * g->r * g->s * g->c,
                ny = (int64_t)g->n * g->p * g->q * g->k;
  uint16_t *dy16 = (uint16_t *)unmix_cuda_scratch(UNMIX_SLOT_BF16_A, sizeof(uint16_t) * (size_t)ny);
  uint16_t *x16 = (uint16_t *)unmix_cuda_scratch(UNMIX_SLOT_BF16_B, sizeof(uint16_t) * (size_t)nx);
  uint16_t *dw16 = (uint16_t *)unmix_cuda_scratch(UNMIX_SLOT_BF16_C, sizeof(uint16_t) * (size_t)nw);
  unmix_cuda_to_bf16(1, ny, ny, dy, dy16);
  unmix_cuda_to_bf16(1, nx, nx, x, x16);
  UNMIX_CUDNN_CHECK(cudnnConvolutionBackwardFilter(unmix_cuda.dnn, &one, p->xd, x16, p->yd, dy16, p->cd, algo, g_ws,
                                                   g_ws_size, &zero, p->wd, dw16));
  unmix_cuda_from_bf16(nw, dw16, dwt, true); // dw += in fp32, never rounded to bf16 itself
}
