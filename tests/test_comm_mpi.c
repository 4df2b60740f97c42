/* Multi-process training on MPI ranks (ctest runs this suite as `mpirun -np 2`; label mpi):
 * the collectives; distributed Sinkhorn = Sinkhorn on the concatenated batch; a MoCo and a
 * SwAV step on W ranks x B/W = one process x B (SyncBN, so every BatchNorm sees the global
 * batch) for parameters, BN buffers, key encoder and queue; shuffle-BN keys with per-rank BN
 * = the same permutation applied slice by slice in one process; the queue identical on every
 * rank; a SwAV-ImageNet step with mixed crop sizes and Un-Mix on W ranks = one process;
 * parameters bit-identical across ranks after 10 Un-Mix steps; per-rank vs global
 * Un-Mix draws; a non-finite loss on one rank stops all ranks together. Every rank also runs
 * the single-process reference itself, so each comparison is local. Tiny nets (width 4,
 * 16x16 images) keep the whole suite well under a minute on 2 cores. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/comm/comm.h"
#include "core/io/manifest.h"
#include "core/methods/common.h"
#include "core/optim/optim.h"
#include "tests/support/testutil.h"

#define S 16 /* image side */

static struct unmix_comm *g_comm;
static int R, W;

static void open_comm(void) {
  g_comm = unmix_test_comm_open();
  R = unmix_comm_rank(g_comm);
  W = unmix_comm_world(g_comm);
}
static void close_comm(void) {
  unmix_comm_destroy(g_comm);
  g_comm = NULL;
}

/* ---- collectives ---------------------------------------------------------------------------- */
START_TEST(test_collectives) {
  ck_assert_msg(W >= 2, "run this suite with mpirun -np 2 (or more); world is %d", W);
  ck_assert_str_eq(unmix_comm_name(g_comm), "mpi");
  /* all-reduce: float (host and backend memory), double, int32; several buckets at once */
  float f[7];
  for (int i = 0; i < 7; i++) f[i] = (float)(R + 1) * (float)(i + 1);
  ck_assert(unmix_comm_allreduce_f32(g_comm, f, 7, UNMIX_COMM_DEVICE) == UNMIX_OK);
  const float tri = (float)W * (W + 1) / 2;
  for (int i = 0; i < 7; i++) ck_assert_float_eq(f[i], tri * (float)(i + 1));
  double d[3] = {0.5 * R, 1e-300, -1.0};
  ck_assert(unmix_comm_allreduce_f64(g_comm, d, 3, UNMIX_COMM_HOST) == UNMIX_OK);
  ck_assert_double_eq(d[0], 0.5 * (W - 1) * W / 2);
  ck_assert_double_eq(d[2], -(double)W);
  int32_t iv[2] = {R, 1};
  ck_assert(unmix_comm_allreduce_sum(g_comm, iv, 2, UNMIX_COMM_I32, UNMIX_COMM_HOST) == UNMIX_OK);
  ck_assert_int_eq(iv[0], W * (W - 1) / 2);
  ck_assert_int_eq(iv[1], W);
  float big[1000], small[13];
  for (int i = 0; i < 1000; i++) big[i] = (float)i;
  for (int i = 0; i < 13; i++) small[i] = (float)R;
  void *bufs[2] = {big, small};
  int64_t counts[2] = {1000, 13};
  ck_assert(unmix_comm_allreduce_sum_many(g_comm, bufs, counts, 2, UNMIX_COMM_F32, UNMIX_COMM_DEVICE) == UNMIX_OK);
  ck_assert_float_eq(big[999], 999.0f * W);
  ck_assert_float_eq(small[12], (float)(W * (W - 1) / 2));
  /* broadcast int32 and bytes from the first and the last rank */
  int32_t p[5];
  for (int i = 0; i < 5; i++) p[i] = R == W - 1 ? 100 + i : -1;
  ck_assert(unmix_comm_bcast_i32(g_comm, p, 5, W - 1, UNMIX_COMM_HOST) == UNMIX_OK);
  for (int i = 0; i < 5; i++) ck_assert_int_eq(p[i], 100 + i);
  char s[16];
  snprintf(s, sizeof s, "rank%d", R);
  ck_assert(unmix_comm_bcast_bytes(g_comm, s, sizeof s, 0) == UNMIX_OK);
  ck_assert_str_eq(s, "rank0");
  /* all-gather rows in rank order */
  float rows[2 * 3], all[64 * 6];
  for (int i = 0; i < 6; i++) rows[i] = (float)(10 * R + i);
  ck_assert(unmix_comm_allgather_rows(g_comm, rows, 2, 3, all, UNMIX_COMM_DEVICE) == UNMIX_OK);
  for (int r = 0; r < W; r++)
    for (int i = 0; i < 6; i++) ck_assert_float_eq(all[r * 6 + i], (float)(10 * r + i));
  ck_assert(unmix_comm_barrier(g_comm) == UNMIX_OK);
  ck_assert(!unmix_comm_broken(g_comm));
}
END_TEST

/* ---- Sinkhorn --------------------------------------------------------------------------- */
START_TEST(test_sinkhorn_distributed) {
  const int b = 5, k = 7, B = b * W; /* odd sizes on purpose */
  float *scores = malloc(sizeof(float) * B * k), *qref = malloc(sizeof(float) * B * k);
  float *q = malloc(sizeof(float) * b * k), *work = malloc(sizeof(float) * (2 * k + B + 16));
  unmix_test_fill(scores, (size_t)B * k, 77, -1.0f, 1.0f); /* cosines, as SwAV's scores */
  ck_assert(unmix_sinkhorn(unmix_test_cpu(), NULL, B, k, 0.05f, 3, scores, qref, work) == UNMIX_OK);
  ck_assert(unmix_sinkhorn(unmix_test_cpu(), g_comm, b, k, 0.05f, 3, scores + (size_t)R * b * k, q, work) ==
            UNMIX_OK);
  ck_assert_close("distributed Sinkhorn codes vs the concatenated batch", q, qref + (size_t)R * b * k, (size_t)b * k,
                  1e-7, 1e-5);
  free(scores);
  free(qref);
  free(q);
  free(work);
}
END_TEST

/* ---- method steps --------------------------------------------------------------------------- */
static void moco_config(struct unmix_config *cfg, int B, bool sync_bn, bool sym, bool mix) {
  unmix_config_init_defaults(cfg);
  cfg->seed = 11;
  cfg->method = UNMIX_METHOD_MOCO;
  cfg->model.arch = UNMIX_ARCH_RESNET18;
  cfg->model.stem = UNMIX_STEM_CIFAR;
  cfg->model.width = 4;
  cfg->model.bn_splits = 1;
  cfg->model.sync_bn = sync_bn;
  cfg->model.head = UNMIX_HEAD_LINEAR;
  cfg->model.dim = 16;
  cfg->moco.K = 64;
  cfg->moco.m = 0.9f;
  cfg->moco.T = 0.2f;
  cfg->moco.symmetric = sym;
  cfg->moco.shuffle_bn = true;
  cfg->moco.mix_once = true;
  cfg->unmix.enabled = mix;
  cfg->unmix.per_rank = true;
  cfg->optim.kind = UNMIX_OPTIM_SGD;
  cfg->optim.lr = 0.05f;
  cfg->optim.batch_size = B;
}

static void swav_config(struct unmix_config *cfg, int B) {
  unmix_config_init_defaults(cfg);
  cfg->seed = 5;
  cfg->method = UNMIX_METHOD_SWAV;
  cfg->model.arch = UNMIX_ARCH_RESNET18_BOTTLENECK;
  cfg->model.stem = UNMIX_STEM_SWAV_CIFAR;
  cfg->model.width = 4;
  cfg->model.bn_splits = 1;
  cfg->model.sync_bn = true;
  cfg->model.head = UNMIX_HEAD_SWAV;
  cfg->model.dim = 16;
  cfg->model.hidden = 32;
  cfg->swav.nmb_prototypes = 10;
  cfg->swav.temperature = 0.1f;
  cfg->swav.epsilon = 0.05f;
  cfg->swav.sinkhorn_iterations = 3;
  cfg->swav.n_crops_for_assign = 2;
  cfg->swav.crops_for_assign[0] = 0;
  cfg->swav.crops_for_assign[1] = 1;
  cfg->swav.queue_length = 0;
  cfg->swav.freeze_prototypes_niters = 1; /* step 0 frozen, later steps update the prototypes */
  cfg->unmix.enabled = false;
  cfg->optim.kind = UNMIX_OPTIM_LARC;
  cfg->optim.lr = 0.3f;
  cfg->optim.weight_decay = 1e-6f;
  cfg->optim.batch_size = B;
  cfg->data.n_crop_groups = 1;
  cfg->data.nmb_crops[0] = 2;
  cfg->data.size_crops[0] = S;
}

static struct unmix_method *make(const struct unmix_config *cfg, struct unmix_comm *comm) {
  struct unmix_method *m = NULL;
  ck_assert_msg(unmix_method_create(cfg, unmix_test_cpu(), S, comm, &m) == UNMIX_OK, "%s", unmix_error_message());
  return m;
}

/* Views of global step `step` (B images each, the same on every rank): uniform noise with a
 * per-sample, per-channel contrast and offset, so that pooled features differ across the batch
 * (noise images alone give nearly equal features, and a BN1d over them - SwAV's head - would
 * divide rounding differences by a tiny batch std). */
static float *global_view(int B, int step, int v) {
  const int64_t img = (int64_t)S * S * 3;
  float *x = malloc(sizeof(float) * (size_t)B * img), ab[2 * 3 * 64];
  unmix_test_fill(x, (size_t)B * img, (uint32_t)(1000 + 10 * step + v), -1.0f, 1.0f);
  unmix_test_fill(ab, (size_t)6 * B, (uint32_t)(5000 + 10 * step + v), 0.0f, 1.0f);
  for (int i = 0; i < B; i++)
    for (int64_t p = 0; p < S * S; p++)
      for (int c = 0; c < 3; c++) {
        float a = 0.2f + 1.8f * ab[6 * i + c], b = -1.5f + 3.0f * ab[6 * i + 3 + c];
        x[i * img + p * 3 + c] = a * x[i * img + p * 3 + c] + b;
      }
  return x;
}

static void compare_store(const char *what, const struct unmix_param_store *a, const struct unmix_param_store *b,
                          double tol) {
  ck_assert_int_eq(a->total, b->total);
  double e = unmix_nmse(a->data, b->data, (size_t)a->total);
  ck_assert_msg(e <= tol, "rank %d: %s: normalised difference %.3g > %.3g", R, what, e, tol);
}

static double step_both(struct unmix_method *dist, struct unmix_method *ref, int B, int step, int nviews, float lr) {
  const int n = B / W;
  const int64_t img = (int64_t)S * S * 3;
  float *gv[4];
  struct unmix_views vd = {.n = n, .nviews = nviews}, vr = {.n = B, .nviews = nviews};
  for (int v = 0; v < nviews; v++) {
    gv[v] = global_view(B, step, v);
    vd.size[v] = vr.size[v] = S;
    vd.view[v] = gv[v] + (int64_t)R * n * img; /* the loader's shard: rank r's contiguous slice */
    vr.view[v] = gv[v];
  }
  struct unmix_step_stats sd, sr;
  ck_assert_msg(unmix_method_step(dist, &vd, step, 0, lr, &sd) == UNMIX_OK, "rank %d: %s", R, unmix_error_message());
  ck_assert_msg(unmix_method_step(ref, &vr, step, 0, lr, &sr) == UNMIX_OK, "%s", unmix_error_message());
  /* per-rank CE means: their mean over ranks is the single-process loss */
  double mean = sd.loss;
  ck_assert(unmix_comm_allreduce_f64(g_comm, &mean, 1, UNMIX_COMM_HOST) == UNMIX_OK);
  mean /= W;
  ck_assert_msg(fabs(mean - sr.loss) <= 1e-5 * fabs(sr.loss) + 1e-6, "step %d: mean loss over ranks %.9g, one process %.9g",
                step, mean, sr.loss);
  for (int v = 0; v < nviews; v++) free(gv[v]);
  return sr.loss;
}

static void run_moco_equal(bool sym) {
  const int B = 4 * W;
  struct unmix_config cfg;
  moco_config(&cfg, B, true, sym, false);
  struct unmix_method *dist = make(&cfg, g_comm), *ref = make(&cfg, NULL);
  for (int step = 0; step < 3; step++) step_both(dist, ref, B, step, 2, 0.05f);
  compare_store("encoder_q parameters", &dist->model->params, &ref->model->params, 2e-5);
  compare_store("encoder_q BN running stats", &dist->model->buffers, &ref->model->buffers, 2e-5);
  compare_store("encoder_k parameters", &unmix_moco_key_encoder(dist)->params, &unmix_moco_key_encoder(ref)->params,
                2e-5);
  compare_store("encoder_k BN running stats", &unmix_moco_key_encoder(dist)->buffers,
                &unmix_moco_key_encoder(ref)->buffers, 2e-5);
  int K, D, pd, pr;
  const float *qd = unmix_moco_queue(dist, &K, &D, &pd), *qr = unmix_moco_queue(ref, &K, &D, &pr);
  ck_assert_int_eq(pd, pr);
  ck_assert_int_eq(pd, (3 * (sym ? 2 : 1) * B) % K);
  ck_assert_msg(unmix_nmse(qd, qr, (size_t)K * D) <= 2e-5, "rank %d: queue differs from the single-process queue", R);
  unmix_method_destroy(dist);
  unmix_method_destroy(ref);
}

START_TEST(test_moco_ranks_equal_one_process) { run_moco_equal(false); }
END_TEST
START_TEST(test_moco_sym_ranks_equal_one_process) { run_moco_equal(true); }
END_TEST

/* SwAV at width 4 is chaotic under training: one process fed the same batch with its halves
 * swapped (rounding differences only) drifts from itself by 1e-4 after one LARC step and
 * 1e-1 after two. So the comparison is per step: the gradients of three batches at fixed
 * parameters (lr 0; the BN running stats still move), then one update. */
START_TEST(test_swav_ranks_equal_one_process) {
  const int B = 4 * W;
  struct unmix_config cfg;
  swav_config(&cfg, B);
  struct unmix_method *dist = make(&cfg, g_comm), *ref = make(&cfg, NULL);
  const struct unmix_param_store *pd = &dist->model->params, *pr = &ref->model->params;
  for (int step = 0; step < 4; step++) {
    step_both(dist, ref, B, step, 2, step < 3 ? 0.0f : 0.3f);
    double e = unmix_nmse(pd->grad, pr->grad, (size_t)pr->total);
    ck_assert_msg(e <= 1e-4, "rank %d step %d: averaged gradients vs one process: normalised difference %.3g", R, step,
                  e);
  }
  /* per tensor (a zero tensor such as an initial BN beta moves by lr*g: the gradients' 1e-4),
   * except the bias of the Linear before BN1d: its exact gradient is zero, so
   * LARC turns each run's rounding noise into a full-size step in a random direction */
  for (int e = 0; e < pr->count; e++) {
    const struct unmix_param_entry *en = &pr->entries[e];
    if (!strcmp(en->name, "projection_head.0.bias")) continue;
    double d = unmix_nmse(pd->data + en->offset, pr->data + en->offset, (size_t)en->numel);
    ck_assert_msg(d <= 1e-4, "rank %d: %s after a LARC step: normalised difference %.3g", R, en->name, d);
  }
  compare_store("SwAV BN running stats", &dist->model->buffers, &ref->model->buffers, 2e-5);
  unmix_method_destroy(dist);
  unmix_method_destroy(ref);
}
END_TEST

/* ---- SwAV ImageNet: mixed crop sizes with Un-Mix on 2 ranks ------------------------------ */
/* The swav-imagenet recipe at reduced sizes: ResNet-50 (imagenet stem, width 4), 2 x 32 px +
 * 4 x 16 px crops (two backbone runs, three crop pairs), the simplified Sinkhorn at the
 * scripts' epsilon 0.05 and temperature 0.1, Un-Mix region mixes (one global draw on every
 * rank, lambda chained over the pairs), SyncBN over all ranks, no queue. */
static void swin_config(struct unmix_config *cfg, int B) {
  unmix_config_init_defaults(cfg);
  cfg->seed = 31;
  cfg->method = UNMIX_METHOD_SWAV;
  cfg->model.arch = UNMIX_ARCH_RESNET50;
  cfg->model.stem = UNMIX_STEM_IMAGENET;
  cfg->model.width = 4;
  cfg->model.bn_splits = 1;
  cfg->model.sync_bn = true;
  cfg->model.head = UNMIX_HEAD_SWAV;
  cfg->model.dim = 16;
  cfg->model.hidden = 32;
  cfg->swav.nmb_prototypes = 12;
  cfg->swav.temperature = 0.1f;
  cfg->swav.epsilon = 0.05f;
  cfg->swav.sinkhorn_iterations = 3;
  cfg->swav.sinkhorn = UNMIX_SWAV_SINKHORN_SIMPLIFIED;
  cfg->swav.n_crops_for_assign = 2;
  cfg->swav.crops_for_assign[0] = 0;
  cfg->swav.crops_for_assign[1] = 1;
  cfg->swav.queue_length = 0;
  cfg->swav.freeze_prototypes_niters = 0;
  cfg->unmix.enabled = true;
  cfg->unmix.prob = 0.0f; /* region mixes, as every script */
  cfg->unmix.per_rank = false;
  cfg->optim.kind = UNMIX_OPTIM_LARC;
  cfg->optim.batch_size = B;
  cfg->data.n_crop_groups = 2;
  cfg->data.nmb_crops[0] = 2;
  cfg->data.size_crops[0] = 32;
  cfg->data.nmb_crops[1] = 4;
  cfg->data.size_crops[1] = 16;
}

/* Crop c of global sample i (s x s, NHWC): noise with a per-sample contrast and offset. */
static void swin_image(int c, int i, int s, float *out) {
  const int64_t img = (int64_t)s * s * 3;
  float ab[6];
  unmix_test_fill(out, (size_t)img, (uint32_t)(7000 + 100 * c + i), -1.0f, 1.0f);
  unmix_test_fill(ab, 6, (uint32_t)(9000 + 100 * c + i), 0.0f, 1.0f);
  for (int64_t p = 0; p < s * s; p++)
    for (int ch = 0; ch < 3; ch++) out[p * 3 + ch] = (0.2f + 1.8f * ab[ch]) * out[p * 3 + ch] - 1.5f + 3.0f * ab[3 + ch];
}

/* Un-Mix mixes each rank's crop with its LOCAL batch reversal (torch.flip of the per-GPU
 * batch), so the one-process run cannot take the ranks' batches concatenated: its flip would
 * pair samples of different ranks (the losses then differ by 3%). It takes them permuted so
 * that the global reversal pairs what each rank's reversal pairs: rank r's pair (j, n-1-j)
 * goes to positions (k, B-1-k), k = r*n/2 + j. The rest of the step (SyncBN, Sinkhorn over the
 * global batch, per-sample losses and their mean, the `reverse` code flip) is
 * permutation-equivariant, so the ranks' mean losses and averaged gradients are the single
 * process's.
 * Tolerances (float32 rounding; the sums run in another order: per rank, then over ranks):
 * the loss terms to 1e-5 (measured <= 2e-6 over a dozen variants of this set-up); d loss /
 * d scores of every crop and mixture row and the gradients of the head and prototypes to
 * 1e-3 (measured <= 1.5e-4 / 8e-5). The backbone's gradients are compared as a whole: 50
 * layers of width 4 at 1x1 to 4x4 pixels amplify rounding chaotically. Over ten variants of
 * this set-up (batch 4/8 per rank, width 4/8/16, crops 32/64 px, eps/T up to 1), moving the
 * one-process run's inputs by one float32 ulp moved its own gradients by 6e-5 to 2.3e-2
 * (normalised max difference), and the ranks differed from it by 1e-4 to 1.9e-2, on either
 * side of that in different variants (width 8: 1.0e-4; here 6.3e-3); a semantic error would
 * not come and go with the width. So: cosine >= 0.9999 (measured 0.99999) and normalised
 * difference <= 5e-2; a 20% error in the gradient averaging gives 0.2 and fails. The bias of
 * the Linear before BN1d is left out of the head check (its exact gradient is zero). */
START_TEST(test_swav_imagenet_mixed_crops_ranks_equal_one_process) {
  const int n = 4, B = n * W, T = 6;
  struct unmix_config cfg;
  swin_config(&cfg, B);
  struct unmix_method *dist = NULL, *ref = NULL;
  ck_assert_msg(unmix_method_create(&cfg, unmix_test_cpu(), 32, g_comm, &dist) == UNMIX_OK, "%s",
                unmix_error_message());
  ck_assert_msg(unmix_method_create(&cfg, unmix_test_cpu(), 32, NULL, &ref) == UNMIX_OK, "%s", unmix_error_message());
  int *pos_of = malloc(sizeof(int) * B); /* global sample r*n + j -> its position in the one-process batch */
  for (int r = 0; r < W; r++)
    for (int j = 0; j < n / 2; j++) {
      const int k = r * n / 2 + j;
      pos_of[r * n + j] = k;
      pos_of[r * n + n - 1 - j] = B - 1 - k;
    }
  struct unmix_views vd = {.n = n, .nviews = T}, vr = {.n = B, .nviews = T};
  float *local[6], *perm[6];
  for (int c = 0; c < T; c++) {
    const int s = c < 2 ? 32 : 16;
    const int64_t img = (int64_t)s * s * 3;
    local[c] = malloc(sizeof(float) * (size_t)(n * img));
    perm[c] = malloc(sizeof(float) * (size_t)(B * img));
    for (int i = 0; i < B; i++) {
      swin_image(c, i, s, perm[c] + (int64_t)pos_of[i] * img);
      if (i / n == R) swin_image(c, i, s, local[c] + (int64_t)(i % n) * img);
    }
    vd.size[c] = vr.size[c] = s;
    vd.view[c] = local[c];
    vr.view[c] = perm[c];
  }
  struct unmix_step_stats sd, sr;
  ck_assert_msg(unmix_method_step(dist, &vd, 0, 0, 0.0f, &sd) == UNMIX_OK, "rank %d: %s", R, unmix_error_message());
  ck_assert_msg(unmix_method_step(ref, &vr, 0, 0, 0.0f, &sr) == UNMIX_OK, "%s", unmix_error_message());
  ck_assert_msg(sd.lam == sr.lam && sd.lam > 0 && sd.lam < 1, "lambda %.9g on rank %d, %.9g in one process", sd.lam,
                R, sr.lam);
  /* the three loss terms and the total: the mean over ranks of the per-rank means */
  double terms[4] = {sd.terms[0], sd.terms[1], sd.terms[2], sd.loss};
  ck_assert(unmix_comm_allreduce_f64(g_comm, terms, 4, UNMIX_COMM_HOST) == UNMIX_OK);
  const double want[4] = {sr.terms[0], sr.terms[1], sr.terms[2], sr.loss};
  for (int t = 0; t < 4; t++)
    ck_assert_msg(fabs(terms[t] / W - want[t]) <= 1e-5 * fabs(want[t]),
                  "loss term %d: %.9g over ranks, %.9g in one process", t, terms[t] / W, want[t]);
  /* d loss / d scores, rows [x0 x1 m0 | x2 x3 m2 x4 x5 m4] of n (ranks: of the local mean
   * loss, W times the global mean's) against the one-process rows at the same samples */
  const int P = cfg.swav.nmb_prototypes;
  int rows_d = 0, rows_r = 0;
  const float *dsd = unmix_swav_last_dscores(dist, &rows_d), *dsr = unmix_swav_last_dscores(ref, &rows_r);
  ck_assert_int_eq(rows_d, 9 * n);
  ck_assert_int_eq(rows_r, 9 * B);
  double dmax = 0, rmax = 0;
  for (int b = 0; b < 9; b++)
    for (int j = 0; j < n; j++)
      for (int q = 0; q < P; q++) {
        const double a = (double)dsd[((int64_t)b * n + j) * P + q] / W;
        const double w = dsr[((int64_t)b * B + pos_of[R * n + j]) * P + q];
        dmax = fmax(dmax, fabs(a - w));
        rmax = fmax(rmax, fabs(w));
      }
  ck_assert_msg(dmax <= 1e-3 * rmax, "rank %d: d loss / d scores vs one process: normalised difference %.3g", R,
                dmax / rmax);
  /* parameter gradients (lr 0: nothing moves but the BN running statistics) */
  const struct unmix_param_store *pd = &dist->model->params, *pr = &ref->model->params;
  double dot = 0, nd = 0, nr = 0;
  for (int64_t i = 0; i < pr->total; i++) {
    dot += (double)pd->grad[i] * pr->grad[i];
    nd += (double)pd->grad[i] * pd->grad[i];
    nr += (double)pr->grad[i] * pr->grad[i];
  }
  const double cosine = dot / sqrt(nd * nr), e = unmix_nmse(pd->grad, pr->grad, (size_t)pr->total);
  ck_assert_msg(cosine >= 0.9999 && e <= 5e-2, "rank %d: averaged gradients vs one process: cosine %.7f, normalised "
                "difference %.3g", R, cosine, e);
  int head = 0;
  for (int q = 0; q < pr->count; q++) {
    const struct unmix_param_entry *en = &pr->entries[q];
    if (strncmp(en->name, "projection_head.", 16) && strncmp(en->name, "prototypes.", 11)) continue;
    if (!strcmp(en->name, "projection_head.0.bias")) continue;
    const double eh = unmix_nmse(pd->grad + en->offset, pr->grad + en->offset, (size_t)en->numel);
    ck_assert_msg(eh <= 1e-3, "rank %d: gradient of %s vs one process: normalised difference %.3g", R, en->name, eh);
    head++;
  }
  ck_assert_int_eq(head, 6);
  compare_store("BN running stats after a mixed-crop step", &dist->model->buffers, &ref->model->buffers, 2e-5);
  for (int c = 0; c < T; c++) {
    free(local[c]);
    free(perm[c]);
  }
  free(pos_of);
  unmix_method_destroy(dist);
  unmix_method_destroy(ref);
}
END_TEST

/* Shuffle-BN with per-rank BatchNorm: the queue's newest keys (all ranks', un-shuffled) equal
 * what one process gets by applying the same permutation to the global batch, encoding slice
 * r of it as one BatchNorm batch for every r, and un-shuffling with argsort. */
START_TEST(test_shuffle_bn_keys) {
  const int B = 4 * W, n = 4, D = 16;
  const int64_t img = (int64_t)S * S * 3;
  struct unmix_config cfg;
  moco_config(&cfg, B, false, false, false);
  struct unmix_method *dist = make(&cfg, g_comm), *ref = make(&cfg, NULL);
  const struct unmix_backend *be = unmix_test_cpu();
  int32_t *perm = malloc(sizeof(int32_t) * B);
  for (int i = 0; i < B; i++) perm[i] = (7 * i + 3) % B; /* a fixed permutation (7 is coprime to 4W for W = 2) */
  if (B % 7 == 0)
    for (int i = 0; i < B; i++) perm[i] = B - 1 - i;
  float *x1 = global_view(B, 0, 0), *x2 = global_view(B, 0, 1);
  struct unmix_views v = {.n = n, .nviews = 2, .size = {S, S}, .view = {x1 + R * n * img, x2 + R * n * img}};
  struct unmix_forced_draws f;
  memset(&f, 0, sizeof f);
  f.perm[0] = perm;
  struct unmix_step_stats st;
  memset(&st, 0, sizeof st);
  ck_assert_msg(unmix_method_step_forced(dist, &v, 0, 0, 0.05f, &f, &st) == UNMIX_OK, "%s", unmix_error_message());
  int K, Dq, ptr;
  const float *queue = unmix_moco_queue(dist, &K, &Dq, &ptr);
  ck_assert_int_eq(Dq, D);
  ck_assert_int_eq(ptr, B);
  /* the reference in one process: the key encoder after the same momentum update */
  struct unmix_model *k = unmix_moco_key_encoder(ref);
  unmix_ema_update(be, &k->params, &ref->model->params, cfg.moco.m);
  struct unmix_ctx *ctx = unmix_ctx_create(be, "ref.key");
  float *xs = malloc(sizeof(float) * n * img), *shuf = malloc(sizeof(float) * B * D), *want = malloc(sizeof(float) * B * D);
  float norms[64];
  for (int r = 0; r < W; r++) {
    for (int i = 0; i < n; i++) memcpy(xs + i * img, x2 + perm[r * n + i] * img, sizeof(float) * img);
    const float *kr = unmix_model_forward(k, ctx, xs, n, UNMIX_FWD_TRAIN, false);
    be->l2norm_forward(n, D, kr, shuf + r * n * D, norms, 1e-12f);
  }
  for (int i = 0; i < B; i++) memcpy(want + perm[i] * D, shuf + i * D, sizeof(float) * D); /* argsort */
  ck_assert_close("un-shuffled keys in the queue vs one process", queue, want, (size_t)B * D, 1e-6, 1e-4);
  /* and the queue is the same on every rank, bit for bit */
  float *allq = malloc(sizeof(float) * (size_t)W * K * D);
  ck_assert(unmix_comm_allgather_rows(g_comm, queue, K, D, allq, UNMIX_COMM_HOST) == UNMIX_OK);
  for (int r = 1; r < W; r++)
    ck_assert_msg(memcmp(allq, allq + (size_t)r * K * D, sizeof(float) * K * D) == 0, "queue of rank %d differs", r);
  free(allq);
  unmix_ctx_destroy(ctx);
  free(xs);
  free(shuf);
  free(want);
  free(perm);
  free(x1);
  free(x2);
  unmix_method_destroy(dist);
  unmix_method_destroy(ref);
}
END_TEST

/* 10 Un-Mix steps with per-rank BN and per-rank draws: every rank ends with the same
 * parameters, bit for bit (one averaged gradient, one optimiser). */
START_TEST(test_params_identical_after_10_steps) {
  const int B = 4 * W, n = 4;
  const int64_t img = (int64_t)S * S * 3;
  struct unmix_config cfg;
  moco_config(&cfg, B, false, true, true);
  cfg.unmix.prob = 0.5f;
  struct unmix_method *m = make(&cfg, g_comm);
  double lam_sum = 0;
  for (int step = 0; step < 10; step++) {
    float *x1 = global_view(B, step, 0), *x2 = global_view(B, step, 1);
    struct unmix_views v = {.n = n, .nviews = 2, .size = {S, S}, .view = {x1 + R * n * img, x2 + R * n * img}};
    struct unmix_step_stats st;
    ck_assert_msg(unmix_method_step(m, &v, step, 0, 0.05f, &st) == UNMIX_OK, "%s", unmix_error_message());
    lam_sum += st.lam;
    free(x1);
    free(x2);
  }
  const int64_t P = m->model->params.total;
  float *all = malloc(sizeof(float) * (size_t)P * W);
  ck_assert(unmix_comm_allgather(g_comm, m->model->params.data, all, P, UNMIX_COMM_F32, UNMIX_COMM_DEVICE) == UNMIX_OK);
  for (int r = 1; r < W; r++)
    ck_assert_msg(memcmp(all, all + (size_t)r * P, sizeof(float) * P) == 0, "parameters of rank %d differ from rank 0's",
                  r);
  /* the ranks drew their own lambdas (per_rank): not all equal */
  double *lams = malloc(sizeof(double) * W);
  ck_assert(unmix_comm_allgather(g_comm, &lam_sum, lams, 1, UNMIX_COMM_F64, UNMIX_COMM_HOST) == UNMIX_OK);
  ck_assert_msg(lams[0] != lams[1], "per-rank Un-Mix draws gave the same lambdas on ranks 0 and 1");
  free(lams);
  free(all);
  unmix_method_destroy(m);
}
END_TEST

/* unmix.per_rank: false -> one global draw on every rank. */
START_TEST(test_global_draw) {
  const int B = 4 * W, n = 4;
  const int64_t img = (int64_t)S * S * 3;
  struct unmix_config cfg;
  moco_config(&cfg, B, false, false, true);
  cfg.unmix.per_rank = false;
  struct unmix_method *m = make(&cfg, g_comm);
  double lam[2];
  int mode[2];
  for (int step = 0; step < 2; step++) {
    float *x1 = global_view(B, step, 0), *x2 = global_view(B, step, 1);
    struct unmix_views v = {.n = n, .nviews = 2, .size = {S, S}, .view = {x1 + R * n * img, x2 + R * n * img}};
    struct unmix_step_stats st;
    ck_assert_msg(unmix_method_step(m, &v, step, 0, 0.05f, &st) == UNMIX_OK, "%s", unmix_error_message());
    lam[step] = st.lam;
    mode[step] = st.mix_mode;
    free(x1);
    free(x2);
  }
  double all[8];
  ck_assert(unmix_comm_allgather(g_comm, lam, all, 2, UNMIX_COMM_F64, UNMIX_COMM_HOST) == UNMIX_OK);
  for (int r = 1; r < W; r++) {
    ck_assert(all[2 * r] == all[0]);
    ck_assert(all[2 * r + 1] == all[1]);
  }
  struct unmix_mix_draw d;
  unmix_mix_draw(&cfg.unmix, cfg.seed, 1, 0, S, S, &d);
  ck_assert(d.lam == lam[1] && (d.global ? 1 : 0) == mode[1]);
  unmix_method_destroy(m);
}
END_TEST

/* A NaN in rank 1's queue only: every rank returns the numeric error at the same step, none
 * waits for the others. */
START_TEST(test_nonfinite_loss_stops_all) {
  const int B = 4 * W, n = 4;
  const int64_t img = (int64_t)S * S * 3;
  struct unmix_config cfg;
  moco_config(&cfg, B, false, false, false);
  struct unmix_method *m = make(&cfg, g_comm);
  float *x1 = global_view(B, 0, 0), *x2 = global_view(B, 0, 1);
  int K, D, ptr;
  float *queue = unmix_moco_queue(m, &K, &D, &ptr);
  if (R == 1) queue[3] = NAN; /* (ReLU would turn a NaN pixel into zeros) */
  struct unmix_views v = {.n = n, .nviews = 2, .size = {S, S}, .view = {x1 + R * n * img, x2 + R * n * img}};
  struct unmix_step_stats st;
  unmix_status s = unmix_method_step(m, &v, 0, 0, 0.05f, &st);
  ck_assert_msg(s == UNMIX_ERR_NUMERIC, "rank %d: status %s (%s)", R, unmix_status_name(s), unmix_error_message());
  if (R == 0) ck_assert_msg(strstr(unmix_error_message(), "other rank") != NULL, "%s", unmix_error_message());
  ck_assert(!unmix_comm_broken(g_comm));
  ck_assert(unmix_comm_barrier(g_comm) == UNMIX_OK);
  free(x1);
  free(x2);
  unmix_method_destroy(m);
}
END_TEST

static Suite *dist_suite(void) {
  Suite *s = suite_create("comm-mpi");
  TCase *tc = tcase_create("ranks");
  tcase_set_timeout(tc, 300);
  tcase_add_unchecked_fixture(tc, open_comm, close_comm);
  tcase_add_test(tc, test_collectives);
  tcase_add_test(tc, test_sinkhorn_distributed);
  tcase_add_test(tc, test_moco_ranks_equal_one_process);
  tcase_add_test(tc, test_moco_sym_ranks_equal_one_process);
  tcase_add_test(tc, test_swav_ranks_equal_one_process);
  tcase_add_test(tc, test_swav_imagenet_mixed_crops_ranks_equal_one_process);
  tcase_add_test(tc, test_shuffle_bn_keys);
  tcase_add_test(tc, test_params_identical_after_10_steps);
  tcase_add_test(tc, test_global_draw);
  tcase_add_test(tc, test_nonfinite_loss_stops_all);
  suite_add_tcase(s, tc);
  return s;
}
UNMIX_TEST_MAIN(dist_suite)
