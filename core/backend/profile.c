/* Op profiling: a backend table whose every op times the call on the wrapped backend and
 * adds it to per-op counters (`unmix bench step --profile`). The wrapped table is only
 * handed to code that asked for it, so an unprofiled run pays nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend/profile.h"
#include "core/util/timer.h"

static const struct unmix_backend *g_real;
static struct unmix_backend g_wrapped;
static double g_seconds[UNMIX_OP_COUNT];
static int64_t g_calls[UNMIX_OP_COUNT];

/* Each op's argument names, in ops.def's order: the wrappers below forward them. An op
 * added to ops.def without a line here fails to compile (ARGS_<name> undefined). */
#define ARGS_conv2d_forward (g, x, wt, y)
#define ARGS_conv2d_backward_data (g, dy, wt, dx)
#define ARGS_conv2d_backward_weight (g, dy, x, dwt)
#define ARGS_batchnorm_forward_train (g, x, gamma, beta, y, save_mean, save_invstd, running_mean, running_var, momentum, eps, relu)
#define ARGS_batchnorm_forward_eval (g, x, gamma, beta, running_mean, running_var, eps, relu, y)
#define ARGS_batchnorm_backward (g, dy, x, gamma, beta, save_mean, save_invstd, relu, dx, dgamma, dbeta)
#define ARGS_l2norm_forward (n, d, x, y, norms, eps)
#define ARGS_l2norm_backward (n, d, dy, x, norms, eps, dx)
#define ARGS_relu_forward (n, x, y)
#define ARGS_relu_backward (n, dy, y, dx)
#define ARGS_add (n, a, b, y)
#define ARGS_add_relu_forward (n, a, b, y)
#define ARGS_add_relu_backward (n, dy, y, da, db)
#define ARGS_copy (n, x, y)
#define ARGS_fill (n, value, y)
#define ARGS_scale (n, a, x, y)
#define ARGS_axpy (n, a, x, y)
#define ARGS_axpby (n, a, x, b, y)
#define ARGS_exp_scaled (n, a, b, x, y)
#define ARGS_maxpool_forward (g, x, y, argmax)
#define ARGS_maxpool_backward (g, dy, argmax, dx)
#define ARGS_avgpool_forward (n, hw, c, x, y)
#define ARGS_avgpool_backward (n, hw, c, dy, dx)
#define ARGS_pad2d_forward (n, h, w, c, pad, value, x, y)
#define ARGS_pad2d_backward (n, h, w, c, pad, dy, dx)
#define ARGS_gemm (trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
#define ARGS_linear_forward (n, in, out, x, wt, bias, y)
#define ARGS_linear_backward (n, in, out, dy, x, wt, dx, dwt, dbias)
#define ARGS_softmax_forward (n, d, scale, x, y)
#define ARGS_softmax_backward (n, d, scale, dy, y, dx)
#define ARGS_log_softmax_forward (n, d, scale, x, y)
#define ARGS_log_softmax_backward (n, d, scale, dy, y, dx)
#define ARGS_cross_entropy_forward (n, d, scale, logits, labels, probs, loss, correct_top1, correct_top5)
#define ARGS_cross_entropy_backward (n, d, scale, dloss, probs, labels, dlogits)
#define ARGS_soft_cross_entropy_forward (n, d, scale, logits, targets, logprobs, loss)
#define ARGS_soft_cross_entropy_backward (n, d, scale, dloss, logprobs, targets, dlogits)
#define ARGS_flip_batch (n, row, x, y)
#define ARGS_gather_rows (n, row, idx, x, y)
#define ARGS_scatter_rows (n, row, idx, x, y)
#define ARGS_blend_flipped (n, row, lam, x, y)
#define ARGS_paste_box_flipped (n, h, w, c, r0, r1, c0, c1, x, y)
#define ARGS_sum (n, x, out)
#define ARGS_sumsq_segments (nseg, off, x, out)
#define ARGS_row_sum (n, d, x, out)
#define ARGS_col_sum (n, d, x, out)
#define ARGS_row_dot (n, d, a, b, out, out_stride)
#define ARGS_nonfinite_count (n, x, out)
#define ARGS_scale_rows (n, d, s, x)
#define ARGS_scale_cols (n, d, s, x)
#define ARGS_axpy_rows (n, d, s, s_stride, x, y)
#define ARGS_transpose (n, d, x, y)
#define ARGS_sgd_step (n, p, g, buf, lr, momentum, wd, nseg, off, gscale_seg, wd_seg)
#define ARGS_adam_step (n, p, g, m, v, wd, w1, b2, w2, eps, step_size, bc2_sqrt)
#define ARGS_ema (n, m, query, key)
#define ARGS_topk (n, d, k, x, vals, idx)

/* A GPU runs ops asynchronously: the wrapper waits for the device before and after each
 * op, so each op's own time is measured (and the overlap between ops is lost). */
#define UNMIX_OP(NAME, name, family, params)                                   \
  static void prof_##name params {                                            \
    const bool sync = g_real->device != UNMIX_DEVICE_CPU;                      \
    if (sync) g_real->synchronize();                                           \
    const double t0 = unmix_now();                                             \
    g_real->name ARGS_##name;                                                  \
    if (sync) g_real->synchronize();                                           \
    g_seconds[UNMIX_OP_##NAME] += unmix_now() - t0;                            \
    g_calls[UNMIX_OP_##NAME]++;                                                \
  }
#include "core/backend/ops.def"
#undef UNMIX_OP

const struct unmix_backend *unmix_profile_wrap(const struct unmix_backend *be) {
  g_real = be;
  g_wrapped = *be;
#define UNMIX_OP(NAME, name, family, params) \
  if (be->name) g_wrapped.name = prof_##name;
#include "core/backend/ops.def"
#undef UNMIX_OP
  unmix_profile_reset();
  return &g_wrapped;
}

void unmix_profile_reset(void) {
  memset(g_seconds, 0, sizeof g_seconds);
  memset(g_calls, 0, sizeof g_calls);
}

double unmix_profile_seconds(enum unmix_op op) { return (int)op >= 0 && op < UNMIX_OP_COUNT ? g_seconds[op] : 0; }
int64_t unmix_profile_calls(enum unmix_op op) { return (int)op >= 0 && op < UNMIX_OP_COUNT ? g_calls[op] : 0; }

const char *unmix_op_phase(enum unmix_op op) {
  const char *n = unmix_op_name(op);
  if (strstr(n, "backward")) return "backward";
  if (strstr(n, "forward")) return "forward";
  return "other";
}

struct row {
  const char *family, *phase;
  double seconds;
  int64_t calls;
};
static int by_time(const void *a, const void *b) {
  const double x = ((const struct row *)a)->seconds, y = ((const struct row *)b)->seconds;
  return x < y ? 1 : x > y ? -1 : 0;
}

void unmix_profile_print(FILE *f, int steps, double step_seconds) {
  struct row rows[UNMIX_OP_COUNT];
  int nrows = 0;
  double total = 0;
  for (int op = 0; op < UNMIX_OP_COUNT; op++) {
    if (!g_calls[op]) continue;
    const char *fam = unmix_op_family((enum unmix_op)op), *ph = unmix_op_phase((enum unmix_op)op);
    int i = 0;
    while (i < nrows && (strcmp(rows[i].family, fam) || strcmp(rows[i].phase, ph))) i++;
    if (i == nrows) rows[nrows++] = (struct row){fam, ph, 0, 0};
    rows[i].seconds += g_seconds[op];
    rows[i].calls += g_calls[op];
    total += g_seconds[op];
  }
  qsort(rows, (size_t)nrows, sizeof rows[0], by_time);
  if (steps < 1) steps = 1;
  const double step = step_seconds > 0 ? step_seconds : total / steps;
  fprintf(f, "\nprofile: time per op family and phase, per step (mean over %d steps)\n", steps);
  fprintf(f, "%-12s %-9s %10s %12s %8s\n", "family", "phase", "calls", "ms/step", "% step");
  for (int i = 0; i < nrows; i++)
    fprintf(f, "%-12s %-9s %10.1f %12.2f %7.1f%%\n", rows[i].family, rows[i].phase, (double)rows[i].calls / steps,
            rows[i].seconds / steps * 1e3, 100.0 * rows[i].seconds / steps / step);
  fprintf(f, "%-12s %-9s %10s %12.2f %7.1f%%\n", "all ops", "", "", total / steps * 1e3, 100.0 * total / steps / step);
  if (step_seconds > 0)
    fprintf(f, "%-12s %-9s %10s %12.2f %7.1f%%\n", "outside ops", "", "", (step_seconds - total / steps) * 1e3,
            100.0 * (step_seconds - total / steps) / step);
}
