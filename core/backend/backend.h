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

/* Precision modes of the conv and dense families: the GPU has all three; the CPU computes
 * bf16 on bf16 units (AVX512-BF16/AMX through oneDNN) and fp32 otherwise (no tf32). */
enum unmix_precision { UNMIX_PREC_FP32 = 0, UNMIX_PREC_TF32 = 1, UNMIX_PREC_BF16 = 2 };

/* Every op of the table, generated from core/backend/ops.def (the one list of ops). */
enum unmix_op {
#define UNMIX_OP(NAME, name, family, params) UNMIX_OP_##NAME,
#include "core/backend/ops.def"
#undef UNMIX_OP
  UNMIX_OP_COUNT
};
const char *unmix_op_name(enum unmix_op op);
/* The op's family: the stem of the files that hold its bodies (cpu/<family>.c and
 * cuda/<family>.cu). */
const char *unmix_op_family(enum unmix_op op);
/* True for the ops whose arithmetic the GPU precision mode changes (the conv and dense
 * families: tf32/bf16 GEMMs and convolutions); every other op computes in fp32. */
bool unmix_op_uses_precision(enum unmix_op op);

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
 * splits = S > 1 is SplitBatchNorm (docs/FIDELITY.md §2.4): sample i belongs to split
 * i mod S, each split normalised with its own statistics; n must be a multiple of S. */
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

/* What supports_op is asked about one call. Fields that do not apply to the op are
 * ignored; a zero field means "not specified" (prec 0 is fp32). */
struct unmix_op_query {
  enum unmix_precision prec;          /* the precision the call would run in */
  const struct unmix_conv_geom *conv; /* conv2d_*: the geometry, or NULL */
  int64_t n, d, k;                    /* row ops: rows, row length; topk: k */
};

struct unmix_backend {
  const char *name;             /* "cpu", "cuda" */
  enum unmix_device device;

  /* ---- lifecycle and memory ---------------------------------------------------------- */
  unmix_status (*init)(void);   /* called once by the registry before first use */
  void (*shutdown)(void);
  /* Whether this backend can run `op` for the call described by q (NULL: can it run the op
   * at all, in fp32). Each backend answers from its table (a NULL field is unsupported)
   * plus its explicit exceptions (a precision it does not compute in, a shape its kernels
   * refuse); see unmix_backend_has_op. */
  bool (*supports_op)(enum unmix_op op, const struct unmix_op_query *q);
  void (*set_precision)(enum unmix_precision p); /* conv/dense math mode */
  /* Deterministic mode: convolutions use only cuDNN algorithms that cuDNN reports as
   * deterministic, chosen by cuDNN's heuristics (not by timing, which can pick a different
   * algorithm from one run to the next). Every other op is deterministic in both modes
   * (fixed-order reductions, no floating-point atomics); the CPU backend always is (fixed
   * thread count). Off by default; can be switched at any time. */
  void (*set_deterministic)(bool on);
  /* Which kernels run here in the current precision mode, one or more lines for `unmix
   * info` and logs ("cpu bf16: oneDNN 2.6.3, ISA ..."), or NULL when the backend has no
   * such description. Optional (a NULL field says nothing). */
  const char *(*describe_kernels)(void);
  void *(*alloc)(size_t bytes); /* device memory, 64-byte aligned; NULL on failure */
  void (*free)(void *p);
  void *(*alloc_host)(size_t bytes); /* page-locked host memory where the device has it */
  void (*free_host)(void *p);
  /* src may be reused or freed when this returns; the device sees the bytes before any op
   * issued after it (the copy itself may still be in flight). */
  void (*memcpy_h2d)(void *dst, const void *src, size_t bytes);
  void (*memcpy_d2h)(void *dst, const void *src, size_t bytes); /* dst is filled on return */
  void (*memcpy_d2d)(void *dst, const void *src, size_t bytes);
  void (*synchronize)(void);
  /* Weight pinning, for backends whose convolutions read the fp32 weights in another type or
   * layout (CUDA in bf16; the CPU's oneDNN kernels, in bf16 and blocked layouts):
   * weights_pin(base, n) promises that the n floats at base (a parameter store) stay
   * unchanged until base is pinned again, unpinned, or freed; the backend may convert them
   * once and reuse the copy for every conv whose filter lies inside.
   * The graph pins a model's parameters at the start of each forward pass (the weights are
   * read-only from there to the end of its backward pass) and unpins them when the pass's
   * context is reset. A backend that needs none leaves both NULL. */
  void (*weights_pin)(const float *base, int64_t n);
  void (*weights_unpin)(const float *base);

  /* ---- the ops: one function-pointer field per row of ops.def, where each op's
   * arguments, shapes and accumulation rule are written. --------------------------------- */
#define UNMIX_OP(NAME, name, family, params) void(*name) params;
#include "core/backend/ops.def"
#undef UNMIX_OP
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
/* True when the backend's table has a body for `op` (the part of supports_op that every
 * backend shares; the exceptions are each backend's own). */
bool unmix_backend_has_op(const struct unmix_backend *be, enum unmix_op op);
/* Names of the compiled-in backends, NULL-terminated. */
const char *const *unmix_backend_names(void);
/* True when the named backend is compiled in and its device is usable here. */
bool unmix_backend_available(const char *name);
