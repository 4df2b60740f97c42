/* Internal declarations of the CPU backend's ops (see backend.h for each op's contract).
 * Every op is multithreaded with OpenMP; GEMM-shaped work goes to OpenBLAS SGEMM. */
#pragma once
#include "core/backend/backend.h"

/* Scratch memory reused across calls (ops run on one caller thread at a time). */
float *unmix_cpu_scratch(int slot, size_t floats);

void unmix_cpu_conv2d_forward(const struct unmix_conv_geom *g, const float *x, const float *wt, float *y);
void unmix_cpu_conv2d_backward_data(const struct unmix_conv_geom *g, const float *dy, const float *wt, float *dx);
void unmix_cpu_conv2d_backward_weight(const struct unmix_conv_geom *g, const float *dy, const float *x, float *dwt);

void unmix_cpu_batchnorm_forward_train(const struct unmix_bn_geom *g, const float *x, const float *gamma,
                                       const float *beta, float *y, float *save_mean, float *save_invstd,
                                       float *running_mean, float *running_var, float momentum, float eps);
void unmix_cpu_batchnorm_forward_eval(const struct unmix_bn_geom *g, const float *x, const float *gamma,
                                      const float *beta, const float *running_mean, const float *running_var,
                                      float eps, float *y);
void unmix_cpu_batchnorm_backward(const struct unmix_bn_geom *g, const float *dy, const float *x,
                                  const float *gamma, const float *save_mean, const float *save_invstd, float *dx,
                                  float *dgamma, float *dbeta);

void unmix_cpu_relu_forward(int64_t n, const float *x, float *y);
void unmix_cpu_relu_backward(int64_t n, const float *dy, const float *y, float *dx);
void unmix_cpu_add(int64_t n, const float *a, const float *b, float *y);
void unmix_cpu_add_relu_forward(int64_t n, const float *a, const float *b, float *y);

void unmix_cpu_maxpool_forward(const struct unmix_pool_geom *g, const float *x, float *y, int32_t *argmax);
void unmix_cpu_maxpool_backward(const struct unmix_pool_geom *g, const float *dy, const int32_t *argmax, float *dx);
void unmix_cpu_avgpool_forward(int n, int hw, int c, const float *x, float *y);
void unmix_cpu_avgpool_backward(int n, int hw, int c, const float *dy, float *dx);
void unmix_cpu_pad2d_forward(int n, int h, int w, int c, int pad, float value, const float *x, float *y);
void unmix_cpu_pad2d_backward(int n, int h, int w, int c, int pad, const float *dy, float *dx);

void unmix_cpu_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                    int ldb, float beta, float *c, int ldc);
void unmix_cpu_linear_forward(int n, int in, int out, const float *x, const float *wt, const float *bias, float *y);
void unmix_cpu_linear_backward(int n, int in, int out, const float *dy, const float *x, const float *wt, float *dx,
                               float *dwt, float *dbias);
void unmix_cpu_l2norm_forward(int n, int d, const float *x, float *y, float *norms, float eps);
void unmix_cpu_l2norm_backward(int n, int d, const float *dy, const float *x, const float *norms, float eps,
                               float *dx);
void unmix_cpu_softmax_forward(int n, int d, float scale, const float *x, float *y);
void unmix_cpu_softmax_backward(int n, int d, float scale, const float *dy, const float *y, float *dx);
void unmix_cpu_log_softmax_forward(int n, int d, float scale, const float *x, float *y);
void unmix_cpu_log_softmax_backward(int n, int d, float scale, const float *dy, const float *y, float *dx);
void unmix_cpu_cross_entropy_forward(int n, int d, float scale, const float *logits, const int32_t *labels,
                                     float *probs, float *loss, float *correct_top1, float *correct_top5);
void unmix_cpu_cross_entropy_backward(int n, int d, float scale, float dloss, const float *probs,
                                      const int32_t *labels, float *dlogits);
void unmix_cpu_soft_cross_entropy_forward(int n, int d, float scale, const float *logits, const float *targets,
                                          float *logprobs, float *loss);
void unmix_cpu_soft_cross_entropy_backward(int n, int d, float scale, float dloss, const float *logprobs,
                                           const float *targets, float *dlogits);

void unmix_cpu_flip_batch(int n, int64_t row, const float *x, float *y);
void unmix_cpu_gather_rows(int n, int64_t row, const int32_t *idx, const float *x, float *y);
void unmix_cpu_scatter_rows(int n, int64_t row, const int32_t *idx, const float *x, float *y);
void unmix_cpu_copy(int64_t n, const float *x, float *y);
void unmix_cpu_fill(int64_t n, float value, float *y);
void unmix_cpu_scale(int64_t n, float a, const float *x, float *y);
void unmix_cpu_axpy(int64_t n, float a, const float *x, float *y);
void unmix_cpu_axpby(int64_t n, float a, const float *x, float b, float *y);
void unmix_cpu_mix_global(int n, int64_t row, float lam, const float *x, float *y);
void unmix_cpu_mix_region(int n, int h, int w, int c, int r0, int r1, int c0, int c1, const float *x, float *y);

void unmix_cpu_sum(int64_t n, const float *x, float *out);
void unmix_cpu_sumsq_segments(int nseg, const int64_t *off, const float *x, float *out);
void unmix_cpu_row_sum(int n, int d, const float *x, float *out);
void unmix_cpu_col_sum(int n, int d, const float *x, float *out);
void unmix_cpu_scale_rows(int n, int d, const float *s, float *x);
void unmix_cpu_scale_cols(int n, int d, const float *s, float *x);
void unmix_cpu_exp_scaled(int64_t n, float a, float b, const float *x, float *y);
void unmix_cpu_transpose(int n, int d, const float *x, float *y);
void unmix_cpu_row_dot(int n, int d, const float *a, const float *b, float *out, int out_stride);
void unmix_cpu_axpy_rows(int n, int d, const float *s, int s_stride, const float *x, float *y);

void unmix_cpu_sgd_step(int64_t n, float *p, const float *g, float *buf, float lr, float momentum, float wd,
                        int nseg, const int64_t *off, const float *gscale_seg, const float *wd_seg);
void unmix_cpu_ema(int64_t n, float m, const float *query, float *key);
void unmix_cpu_topk(int n, int d, int k, const float *x, float *vals, int32_t *idx);
void unmix_cpu_nonfinite_count(int64_t n, const float *x, float *out);
