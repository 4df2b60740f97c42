/* Geometry helpers and op names shared by every backend. */
#include "core/backend/backend.h"

void unmix_conv_geom_init(struct unmix_conv_geom *g, int n, int h, int w, int c, int k, int r, int s,
                          int stride, int pad) {
  UNMIX_REQUIRE(n > 0 && h > 0 && w > 0 && c > 0 && k > 0 && r > 0 && s > 0 && stride > 0 && pad >= 0,
                "bad conv geometry n=%d h=%d w=%d c=%d k=%d r=%d s=%d stride=%d pad=%d", n, h, w, c, k, r, s,
                stride, pad);
  g->n = n; g->h = h; g->w = w; g->c = c;
  g->k = k; g->r = r; g->s = s;
  g->stride = stride; g->pad = pad;
  g->p = (h + 2 * pad - r) / stride + 1;
  g->q = (w + 2 * pad - s) / stride + 1;
  UNMIX_REQUIRE(g->p > 0 && g->q > 0, "conv output would be empty (%dx%d input, %dx%d kernel, pad %d)", h, w, r,
                s, pad);
}

void unmix_pool_geom_init(struct unmix_pool_geom *g, int n, int h, int w, int c, int k, int stride, int pad) {
  UNMIX_REQUIRE(n > 0 && h > 0 && w > 0 && c > 0 && k > 0 && stride > 0 && pad >= 0 && 2 * pad <= k,
                "bad pool geometry");
  g->n = n; g->h = h; g->w = w; g->c = c;
  g->k = k; g->stride = stride; g->pad = pad;
  g->p = (h + 2 * pad - k) / stride + 1;
  g->q = (w + 2 * pad - k) / stride + 1;
}

const char *unmix_op_name(enum unmix_op op) {
  static const char *names[UNMIX_OP_COUNT] = {
      [UNMIX_OP_CONV2D_FORWARD] = "conv2d_forward",
      [UNMIX_OP_CONV2D_BACKWARD_DATA] = "conv2d_backward_data",
      [UNMIX_OP_CONV2D_BACKWARD_WEIGHT] = "conv2d_backward_weight",
      [UNMIX_OP_BATCHNORM_FORWARD_TRAIN] = "batchnorm_forward_train",
      [UNMIX_OP_BATCHNORM_FORWARD_EVAL] = "batchnorm_forward_eval",
      [UNMIX_OP_BATCHNORM_BACKWARD] = "batchnorm_backward",
      [UNMIX_OP_RELU_FORWARD] = "relu_forward",
      [UNMIX_OP_RELU_BACKWARD] = "relu_backward",
      [UNMIX_OP_ADD] = "add",
      [UNMIX_OP_ADD_RELU_FORWARD] = "add_relu_forward",
      [UNMIX_OP_MAXPOOL_FORWARD] = "maxpool_forward",
      [UNMIX_OP_MAXPOOL_BACKWARD] = "maxpool_backward",
      [UNMIX_OP_AVGPOOL_FORWARD] = "avgpool_forward",
      [UNMIX_OP_AVGPOOL_BACKWARD] = "avgpool_backward",
      [UNMIX_OP_PAD2D_FORWARD] = "pad2d_forward",
      [UNMIX_OP_PAD2D_BACKWARD] = "pad2d_backward",
      [UNMIX_OP_GEMM] = "gemm",
      [UNMIX_OP_LINEAR_FORWARD] = "linear_forward",
      [UNMIX_OP_LINEAR_BACKWARD] = "linear_backward",
      [UNMIX_OP_L2NORM_FORWARD] = "l2norm_forward",
      [UNMIX_OP_L2NORM_BACKWARD] = "l2norm_backward",
      [UNMIX_OP_SOFTMAX_FORWARD] = "softmax_forward",
      [UNMIX_OP_SOFTMAX_BACKWARD] = "softmax_backward",
      [UNMIX_OP_LOG_SOFTMAX_FORWARD] = "log_softmax_forward",
      [UNMIX_OP_LOG_SOFTMAX_BACKWARD] = "log_softmax_backward",
      [UNMIX_OP_CROSS_ENTROPY_FORWARD] = "cross_entropy_forward",
      [UNMIX_OP_CROSS_ENTROPY_BACKWARD] = "cross_entropy_backward",
      [UNMIX_OP_SOFT_CROSS_ENTROPY_FORWARD] = "soft_cross_entropy_forward",
      [UNMIX_OP_SOFT_CROSS_ENTROPY_BACKWARD] = "soft_cross_entropy_backward",
      [UNMIX_OP_FLIP_BATCH] = "flip_batch",
      [UNMIX_OP_GATHER_ROWS] = "gather_rows",
      [UNMIX_OP_SCATTER_ROWS] = "scatter_rows",
      [UNMIX_OP_COPY] = "copy",
      [UNMIX_OP_FILL] = "fill",
      [UNMIX_OP_SCALE] = "scale",
      [UNMIX_OP_AXPY] = "axpy",
      [UNMIX_OP_AXPBY] = "axpby",
      [UNMIX_OP_MIX_GLOBAL] = "mix_global",
      [UNMIX_OP_MIX_REGION] = "mix_region",
      [UNMIX_OP_SUM] = "sum",
      [UNMIX_OP_SUMSQ_SEGMENTS] = "sumsq_segments",
      [UNMIX_OP_ROW_SUM] = "row_sum",
      [UNMIX_OP_COL_SUM] = "col_sum",
      [UNMIX_OP_SCALE_ROWS] = "scale_rows",
      [UNMIX_OP_SCALE_COLS] = "scale_cols",
      [UNMIX_OP_EXP_SCALED] = "exp_scaled",
      [UNMIX_OP_TRANSPOSE] = "transpose",
      [UNMIX_OP_ROW_DOT] = "row_dot",
      [UNMIX_OP_AXPY_ROWS] = "axpy_rows",
      [UNMIX_OP_SGD_STEP] = "sgd_step",
      [UNMIX_OP_EMA] = "ema",
      [UNMIX_OP_TOPK] = "topk",
      [UNMIX_OP_NONFINITE_COUNT] = "nonfinite_count",
  };
  if ((int)op < 0 || op >= UNMIX_OP_COUNT || !names[op]) return "unknown_op";
  return names[op];
}
