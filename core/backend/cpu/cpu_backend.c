/* The CPU backend's op table (the reference oracle) and its memory functions. */
#include <stdlib.h>
#include <string.h>

#include "core/backend/cpu/cpu_ops.h"
#include "core/util/blas.h"

static unmix_status cpu_init(void) {
  unmix_blas_init();
  return UNMIX_OK;
}
static void cpu_shutdown(void) {}
static bool cpu_supports_op(enum unmix_op op) { return (int)op >= 0 && op < UNMIX_OP_COUNT; }
static void cpu_set_precision(enum unmix_precision p) { (void)p; }
static void cpu_set_deterministic(bool on) { (void)on; }

static void *cpu_alloc(size_t bytes) {
  void *p = NULL;
  size_t sz = (bytes + 63) / 64 * 64;
  if (posix_memalign(&p, 64, sz ? sz : 64) != 0) return NULL;
  return p;
}
static void cpu_free(void *p) { free(p); }
static void cpu_memcpy(void *dst, const void *src, size_t bytes) {
  if (bytes) memcpy(dst, src, bytes);
}
static void cpu_synchronize(void) {}

/* One scratch buffer per slot, grown on demand and kept. */
#define SCRATCH_SLOTS 4
static float *g_scratch[SCRATCH_SLOTS];
static size_t g_scratch_cap[SCRATCH_SLOTS];
float *unmix_cpu_scratch(int slot, size_t floats) {
  UNMIX_REQUIRE(slot >= 0 && slot < SCRATCH_SLOTS, "bad scratch slot %d", slot);
  if (floats > g_scratch_cap[slot]) {
    free(g_scratch[slot]);
    g_scratch[slot] = cpu_alloc(floats * sizeof(float));
    UNMIX_REQUIRE(g_scratch[slot] != NULL, "out of host memory for %zu scratch floats", floats);
    g_scratch_cap[slot] = floats;
  }
  return g_scratch[slot];
}

const struct unmix_backend unmix_backend_cpu = {
    /* .name = */ "cpu",
    /* .device = */ UNMIX_DEVICE_CPU,
    /* .init = */ cpu_init,
    /* .shutdown = */ cpu_shutdown,
    /* .supports_op = */ cpu_supports_op,
    /* .set_precision = */ cpu_set_precision,
    /* .set_deterministic = */ cpu_set_deterministic,
    /* .alloc = */ cpu_alloc,
    /* .free = */ cpu_free,
    /* .alloc_host = */ cpu_alloc,
    /* .free_host = */ cpu_free,
    /* .memcpy_h2d = */ cpu_memcpy,
    /* .memcpy_d2h = */ cpu_memcpy,
    /* .memcpy_d2d = */ cpu_memcpy,
    /* .synchronize = */ cpu_synchronize,
    /* .conv2d_forward = */ unmix_cpu_conv2d_forward,
    /* .conv2d_backward_data = */ unmix_cpu_conv2d_backward_data,
    /* .conv2d_backward_weight = */ unmix_cpu_conv2d_backward_weight,
    /* .batchnorm_forward_train = */ unmix_cpu_batchnorm_forward_train,
    /* .batchnorm_forward_eval = */ unmix_cpu_batchnorm_forward_eval,
    /* .batchnorm_backward = */ unmix_cpu_batchnorm_backward,
    /* .relu_forward = */ unmix_cpu_relu_forward,
    /* .relu_backward = */ unmix_cpu_relu_backward,
    /* .add = */ unmix_cpu_add,
    /* .add_relu_forward = */ unmix_cpu_add_relu_forward,
    /* .maxpool_forward = */ unmix_cpu_maxpool_forward,
    /* .maxpool_backward = */ unmix_cpu_maxpool_backward,
    /* .avgpool_forward = */ unmix_cpu_avgpool_forward,
    /* .avgpool_backward = */ unmix_cpu_avgpool_backward,
    /* .pad2d_forward = */ unmix_cpu_pad2d_forward,
    /* .pad2d_backward = */ unmix_cpu_pad2d_backward,
    /* .gemm = */ unmix_cpu_gemm,
    /* .linear_forward = */ unmix_cpu_linear_forward,
    /* .linear_backward = */ unmix_cpu_linear_backward,
    /* .l2norm_forward = */ unmix_cpu_l2norm_forward,
    /* .l2norm_backward = */ unmix_cpu_l2norm_backward,
    /* .softmax_forward = */ unmix_cpu_softmax_forward,
    /* .softmax_backward = */ unmix_cpu_softmax_backward,
    /* .log_softmax_forward = */ unmix_cpu_log_softmax_forward,
    /* .log_softmax_backward = */ unmix_cpu_log_softmax_backward,
    /* .cross_entropy_forward = */ unmix_cpu_cross_entropy_forward,
    /* .cross_entropy_backward = */ unmix_cpu_cross_entropy_backward,
    /* .soft_cross_entropy_forward = */ unmix_cpu_soft_cross_entropy_forward,
    /* .soft_cross_entropy_backward = */ unmix_cpu_soft_cross_entropy_backward,
    /* .flip_batch = */ unmix_cpu_flip_batch,
    /* .gather_rows = */ unmix_cpu_gather_rows,
    /* .scatter_rows = */ unmix_cpu_scatter_rows,
    /* .copy = */ unmix_cpu_copy,
    /* .fill = */ unmix_cpu_fill,
    /* .scale = */ unmix_cpu_scale,
    /* .axpy = */ unmix_cpu_axpy,
    /* .axpby = */ unmix_cpu_axpby,
    /* .mix_global = */ unmix_cpu_mix_global,
    /* .mix_region = */ unmix_cpu_mix_region,
    /* .sum = */ unmix_cpu_sum,
    /* .sumsq_segments = */ unmix_cpu_sumsq_segments,
    /* .row_sum = */ unmix_cpu_row_sum,
    /* .col_sum = */ unmix_cpu_col_sum,
    /* .scale_rows = */ unmix_cpu_scale_rows,
    /* .scale_cols = */ unmix_cpu_scale_cols,
    /* .exp_scaled = */ unmix_cpu_exp_scaled,
    /* .transpose = */ unmix_cpu_transpose,
    /* .row_dot = */ unmix_cpu_row_dot,
    /* .axpy_rows = */ unmix_cpu_axpy_rows,
    /* .sgd_step = */ unmix_cpu_sgd_step,
    /* .ema = */ unmix_cpu_ema,
    /* .topk = */ unmix_cpu_topk,
    /* .nonfinite_count = */ unmix_cpu_nonfinite_count,
};
