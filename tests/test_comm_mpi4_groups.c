/* SyncBatchNorm over process groups (model.sync_bn_group; ctest runs this suite as
 * `mpirun -np 4`; label mpi): the group sub-communicator's collectives, and a SwAV network on
 * 4 ranks in groups of 2 whose BatchNorm outputs, running statistics, input gradients and
 * group-summed parameter gradients equal one process's over that group's samples, and differ
 * from the all-rank sync. Every rank runs its own single-process reference. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/comm/comm.h"
#include "core/io/manifest.h"
#include "core/io/specs.h"
#include "core/methods/common.h"
#include "tests/support/testutil.h"

#define S 16 /* image side */
#define G 2  /* ranks per group */

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

START_TEST(test_group_collectives) {
  ck_assert_msg(W >= 4 && W % G == 0, "run this suite with mpirun -np 4; world is %d", W);
  struct unmix_comm *g = NULL;
  ck_assert_msg(unmix_comm_split_groups(g_comm, G, &g) == UNMIX_OK, "%s", unmix_error_message());
  ck_assert_int_eq(unmix_comm_rank(g), R % G);
  ck_assert_int_eq(unmix_comm_world(g), G);
  ck_assert_str_eq(unmix_comm_name(g), "mpi/2");
  const int first = R - R % G; /* the group is ranks first, first + 1 */
  double d[2] = {(double)R, 1.0};
  ck_assert(unmix_comm_allreduce_f64(g, d, 2, UNMIX_COMM_HOST) == UNMIX_OK);
  ck_assert_double_eq(d[0], (double)(first + first + 1));
  ck_assert_double_eq(d[1], (double)G);
  float rows[2] = {(float)R, -(float)R}, all[2 * G];
  ck_assert(unmix_comm_allgather_rows(g, rows, 1, 2, all, UNMIX_COMM_HOST) == UNMIX_OK);
  for (int r = 0; r < G; r++) ck_assert_float_eq(all[2 * r], (float)(first + r));
  int32_t b = R;
  ck_assert(unmix_comm_bcast_i32(g, &b, 1, G - 1, UNMIX_COMM_HOST) == UNMIX_OK);
  ck_assert_int_eq(b, first + G - 1);
  ck_assert(unmix_comm_barrier(g) == UNMIX_OK);
  /* the parent still works after the split, and the group of every rank is a group of 1 */
  d[0] = 1.0;
  ck_assert(unmix_comm_allreduce_f64(g_comm, d, 1, UNMIX_COMM_HOST) == UNMIX_OK);
  ck_assert_double_eq(d[0], (double)W);
  unmix_comm_destroy(g);
  ck_assert(unmix_comm_split_groups(g_comm, 1, &g) == UNMIX_OK);
  ck_assert_int_eq(unmix_comm_world(g), 1);
  unmix_comm_destroy(g);
  /* groups that do not tile the world are refused before any collective */
  ck_assert(unmix_comm_split_groups(g_comm, 3, &g) == UNMIX_ERR_CONFIG);
  ck_assert(g == NULL);
  ck_assert_msg(strstr(unmix_error_message(), "do not divide the 4 ranks") != NULL, "%s", unmix_error_message());
  ck_assert(unmix_comm_split_groups(NULL, 1, &g) == UNMIX_OK && g == NULL);
  ck_assert(unmix_comm_split_groups(NULL, 2, &g) == UNMIX_ERR_CONFIG);
  ck_assert(!unmix_comm_broken(g_comm));
}
END_TEST

static void swav_config(struct unmix_config *cfg, int B, int group) {
  unmix_config_init_defaults(cfg);
  cfg->seed = 5;
  cfg->method = UNMIX_METHOD_SWAV;
  cfg->model.arch = UNMIX_ARCH_RESNET18_BOTTLENECK;
  cfg->model.stem = UNMIX_STEM_SWAV_CIFAR;
  cfg->model.width = 4;
  cfg->model.bn_splits = 1;
  cfg->model.sync_bn = true;
  cfg->model.sync_bn_group = group;
  cfg->model.head = UNMIX_HEAD_SWAV;
  cfg->model.dim = 16;
  cfg->model.hidden = 32;
  cfg->swav.nmb_prototypes = 10;
  cfg->unmix.enabled = false;
  cfg->optim.kind = UNMIX_OPTIM_LARC;
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

/* One TRAIN forward + backward of `rows` images (and output gradients dy) on the method's
 * network from fresh gradients: its outputs, input gradients, parameter gradients and BN
 * running statistics land in the caller's buffers. */
struct pass {
  float *y, *dx, *grad, *stats;
};
static void run_pass(struct unmix_method *m, const float *x, const float *dy, int rows, struct pass *p) {
  const struct unmix_backend *be = unmix_test_cpu();
  struct unmix_model *net = m->model;
  const int64_t out = unmix_model_out_dim(net), img = (int64_t)S * S * 3;
  struct unmix_ctx *ctx = unmix_ctx_create(be, "groups");
  const float *y = unmix_model_forward(net, ctx, x, rows, UNMIX_FWD_TRAIN, true);
  p->y = malloc(sizeof(float) * (size_t)(rows * out));
  memcpy(p->y, y, sizeof(float) * (size_t)(rows * out));
  p->dx = malloc(sizeof(float) * (size_t)(rows * img));
  unmix_model_zero_grad(net);
  unmix_model_backward_input(net, ctx, dy, p->dx);
  ck_assert_msg(net->bn_sync.status == UNMIX_OK, "%s", unmix_error_message());
  p->grad = malloc(sizeof(float) * (size_t)net->params.total);
  memcpy(p->grad, net->params.grad, sizeof(float) * (size_t)net->params.total);
  p->stats = malloc(sizeof(float) * (size_t)net->buffers.total);
  memcpy(p->stats, net->buffers.data, sizeof(float) * (size_t)net->buffers.total);
  unmix_ctx_destroy(ctx);
}
static void pass_free(struct pass *p) {
  free(p->y);
  free(p->dx);
  free(p->grad);
  free(p->stats);
}

/* 4 ranks x n images, groups of 2 ranks: rank r's BatchNorms see the 2n images of its group.
 * The groups' images differ in offset and contrast, so that the group statistics and the
 * all-rank ones are far apart. */
START_TEST(test_group_bn_equals_group_batch) {
  const int n = 3, B = n * W, GB = n * G;
  const int64_t img = (int64_t)S * S * 3;
  struct unmix_config cfg;
  swav_config(&cfg, B, G);
  struct unmix_method *grp = make(&cfg, g_comm);
  ck_assert_msg(grp->bn_comm != NULL && unmix_comm_world(grp->bn_comm) == G, "no process group of %d", G);
  swav_config(&cfg, GB, 0);
  struct unmix_method *ref = make(&cfg, NULL); /* one process, the group's batch */
  swav_config(&cfg, B, 0);
  struct unmix_method *all = make(&cfg, g_comm); /* the all-rank sync */
  ck_assert(all->bn_comm == NULL);
  const int64_t out = unmix_model_out_dim(grp->model), P = grp->model->params.total;
  float *x = malloc(sizeof(float) * (size_t)(B * img)), *dy = malloc(sizeof(float) * (size_t)(B * out));
  unmix_test_fill(x, (size_t)(B * img), 21, -1.0f, 1.0f);
  for (int i = 0; i < B; i++) {
    const int grp_of = i / GB;
    for (int64_t p = 0; p < img; p++) x[i * img + p] = (1.0f + 1.5f * grp_of) * x[i * img + p] + 2.0f * grp_of + 0.3f * i;
  }
  unmix_test_fill(dy, (size_t)(B * out), 22, -1.0f, 1.0f);
  const int64_t mine = (int64_t)R * n, first = (int64_t)(R - R % G) * n; /* sample offsets */
  struct pass pg, pr, pa;
  run_pass(grp, x + mine * img, dy + mine * out, n, &pg);
  run_pass(ref, x + first * img, dy + first * out, GB, &pr);
  run_pass(all, x + mine * img, dy + mine * out, n, &pa);
  const int64_t off = mine - first; /* this rank's rows within the group's batch */
  ck_assert_close("outputs vs one process over the group", pg.y, pr.y + off * out, (size_t)(n * out), 1e-5, 1e-4);
  /* input gradients, as a whole: per element, BN's backward subtracts batch means (cancellation),
   * and the sums run in another order (per rank, then in double over the group) through ~20
   * BatchNorms: 1e-5 measured, 1e-4 as test_comm_mpi allows for SwAV's gradients */
  double ex = unmix_nmse(pg.dx, pr.dx + off * img, (size_t)(n * img));
  ck_assert_msg(ex <= 1e-4, "rank %d: input gradients vs one process over the group: normalised difference %.3g", R,
                ex);
  const int64_t nb = grp->model->buffers.total;
  ck_assert_close("BN running statistics vs one process over the group", pg.stats, pr.stats, (size_t)nb, 1e-6, 1e-4);
  /* the loss sums over rows, so the group's parameter gradient is the sum over its ranks */
  ck_assert(unmix_comm_allreduce_f32(grp->bn_comm, pg.grad, P, UNMIX_COMM_HOST) == UNMIX_OK);
  double e = unmix_nmse(pg.grad, pr.grad, (size_t)P);
  ck_assert_msg(e <= 1e-4, "rank %d: group-summed parameter gradients vs one process: normalised difference %.3g", R,
                e);
  /* and the all-rank sync is a different normalisation */
  double ds = unmix_nmse(pa.stats, pg.stats, (size_t)nb), dyy = unmix_nmse(pa.y, pg.y, (size_t)(n * out));
  ck_assert_msg(ds > 1e-2 && dyy > 1e-2, "rank %d: all-rank SyncBN close to the group's (stats %.3g, outputs %.3g)", R,
                ds, dyy);
  pass_free(&pg);
  pass_free(&pr);
  pass_free(&pa);
  free(x);
  free(dy);
  unmix_method_destroy(grp);
  unmix_method_destroy(ref);
  unmix_method_destroy(all);
}
END_TEST

/* model.sync_bn_group must divide the world; the error names the key. A group equal to the
 * world is the all-rank sync (no sub-communicator), and one rank ignores the key. */
START_TEST(test_group_config_checked) {
  struct unmix_config cfg;
  swav_config(&cfg, 4 * W, 3);
  struct unmix_method *m = NULL;
  ck_assert(unmix_method_create(&cfg, unmix_test_cpu(), S, g_comm, &m) == UNMIX_ERR_CONFIG);
  ck_assert(m == NULL);
  ck_assert_msg(strstr(unmix_error_message(), "model.sync_bn_group = 3 does not divide the 4 ranks") != NULL, "%s",
                unmix_error_message());
  swav_config(&cfg, 4 * W, 8);
  ck_assert(unmix_method_create(&cfg, unmix_test_cpu(), S, g_comm, &m) == UNMIX_ERR_CONFIG);
  swav_config(&cfg, 4 * W, W);
  m = make(&cfg, g_comm);
  ck_assert(m->bn_comm == NULL && m->model->bn_sync.ctx == g_comm);
  unmix_method_destroy(m);
  swav_config(&cfg, 4 * W, 8);
  m = make(&cfg, NULL);
  ck_assert(m->bn_comm == NULL && m->model->bn_sync.allreduce_f64 == NULL);
  unmix_method_destroy(m);
  swav_config(&cfg, 4 * W, G);
  cfg.model.sync_bn = false; /* the key only shapes SyncBN */
  m = make(&cfg, g_comm);
  ck_assert(m->bn_comm == NULL && m->model->bn_sync.allreduce_f64 == NULL);
  unmix_method_destroy(m);
}
END_TEST

static Suite *groups_suite(void) {
  Suite *s = suite_create("comm-mpi4-groups");
  TCase *tc = tcase_create("ranks");
  tcase_set_timeout(tc, 300);
  tcase_add_unchecked_fixture(tc, open_comm, close_comm);
  tcase_add_test(tc, test_group_collectives);
  tcase_add_test(tc, test_group_bn_equals_group_batch);
  tcase_add_test(tc, test_group_config_checked);
  suite_add_tcase(s, tc);
  return s;
}
UNMIX_TEST_MAIN(groups_suite)
