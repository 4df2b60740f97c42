/* Linear evaluation on cached features with Adam and exponential decay (see lincls_features.h):
 * every minibatch is gathered on the backend, the classifier's forward/backward are the
 * backend's linear and cross-entropy ops, the update is core/optim/adam. */
#include "eval/lincls_features.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/optim/adam.h"
#include "core/util/rng.h"

struct unmix_linfeat_params unmix_linfeat_reference(void) {
  return (struct unmix_linfeat_params){
      .epochs = 500, .lr = 1e-2, .lr_end = 1e-6, .weight_decay = 5e-6, .batch_size = 1000, .seed = 0};
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

unmix_status unmix_linfeat_run(const struct unmix_backend *be, const float *train, const int32_t *train_labels, int n,
                               const float *test, const int32_t *test_labels, int m, int d, int num_classes,
                               const struct unmix_linfeat_params *p, struct unmix_linfeat_result *res, float *w_out,
                               float *b_out) {
  if (res) memset(res, 0, sizeof *res);
  if (!be || !p || !train || !train_labels || (m > 0 && (!test || !test_labels)))
    return unmix_error_set(UNMIX_ERR_ARG, "linear eval: missing backend, parameters, features or labels");
  if (n < 1 || m < 0 || d < 1 || num_classes < 1)
    return unmix_error_set(UNMIX_ERR_ARG, "linear eval: %d train / %d test features of dim %d, %d classes", n, m, d,
                           num_classes);
  if (p->epochs < 1 || p->batch_size < 1 || !(p->lr > 0.0) || !(p->lr_end > 0.0) || !(p->weight_decay >= 0.0))
    return unmix_error_set(UNMIX_ERR_ARG, "linear eval: epochs %d, batch %d, lr %g -> %g, wd %g out of range",
                           p->epochs, p->batch_size, p->lr, p->lr_end, p->weight_decay);
  for (int i = 0; i < n; i++)
    if (train_labels[i] < 0 || train_labels[i] >= num_classes)
      return unmix_error_set(UNMIX_ERR_ARG, "linear eval: train sample %d has label %d outside 0..%d", i,
                             (int)train_labels[i], num_classes - 1);
  for (int i = 0; i < m; i++)
    if (test_labels[i] < 0 || test_labels[i] >= num_classes)
      return unmix_error_set(UNMIX_ERR_ARG, "linear eval: test sample %d has label %d outside 0..%d", i,
                             (int)test_labels[i], num_classes - 1);
  const double t0 = now_s();
  const int C = num_classes;
  const int bs = p->batch_size < n ? p->batch_size : n, nb = n / bs;
  /* one flat buffer [W (C, d) | b (C)] so Adam runs once over it */
  const int64_t nw = (int64_t)C * d, np = nw + C;
  const int mm = m > bs ? m : bs;
  unmix_status st = UNMIX_OK;
  struct unmix_adam adam = {0};
  float *param = be->alloc(sizeof(float) * (size_t)np), *grad = be->alloc(sizeof(float) * (size_t)np);
  float *xb = be->alloc(sizeof(float) * (size_t)bs * d), *logits = be->alloc(sizeof(float) * (size_t)mm * C);
  float *probs = be->alloc(sizeof(float) * (size_t)mm * C), *dlogits = be->alloc(sizeof(float) * (size_t)bs * C);
  float *scal = be->alloc(sizeof(float) * 3);
  int32_t *idx_d = be->alloc(sizeof(int32_t) * (size_t)bs), *lab_d = be->alloc(sizeof(int32_t) * (size_t)mm);
  float *hp = malloc(sizeof(float) * (size_t)np);
  int32_t *perm = malloc(sizeof(int32_t) * (size_t)n), *hlab = malloc(sizeof(int32_t) * (size_t)bs);
  if (!param || !grad || !xb || !logits || !probs || !dlogits || !scal || !idx_d || !lab_d || !hp || !perm || !hlab) {
    st = unmix_error_set(UNMIX_ERR_NOMEM, "linear eval: buffers for %d x %d features, %d classes on %s", n, d, C,
                         be->name);
    goto done;
  }
  /* nn.Linear's default init: kaiming_uniform(a = sqrt 5) gives U(-1/sqrt(d), 1/sqrt(d)) for
   * the weight, and the bias uses the same bound */
  const float bound = (float)(1.0 / sqrt((double)d));
  struct unmix_rng ri = unmix_rng_make(p->seed, UNMIX_RNG_LINEAR, 0, 0, 1);
  for (int64_t i = 0; i < np; i++) hp[i] = -bound + 2.0f * bound * unmix_rng_uniform(&ri);
  if (p->init_w) memcpy(hp, p->init_w, sizeof(float) * (size_t)nw);
  if (p->init_b) memcpy(hp + nw, p->init_b, sizeof(float) * (size_t)C);
  be->memcpy_h2d(param, hp, sizeof(float) * (size_t)np);
  struct unmix_adam_params ap = unmix_adam_params_default();
  ap.weight_decay = p->weight_decay;
  if ((st = unmix_adam_init(&adam, be, np, &ap)) != UNMIX_OK) goto done;

  const double gamma = pow(p->lr_end / p->lr, 1.0 / p->epochs);
  double lr = p->lr, loss_sum = 0.0;
  for (int ep = 0; ep < p->epochs; ep++) {
    struct unmix_rng rs = unmix_rng_make(p->seed, UNMIX_RNG_LINEAR, (uint32_t)ep, 1, 0);
    unmix_rng_permutation(&rs, perm, n);
    loss_sum = 0.0;
    for (int b = 0; b < nb; b++) {
      const int32_t *ib = perm + (int64_t)b * bs;
      for (int i = 0; i < bs; i++) hlab[i] = train_labels[ib[i]];
      be->memcpy_h2d(idx_d, ib, sizeof(int32_t) * (size_t)bs);
      be->memcpy_h2d(lab_d, hlab, sizeof(int32_t) * (size_t)bs);
      be->gather_rows(bs, d, idx_d, train, xb);
      be->linear_forward(bs, d, C, xb, param, param + nw, logits);
      be->cross_entropy_forward(bs, C, 1.0f, logits, lab_d, probs, scal, NULL, NULL);
      float loss;
      be->memcpy_d2h(&loss, scal, sizeof loss);
      if (!isfinite(loss)) {
        st = unmix_error_set(UNMIX_ERR_NUMERIC, "linear eval: loss %g at epoch %d, batch %d", (double)loss, ep + 1, b);
        goto done;
      }
      loss_sum += loss;
      be->cross_entropy_backward(bs, C, 1.0f, 1.0f, probs, lab_d, dlogits);
      be->fill(np, 0.0f, grad);
      be->linear_backward(bs, d, C, dlogits, xb, param, NULL, grad, grad + nw);
      unmix_adam_step(&adam, param, grad, lr);
    }
    lr *= gamma; /* ExponentialLR.step() once per epoch (chainable form: lr <- lr * gamma) */
  }
  if (res) {
    res->epochs = p->epochs;
    res->last_train_loss = loss_sum / nb;
    res->train_samples = n;
    res->test_samples = m;
  }
  if (m > 0 && res) {
    int64_t c1 = 0, c5 = 0;
    for (int q0 = 0; q0 < m; q0 += mm) {
      int mc = m - q0 < mm ? m - q0 : mm;
      be->memcpy_h2d(lab_d, test_labels + q0, sizeof(int32_t) * (size_t)mc);
      be->linear_forward(mc, d, C, test + (int64_t)q0 * d, param, param + nw, logits);
      be->cross_entropy_forward(mc, C, 1.0f, logits, lab_d, probs, scal, scal + 1, scal + 2);
      float cnt[3];
      be->memcpy_d2h(cnt, scal, sizeof cnt);
      c1 += (int64_t)cnt[1];
      c5 += (int64_t)cnt[2];
    }
    res->top1 = 100.0 * (double)c1 / m;
    res->top5 = 100.0 * (double)c5 / m;
  }
  if (w_out || b_out) {
    be->memcpy_d2h(hp, param, sizeof(float) * (size_t)np);
    if (w_out) memcpy(w_out, hp, sizeof(float) * (size_t)nw);
    if (b_out) memcpy(b_out, hp + nw, sizeof(float) * (size_t)C);
  }
  if (res) res->seconds = now_s() - t0;
done:
  unmix_adam_free(&adam);
  if (param) be->free(param);
  if (grad) be->free(grad);
  if (xb) be->free(xb);
  if (logits) be->free(logits);
  if (probs) be->free(probs);
  if (dlogits) be->free(dlogits);
  if (scal) be->free(scal);
  if (idx_d) be->free(idx_d);
  if (lab_d) be->free(lab_d);
  free(hp);
  free(perm);
  free(hlab);
  return st;
}
