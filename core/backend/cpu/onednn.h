/* The CPU backend's library kernels: convolutions and GEMMs through oneDNN (when the build
 * found it), in bf16 on the CPU's bf16 units (AVX512-BF16, AMX) with fp32 accumulation, or
 * in fp32. Internal to core/backend/cpu; the op bodies in conv.c/dense.c call in here. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/backend/backend.h"

enum unmix_dnn_pass { UNMIX_DNN_FWD = 0, UNMIX_DNN_BWD_DATA = 1, UNMIX_DNN_BWD_WEIGHT = 2 };
/* F32: fp32 direct convolution; BF16: bf16 operands, fp32 accumulation; WINO: fp32 Winograd
 * F(4x4, 3x3) (forward and backward-data of 3x3 stride-1 convolutions only: its backward-
 * weights kernel crashes in oneDNN 2.6; the activations are reordered between our NHWC and
 * the kernel's blocked layout at each call). */
enum unmix_dnn_type { UNMIX_DNN_F32 = 0, UNMIX_DNN_BF16 = 1, UNMIX_DNN_WINO = 2 };

/* True when oneDNN was compiled in. */
bool unmix_dnn_compiled(void);
/* True when oneDNN is compiled in and the ISA it dispatches to has bf16 instructions
 * (AVX512-BF16 or AMX-BF16); false also when ONEDNN_MAX_CPU_ISA caps it below them. */
bool unmix_dnn_bf16_units(void);
/* One line: "oneDNN 2.6.3 (git ...), ISA avx512_core_amx (AMX-BF16 + AVX512-BF16)", or why
 * there is none ("not compiled in: ..."). */
const char *unmix_dnn_describe(void);

/* The implementations oneDNN picks in type t for a sample of ResNet shapes (a 3x3 and a 1x1
 * stride-2 conv's three passes, a 128x512x2048 matmul; for WINO the 3x3 conv's forward and
 * backward-data), as one line in a static buffer: what `unmix info` shows; "" without
 * oneDNN. */
const char *unmix_dnn_sample_impls(enum unmix_dnn_type t);

/* The three convolution passes with the op contract of ops.def (out: y =, dx =, dwt +=):
 *   FWD:         a = x,  b = wt, out = y
 *   BWD_DATA:    a = dy, b = wt, out = dx
 *   BWD_WEIGHT:  a = dy, b = x,  out = dwt
 * In bf16 the fp32 inputs are rounded to bf16 (nearest even) at the op and the products are
 * accumulated in fp32. Returns false, touching nothing, when oneDNN has no kernel for this
 * geometry other than its slow reference loop (the caller then runs its own fp32 path). */
bool unmix_dnn_conv(enum unmix_dnn_pass pass, enum unmix_dnn_type t, const struct unmix_conv_geom *g, const float *a,
                    const float *b, float *out);
/* Whether unmix_dnn_conv would run (builds and caches the primitive); the implementation
 * name oneDNN chose ("brg:avx512_core_amx", ...) into impl when non-NULL. */
bool unmix_dnn_conv_ok(enum unmix_dnn_pass pass, enum unmix_dnn_type t, const struct unmix_conv_geom *g,
                       const char **impl);
/* Row-major C = alpha*op(A) op(B) + beta*C (the gemm op's contract) with A and B rounded to
 * bf16 and fp32 accumulation. Returns false when oneDNN cannot run it. */
bool unmix_dnn_gemm_bf16(bool ta, bool tb, int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                         int ldb, float beta, float *c, int ldc);

/* Weight pinning (backend.h, weights_pin): while a parameter store is pinned, each filter
 * inside it is reordered (and in bf16 rounded) into a conv pass's weight layout once and the
 * copy reused by every later forward / backward-data call on that filter, instead of one
 * reorder per call. A new pin of the store, an unpin or a free drops its copies. Pinning off
 * (unmix_dnn_weight_pinning(false)) reorders at every call, as before pinning existed; the
 * stats count conv passes that read a pinned copy and reorders made for one since start. */
void unmix_dnn_weights_pin(const float *base, int64_t n);
void unmix_dnn_weights_unpin(const float *base);
void unmix_dnn_weights_forget(const float *base); /* the store is being freed */
void unmix_dnn_weight_pinning(bool on);
void unmix_dnn_weight_pin_stats(long *hits, long *reorders);

/* Round-to-nearest-even fp32 -> bf16 -> fp32 of n values (x and y may alias): what a bf16
 * kernel sees of its inputs; the tests' way to build an oracle with the same rounding. */
void unmix_dnn_round_bf16(size_t n, const float *x, float *y);
