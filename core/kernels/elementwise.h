/* Element-wise and per-element bodies shared by the CPU backend (OpenMP loops) and the
 * CUDA backend (__global__ wrappers). Each takes scalars and returns/updates one element,
 * so both backends compute bit-identical fp32 arithmetic where the hardware allows. */
#pragma once
#include "core/kernels/common.h"

UNMIX_HD float unmix_k_relu(float x) { return x > 0.0f ? x : 0.0f; }
UNMIX_HD float unmix_k_relu_grad(float dy, float y) { return y > 0.0f ? dy : 0.0f; }

/* Batch-norm normalisation of one element. */
UNMIX_HD float unmix_k_bn_apply(float x, float mean, float invstd, float gamma, float beta) {
  return gamma * ((x - mean) * invstd) + beta;
}
/* The fused BN + ReLU of one element. */
UNMIX_HD float unmix_k_bn_relu_apply(float x, float mean, float invstd, float gamma, float beta) {
  return unmix_k_relu(unmix_k_bn_apply(x, mean, invstd, gamma, beta));
}
/* dy as the fused BN + ReLU's backward sees it: zero where the forward's output was not
 * positive. That output is recomputed from x by the forward's own expression (no FMA
 * contraction in either build), so the mask is the forward's bit for bit. */
UNMIX_HD float unmix_k_bn_relu_mask(float dy, float x, float mean, float invstd, float gamma, float beta) {
  return unmix_k_bn_apply(x, mean, invstd, gamma, beta) > 0.0f ? dy : 0.0f;
}
/* Batch-norm input gradient of one element: m = count per statistic, sdy = sum dy,
 * sdyx = sum dy*xhat over that statistic's elements. */
UNMIX_HD float unmix_k_bn_grad(float dy, float x, float mean, float invstd, float gamma, float m, float sdy,
                               float sdyx) {
  float xhat = (x - mean) * invstd;
  return gamma * invstd * (dy - (sdy + xhat * sdyx) / m);
}

/* PyTorch SGD with momentum (dampening 0): d = gscale*g + wd*p; buf = mom*buf + d; p -= lr*buf. */
UNMIX_HD void unmix_k_sgd(float *p, float g, float *buf, float lr, float momentum, float wd, float gscale) {
  float d = gscale * g + wd * (*p);
  float b = momentum * (*buf) + d;
  *buf = b;
  *p = *p - lr * b;
}

/* PyTorch's _single_tensor_adam on one element (see the ADAM_STEP op): each product and sum
 * rounded on its own, as the ATen kernels round it (the builds disable FMA contraction). */
UNMIX_HD void unmix_k_adam(float *p, float g, float *m, float *v, float wd, float w1, float b2, float w2, float eps,
                           float step_size, float bc2_sqrt) {
  float pi = *p, gi = g;
  if (wd != 0.0f) gi = gi + wd * pi;
  /* lerp(m, g, w1) with |w1| < 0.5: m + w1 * (g - m) */
  float mi = *m + w1 * (gi - *m);
  float vi = *v * b2;
  vi = vi + w2 * gi * gi;
  float denom = sqrtf(vi) / bc2_sqrt + eps;
  *m = mi;
  *v = vi;
  *p = pi + (-step_size) * (mi / denom);
}

/* Exponential moving average (a momentum encoder's update): key = m*key + (1-m)*query.
 * PyTorch computes param_k.data * m + param_q.data * (1 - m), in that order. */
UNMIX_HD float unmix_k_ema(float key, float query, float m) { return key * m + query * (1.0f - m); }

/* Blend of one element: lam*a + (1-lam)*b (a from sample i, b from its mirror n-1-i). */
UNMIX_HD float unmix_k_blend(float a, float b, float lam) { return lam * a + (1.0f - lam) * b; }

/* True when (row, col) lies in the half-open box [r0,r1) x [c0,c1). */
UNMIX_HD int unmix_k_in_box(int row, int col, int r0, int r1, int c0, int c1) {
  return row >= r0 && row < r1 && col >= c0 && col < c1;
}

/* bf16 <-> f32 with round-to-nearest-even (used by the GPU bf16 mode and its CPU oracle). */
UNMIX_HD uint16_t unmix_k_f32_to_bf16(float f) {
  union { float f; uint32_t u; } v;
  v.f = f;
  if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x40u); /* quiet NaN */
  uint32_t rounding = 0x7fffu + ((v.u >> 16) & 1u);
  return (uint16_t)((v.u + rounding) >> 16);
}
UNMIX_HD float unmix_k_bf16_to_f32(uint16_t h) {
  union { float f; uint32_t u; } v;
  v.u = (uint32_t)h << 16;
  return v.f;
}
