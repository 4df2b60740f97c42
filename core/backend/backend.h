/* The backend contract: ONE table of function pointers holding every op's forward and
 * backward, plus memory management and supports_op. `cpu` implements all of it and is
 * the reference oracle; `cuda` implements the same table. Nothing above this layer
 * mentions CUDA: callers pass device pointers obtained from `alloc` and never touch the
 * memory of a non-host backend directly (use memcpy_h2d/d2h).
 *
 * Conventions (all ops):
 *  - float32 row-major data; activations are contiguous NHWC (N, H, W, C); a 2-D
 *    activation (N, D) is N rows of D. Conv weights are OHWI = (K, R, S, C), linear weights
 *    (out, in) as in PyTorch.
 *  - ACCUMULATION RULE: parameter gradients (dw, dgamma, dbeta, db) are ACCUMULATED (+=);
 *    input gradients (dx) are OVERWRITTEN (=). A caller that needs dx accumulated adds it
 *    itself (`add`/`axpy`).
 *  - Pointers named x/y may alias only where a comment says so.
 *  - Scalars that a GPU would produce (losses, norms) are written to device memory; the
 *    caller copies them back when it needs them on the host.
 *  - Programmer errors (bad shapes) abort via UNMIX_REQUIRE in the dispatching layer; ops
 *    themselves assume valid arguments.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/util/error.h"

enum unmix_device { UNMIX_DEVICE_CPU = 0, UNMIX_DEVICE_CUDA = 1 };

/* GPU precision modes (CPU always computes in fp32). */
enum unmix_precision { UNMIX_PREC_FP32 = 0, UNMIX_PREC_TF32 = 1, UNMIX_PREC_BF16 = 2 };

/* Every op of the table, for supports_op and for error messages. */
enum unmix_op {
  UNMIX_OP_CONV2D_FORWARD = 0,
  UNMIX_OP_CONV2D_BACKWARD_DATA,
  UNMIX_OP_CONV2D_BACKWARD_WEIGHT,
  UNMIX_OP_BATCHNORM_FORWARD_TRAIN,
  UNMIX_OP_BATCHNORM_FORWARD_EVAL,
  UNMIX_OP_BATCHNORM_BACKWARD,
  UNMIX_OP_RELU_FORWARD,
  UNMIX_OP_RELU_BACKWARD,
  UNMIX_OP_ADD,
  UNMIX_OP_ADD_RELU_FORWARD,
  UNMIX_OP_MAXPOOL_FORWARD,
  UNMIX_OP_MAXPOOL_BACKWARD,
  UNMIX_OP_AVGPOOL_FORWARD,
  UNMIX_OP_AVGPOOL_BACKWARD,
  UNMIX_OP_PAD2D_FORWARD,
  UNMIX_OP_PAD2D_BACKWARD,
  UNMIX_OP_GEMM,
  UNMIX_OP_LINEAR_FORWARD,
  UNMIX_OP_LINEAR_BACKWARD,
  UNMIX_OP_L2NORM_FORWARD,
  UNMIX_OP_L2NORM_BACKWARD,
  UNMIX_OP_SOFTMAX_FORWARD,
  UNMIX_OP_SOFTMAX_BACKWARD,
  UNMIX_OP_LOG_SOFTMAX_FORWARD,
  UNMIX_OP_LOG_SOFTMAX_BACKWARD,
  UNMIX_OP_CROSS_ENTROPY_FORWARD,
  UNMIX_OP_CROSS_ENTROPY_BACKWARD,
  UNMIX_OP_SOFT_CROSS_ENTROPY_FORWARD,
  UNMIX_OP_SOFT_CROSS_ENTROPY_BACKWARD,
  UNMIX_OP_FLIP_BATCH,
  UNMIX_OP_GATHER_ROWS,
  UNMIX_OP_SCATTER_ROWS,
  UNMIX_OP_COPY,
  UNMIX_OP_FILL,
  UNMIX_OP_SCALE,
  UNMIX_OP_AXPY,
  UNMIX_OP_AXPBY,
  UNMIX_OP_MIX_GLOBAL,
  UNMIX_OP_MIX_REGION,
  UNMIX_OP_SUM,
  UNMIX_OP_SUMSQ_SEGMENTS,
  UNMIX_OP_ROW_SUM,
  UNMIX_OP_COL_SUM,
  UNMIX_OP_SCALE_ROWS,
  UNMIX_OP_SCALE_COLS,
  UNMIX_OP_EXP_SCALED,
  UNMIX_OP_TRANSPOSE,
  UNMIX_OP_ROW_DOT,
  UNMIX_OP_AXPY_ROWS,
  UNMIX_OP_SGD_STEP,
  UNMIX_OP_EMA,
  UNMIX_OP_TOPK,
  UNMIX_OP_NONFINITE_COUNT,
  UNMIX_OP_COUNT
};
const char *unmix_op_name(enum unmix_op op);

/* Convolution geometry: input (n, h, w, c) NHWC, filters (k, r, s, c) OHWI, output
 * (n, p, q, k) with p = (h + 2*pad - r)/stride + 1, q likewise. No bias, no dilation,
 * no groups. Fill with unmix_conv_geom_init so p and q are consistent. */
struct unmix_conv_geom {
  int n, h, w, c;
  int k, r, s;
  int stride, pad;
  int p, q;
};
void unmix_conv_geom_init(struct unmix_conv_geom *g, int n, int h, int w, int c, int k, int r, int s,
                          int stride, int pad);

/* Batch-norm geometry: x is n samples of hw positions of c channels (BN1d: hw = 1).
 * splits = S > 1 is SplitBatchNorm (SPEC §2.4): sample i belongs to split i mod S, each
 * split normalised with its own statistics; n must be a multiple of S. */
struct unmix_bn_geom {
  int n, hw, c, splits;
};

/* Pooling geometry (max-pool k x k, stride, zero... -inf padding): input (n,h,w,c),
 * output (n,p,q,c). */
struct unmix_pool_geom {
  int n, h, w, c;
  int k, stride, pad;
  int p, q;
};
void unmix_pool_geom_init(struct unmix_pool_geom *g, int n, int h, int w, int c, int k, int stride, int pad);

struct unmix_backend {
  const char *name;             /* "cpu", "cuda" */
  enum unmix_device device;

  /* ---- lifecycle and memory ---------------------------------------------------------- */
  unmix_status (*init)(void);   /* called once by the registry before first use */
  void (*shutdown)(void);
  bool (*supports_op)(enum unmix_op op);
  void (*set_precision)(enum unmix_precision p); /* GPU math mode; no-op on CPU */
  /* Only deterministic algorithms (cuDNN); the CPU backend always is (fixed thread count). */
  void (*set_deterministic)(bool on);
  void *(*alloc)(size_t bytes); /* device memory, 64-byte aligned; NULL on failure */
  void (*free)(void *p);
  void *(*alloc_host)(size_t bytes); /* page-locked host memory where the device has it */
  void (*free_host)(void *p);
  void (*memcpy_h2d)(void *dst, const void *src, size_t bytes);
  void (*memcpy_d2h)(void *dst, const void *src, size_t bytes);
  void (*memcpy_d2d)(void *dst, const void *src, size_t bytes);
  void (*synchronize)(void);

  /* ---- convolution (NHWC x OHWI -> NHWC) -------------------------------------------- */
  void (*conv2d_forward)(const struct unmix_conv_geom *g,
                         const float *x,   /* (n, h, w, c) */
                         const float *wt,  /* (k, r, s, c) */
                         float *y);        /* (n, p, q, k) = */
  void (*conv2d_backward_data)(const struct unmix_conv_geom *g,
                               const float *dy,  /* (n, p, q, k) */
                               const float *wt,  /* (k, r, s, c) */
                               float *dx);       /* (n, h, w, c) = */
  void (*conv2d_backward_weight)(const struct unmix_conv_geom *g,
                                 const float *dy,  /* (n, p, q, k) */
                                 const float *x,   /* (n, h, w, c) */
                                 float *dwt);      /* (k, r, s, c) += */

  /* ---- batch norm (plain and split) --------------------------------------------------- */
  /* Train mode: per split s and channel c, mean and biased variance over (n/S)*hw values;
   * y = gamma*(x-mean)*invstd + beta with invstd = 1/sqrt(var + eps). save_mean/save_invstd
   * are (S, c) for the backward pass. If running_mean is non-NULL the running stats are
   * updated as PyTorch does with momentum m: rm = (1-m) rm + m * mean_s(mean_s),
   * rv = (1-m) rv + m * mean_s(unbiased var_s)  (count-1 denominator). */
  void (*batchnorm_forward_train)(const struct unmix_bn_geom *g,
                                  const float *x,      /* (n, hw, c) */
                                  const float *gamma,  /* (c) */
                                  const float *beta,   /* (c) */
                                  float *y,            /* (n, hw, c) =, may alias x */
                                  float *save_mean,    /* (S, c) = */
                                  float *save_invstd,  /* (S, c) = */
                                  float *running_mean, /* (c) updated, or NULL */
                                  float *running_var,  /* (c) updated, or NULL */
                                  float momentum, float eps);
  /* Eval mode: y = gamma*(x-rm)/sqrt(rv+eps) + beta (splits ignored). y may alias x. */
  void (*batchnorm_forward_eval)(const struct unmix_bn_geom *g, const float *x, const float *gamma,
                                 const float *beta, const float *running_mean, const float *running_var,
                                 float eps, float *y);
  void (*batchnorm_backward)(const struct unmix_bn_geom *g,
                             const float *dy,          /* (n, hw, c) */
                             const float *x,           /* (n, hw, c) forward input */
                             const float *gamma,       /* (c) */
                             const float *save_mean,   /* (S, c) */
                             const float *save_invstd, /* (S, c) */
                             float *dx,                /* (n, hw, c) =, may alias dy */
                             float *dgamma,            /* (c) += */
                             float *dbeta);            /* (c) += */

  /* ---- element-wise ------------------------------------------------------------------ */
  void (*relu_forward)(int64_t n, const float *x, float *y);                  /* y may alias x */
  void (*relu_backward)(int64_t n, const float *dy, const float *y, float *dx); /* dx = dy*(y>0); may alias dy */
  void (*add)(int64_t n, const float *a, const float *b, float *y);          /* y = a + b; may alias a or b */
  void (*add_relu_forward)(int64_t n, const float *a, const float *b, float *y); /* y = max(a+b, 0) */

  /* ---- pooling and padding ------------------------------------------------------------ */
  void (*maxpool_forward)(const struct unmix_pool_geom *g, const float *x, /* (n,h,w,c) */
                          float *y,           /* (n,p,q,c) = */
                          int32_t *argmax);   /* (n,p,q,c) flat index into x's (h*w) plane */
  void (*maxpool_backward)(const struct unmix_pool_geom *g, const float *dy, const int32_t *argmax,
                           float *dx);        /* (n,h,w,c) = */
  void (*avgpool_forward)(int n, int hw, int c, const float *x, /* (n,hw,c) */
                          float *y);                            /* (n,c) = */
  void (*avgpool_backward)(int n, int hw, int c, const float *dy, /* (n,c) */
                           float *dx);                            /* (n,hw,c) = */
  /* Constant padding by `pad` on each side of H and W (SwAV's ConstantPad2d). */
  void (*pad2d_forward)(int n, int h, int w, int c, int pad, float value, const float *x, /* (n,h,w,c) */
                        float *y);                                /* (n,h+2p,w+2p,c) = */
  void (*pad2d_backward)(int n, int h, int w, int c, int pad, const float *dy, /* (n,h+2p,w+2p,c) */
                         float *dx);                                           /* (n,h,w,c) = */

  /* ---- dense ------------------------------------------------------------------------- */
  /* Row-major C(m,n) = alpha * op(A)(m,k) @ op(B)(k,n) + beta * C, op = transpose if trans_*. */
  void (*gemm)(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float *a, int lda,
               const float *b, int ldb, float beta, float *c, int ldc);
  void (*linear_forward)(int n, int in, int out,
                         const float *x,    /* (n, in) */
                         const float *wt,   /* (out, in) */
                         const float *bias, /* (out) or NULL */
                         float *y);         /* (n, out) = */
  void (*linear_backward)(int n, int in, int out,
                          const float *dy,  /* (n, out) */
                          const float *x,   /* (n, in) */
                          const float *wt,  /* (out, in) */
                          float *dx,        /* (n, in) =, or NULL when not needed */
                          float *dwt,       /* (out, in) +=, or NULL (frozen) */
                          float *dbias);    /* (out) +=, or NULL */

  /* ---- row-wise normalisation and losses --------------------------------------------- */
  /* y = x / max(||x||_2, eps) per row; norms (n) saved for backward. */
  void (*l2norm_forward)(int n, int d, const float *x, float *y, float *norms, float eps);
  void (*l2norm_backward)(int n, int d, const float *dy, const float *x, const float *norms, float eps,
                          float *dx); /* = */
  /* softmax / log-softmax of (scale * x) per row. */
  void (*softmax_forward)(int n, int d, float scale, const float *x, float *y);
  void (*softmax_backward)(int n, int d, float scale, const float *dy, const float *y, float *dx); /* = */
  void (*log_softmax_forward)(int n, int d, float scale, const float *x, float *y);
  void (*log_softmax_backward)(int n, int d, float scale, const float *dy, const float *y, float *dx); /* = */
  /* Cross-entropy of softmax(scale * logits) against integer labels, mean over the n rows:
   * loss[0] = -(1/n) sum_i log softmax(scale*z_i)[label_i]. probs (n,d) saved for backward.
   * If correct_top1/top5 are non-NULL they receive the number of rows (as float) whose
   * label is the arg-max / within the 5 largest logits. */
  void (*cross_entropy_forward)(int n, int d, float scale, const float *logits, const int32_t *labels,
                                float *probs, float *loss, float *correct_top1, float *correct_top5);
  /* dlogits = dloss * scale/n * (probs - onehot(label)). */
  void (*cross_entropy_backward)(int n, int d, float scale, float dloss, const float *probs,
                                 const int32_t *labels, float *dlogits); /* = */
  /* Soft-target cross-entropy: loss[0] = -(1/n) sum_i sum_j q_ij log softmax(scale*z_i)_j.
   * logprobs (n,d) saved for backward. */
  void (*soft_cross_entropy_forward)(int n, int d, float scale, const float *logits, const float *targets,
                                     float *logprobs, float *loss);
  /* dlogits = dloss * scale/n * (softmax * sum_j q_ij - q). */
  void (*soft_cross_entropy_backward)(int n, int d, float scale, float dloss, const float *logprobs,
                                      const float *targets, float *dlogits); /* = */

  /* ---- batch-axis and BLAS-1 ops ------------------------------------------------------ */
  void (*flip_batch)(int n, int64_t row, const float *x, float *y);          /* y[i] = x[n-1-i]; y != x */
  void (*gather_rows)(int n, int64_t row, const int32_t *idx, const float *x, float *y); /* y[i] = x[idx[i]] */
  void (*scatter_rows)(int n, int64_t row, const int32_t *idx, const float *x, float *y); /* y[idx[i]] = x[i] */
  void (*copy)(int64_t n, const float *x, float *y);
  void (*fill)(int64_t n, float value, float *y);
  void (*scale)(int64_t n, float a, const float *x, float *y);               /* y = a*x; may alias */
  void (*axpy)(int64_t n, float a, const float *x, float *y);                /* y += a*x */
  void (*axpby)(int64_t n, float a, const float *x, float b, float *y);      /* y = a*x + b*y */

  /* ---- Un-Mix ------------------------------------------------------------------------ */
  /* Global mixture: y[i] = lam*x[i] + (1-lam)*x[n-1-i] (SPEC §1.2). y != x. */
  void (*mix_global)(int n, int64_t row, float lam, const float *x, float *y);
  /* Region mixture (SPEC §1.3): y = x, then rows [r0,r1) x cols [c0,c1) of sample i are
   * taken from sample n-1-i. x is (n,h,w,c). y != x. */
  void (*mix_region)(int n, int h, int w, int c, int r0, int r1, int c0, int c1, const float *x, float *y);

  /* ---- reductions (results in device memory) ------------------------------------------ */
  void (*sum)(int64_t n, const float *x, float *out);              /* out[0] = sum x (fp64 accumulation on CPU) */
  /* out[s] = sum of squares of x[off[s] .. off[s+1]) for s < nseg (LARC norms). off is host memory. */
  void (*sumsq_segments)(int nseg, const int64_t *off, const float *x, float *out);
  void (*row_sum)(int n, int d, const float *x, float *out);       /* out[i] = sum_j x[i,j] */
  void (*col_sum)(int n, int d, const float *x, float *out);       /* out[j] = sum_i x[i,j] */
  void (*scale_rows)(int n, int d, const float *s, float *x);      /* x[i,j] *= s[i] */
  void (*scale_cols)(int n, int d, const float *s, float *x);      /* x[i,j] *= s[j] */
  void (*exp_scaled)(int64_t n, float a, float b, const float *x, float *y); /* y = exp(a*x - b) */
  void (*transpose)(int n, int d, const float *x, float *y);       /* y (d,n) = x (n,d)^T */
  /* out[i*out_stride] = sum_j a[i,j]*b[i,j] (MoCo positive logits into a logits matrix). */
  void (*row_dot)(int n, int d, const float *a, const float *b, float *out, int out_stride);
  /* y[i,:] += s[i*s_stride] * x[i,:] (the adjoint of row_dot). */
  void (*axpy_rows)(int n, int d, const float *s, int s_stride, const float *x, float *y);

  /* ---- optimiser updates over flat buffers -------------------------------------------- */
  /* PyTorch SGD (dampening 0, no nesterov) on n elements: d = gscale*g + wd*p;
   * buf = momentum*buf + d; p -= lr*buf. Momentum buffers start at zero, which makes the
   * first step buf = d bit-for-bit as PyTorch's clone does. Without segments gscale = 1 and
   * wd is the argument. With nseg > 0 (LARC), element i of segment s (host offsets off[s] ..
   * off[s+1], off[0] = 0, off[nseg] = n) uses the host values gscale_seg[s] and wd_seg[s]. */
  void (*sgd_step)(int64_t n, float *p, const float *g, float *buf, float lr, float momentum, float wd,
                   int nseg, const int64_t *off, const float *gscale_seg, const float *wd_seg);
  /* key = m*key + (1-m)*query (MoCo momentum encoder). */
  void (*ema)(int64_t n, float m, const float *query, float *key);

  /* ---- selection and checks ------------------------------------------------------------ */
  /* Per row: the k largest values (descending; ties by lower index) and their indices. */
  void (*topk)(int n, int d, int k, const float *x, float *vals, int32_t *idx);
  /* out[0] = number of NaN/Inf entries (as float). */
  void (*nonfinite_count)(int64_t n, const float *x, float *out);
};

/* ---- registry (core/backend/registry.c: the only file that knows what was compiled in) -- */
/* Looks a backend up by name ("cpu", "cuda") and initialises it on first use. Unknown or
 * not-compiled-in names, or a device that is absent, give UNMIX_ERR_UNSUPPORTED with a
 * message saying why. */
unmix_status unmix_backend_get(const char *name, const struct unmix_backend **out);
/* "auto" -> "cuda" when a GPU is usable, else "cpu" (other names pass through);
 * unmix_backend_get accepts "auto" too. unmix_backend_auto_reason() says which and why
 * after the last resolution of "auto" ("" before). */
const char *unmix_backend_resolve(const char *name);
const char *unmix_backend_auto_reason(void);
/* Names of the compiled-in backends, NULL-terminated. */
const char *const *unmix_backend_names(void);
/* True when the named backend is compiled in and its device is usable here. */
bool unmix_backend_available(const char *name);
