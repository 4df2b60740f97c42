/* The communicator in one process (no launcher; label cpu): the NULL and `single`
 * communicators (rank 0 of 1, collectives no-ops, all-gather a copy), option parsing and its
 * errors, what a build without NCCL says when asked for it, GPU binding with one rank, and the
 * SyncBatchNorm path of the graph (model->bn_sync) with an identity reduction: forward,
 * backward, running statistics and the BN replay must equal plain BatchNorm, which is what
 * one rank holding the whole batch computes. The multi-rank cases are test_comm_mpi.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/comm/comm.h"
#include "core/io/manifest.h"
#include "core/nn/model.h"
#include "tests/support/testutil.h"

START_TEST(test_null_and_single) {
  ck_assert_int_eq(unmix_comm_rank(NULL), 0);
  ck_assert_int_eq(unmix_comm_world(NULL), 1);
  ck_assert_str_eq(unmix_comm_name(NULL), "single");
  float a[3] = {1, 2, 3}, b[3] = {0};
  ck_assert(unmix_comm_allreduce_f32(NULL, a, 3, UNMIX_COMM_HOST) == UNMIX_OK);
  ck_assert_float_eq(a[2], 3.0f);
  ck_assert(unmix_comm_allgather(NULL, a, b, 3, UNMIX_COMM_F32, UNMIX_COMM_HOST) == UNMIX_OK);
  ck_assert_float_eq(b[1], 2.0f);
  ck_assert(unmix_comm_barrier(NULL) == UNMIX_OK);

  struct unmix_comm_options o;
  unmix_comm_options_init(&o);
  o.kind = UNMIX_COMM_SINGLE;
  o.timeout_s = 7;
  struct unmix_comm *c = NULL;
  ck_assert_msg(unmix_comm_create(&o, &c) == UNMIX_OK, "%s", unmix_error_message());
  ck_assert_msg(unmix_comm_attach_backend(c, unmix_test_cpu()) == UNMIX_OK, "%s", unmix_error_message());
  ck_assert_int_eq(unmix_comm_rank(c), 0);
  ck_assert_int_eq(unmix_comm_world(c), 1);
  ck_assert_int_eq(unmix_comm_local_world(c), 1);
  ck_assert_str_eq(unmix_comm_name(c), "single");
  ck_assert_double_eq(unmix_comm_timeout(c), 7.0);
  ck_assert_int_eq(unmix_comm_bucket_bytes(c), 25 << 20);
  double d = 2.5;
  int32_t i = 9;
  ck_assert(unmix_comm_allreduce_f64(c, &d, 1, UNMIX_COMM_HOST) == UNMIX_OK);
  ck_assert(unmix_comm_bcast_i32(c, &i, 1, 0, UNMIX_COMM_HOST) == UNMIX_OK);
  ck_assert(d == 2.5 && i == 9);
  float *dev = unmix_test_cpu()->alloc(sizeof(float) * 3);
  ck_assert(unmix_comm_allgather_rows(c, a, 1, 3, dev, UNMIX_COMM_DEVICE) == UNMIX_OK);
  ck_assert_float_eq(dev[0], 1.0f);
  unmix_test_cpu()->free(dev);
  ck_assert_str_eq(unmix_comm_bind_local_gpu(c), "one rank on this host: no GPU binding");
  unmix_comm_destroy(c);
}
END_TEST

START_TEST(test_auto_without_launcher_is_single) {
  unsetenv("OMPI_COMM_WORLD_SIZE");
  unsetenv("PMI_SIZE");
  unsetenv("PMIX_RANK");
  unsetenv("UNMIX_NCCL_ID_FILE");
  struct unmix_comm *c = NULL;
  ck_assert_msg(unmix_comm_create(NULL, &c) == UNMIX_OK, "%s", unmix_error_message());
  ck_assert_int_eq(unmix_comm_world(c), 1);
  ck_assert_str_eq(unmix_comm_name(c), "single");
  ck_assert_double_eq(unmix_comm_timeout(c), 300.0);
  unmix_comm_destroy(c);
}
END_TEST

START_TEST(test_options_errors) {
  enum unmix_comm_kind k;
  ck_assert(unmix_comm_kind_parse("mpi", &k) == UNMIX_OK && k == UNMIX_COMM_MPI);
  ck_assert(unmix_comm_kind_parse("gloo", &k) == UNMIX_ERR_ARG);
  ck_assert_msg(strstr(unmix_error_message(), "'gloo'") != NULL, "%s", unmix_error_message());
  double t;
  ck_assert(unmix_comm_parse_timeout("2.5", &t) == UNMIX_OK && t == 2.5);
  ck_assert(unmix_comm_parse_timeout("0", &t) == UNMIX_ERR_ARG);
  ck_assert(unmix_comm_parse_timeout("5s", &t) == UNMIX_ERR_ARG);
  ck_assert(unmix_comm_parse_timeout("inf", &t) == UNMIX_ERR_ARG);
  struct unmix_comm *c = NULL;
  setenv("UNMIX_COMM_TIMEOUT", "soon", 1);
  ck_assert(unmix_comm_create(NULL, &c) == UNMIX_ERR_ARG);
  ck_assert_msg(strstr(unmix_error_message(), "UNMIX_COMM_TIMEOUT") != NULL, "%s", unmix_error_message());
  setenv("UNMIX_COMM_TIMEOUT", "42", 1);
  ck_assert(unmix_comm_create(NULL, &c) == UNMIX_OK);
  ck_assert_double_eq(unmix_comm_timeout(c), 42.0);
  unmix_comm_destroy(c);
  unsetenv("UNMIX_COMM_TIMEOUT");
  setenv("UNMIX_COMM_BUCKET_MB", "0", 1);
  ck_assert(unmix_comm_create(NULL, &c) == UNMIX_ERR_ARG);
  unsetenv("UNMIX_COMM_BUCKET_MB");
  /* a file-bootstrapped world: needs NCCL, and ranks from the environment */
  setenv("UNMIX_NCCL_ID_FILE", "/tmp/unmix-test-nccl.id", 1);
  setenv("UNMIX_WORLD_SIZE", "2", 1);
  unmix_status s = unmix_comm_create(NULL, &c);
#ifdef UNMIX_WITH_NCCL
  ck_assert_msg(s == UNMIX_ERR_ARG, "%s", unmix_error_message()); /* no UNMIX_RANK */
  ck_assert_msg(strstr(unmix_error_message(), "UNMIX_RANK") != NULL, "%s", unmix_error_message());
#else
  ck_assert_msg(s == UNMIX_ERR_UNSUPPORTED, "%s", unmix_error_message());
  ck_assert_msg(strstr(unmix_error_message(), "no NCCL") != NULL, "%s", unmix_error_message());
#endif
  unsetenv("UNMIX_NCCL_ID_FILE");
  unsetenv("UNMIX_WORLD_SIZE");
  struct unmix_comm_options o;
  unmix_comm_options_init(&o);
  o.kind = UNMIX_COMM_NCCL;
  s = unmix_comm_create(&o, &c);
#ifdef UNMIX_WITH_NCCL
  (void)s; /* needs a GPU and ranks: test_comm_mpi on a GPU machine */
  if (s == UNMIX_OK) {
    ck_assert(unmix_comm_attach_backend(c, unmix_test_cpu()) == UNMIX_ERR_CONFIG);
    unmix_comm_destroy(c);
  }
#else
  ck_assert(s == UNMIX_ERR_UNSUPPORTED);
#endif
}
END_TEST

/* ---- SyncBatchNorm path with one rank ---------------------------------------------------- */
static int g_calls;
static unmix_status identity(void *ctx, double *buf, int64_t n) {
  (void)ctx;
  (void)buf;
  (void)n;
  g_calls++;
  return UNMIX_OK;
}

static struct unmix_model *tiny(enum unmix_head head) {
  struct unmix_config cfg;
  unmix_config_init_defaults(&cfg);
  cfg.model.arch = UNMIX_ARCH_RESNET18_BOTTLENECK;
  cfg.model.stem = UNMIX_STEM_SWAV_CIFAR;
  cfg.model.width = 4;
  cfg.model.bn_splits = 1;
  cfg.model.head = head;
  cfg.model.dim = 16;
  cfg.model.hidden = 32;
  cfg.swav.nmb_prototypes = 10;
  struct unmix_model_spec spec;
  unmix_model_spec_from_config(&cfg, 16, &spec);
  struct unmix_model *m = NULL;
  ck_assert_msg(unmix_model_create(&spec, unmix_test_cpu(), 3, &m) == UNMIX_OK, "%s", unmix_error_message());
  return m;
}

START_TEST(test_sync_bn_path_equals_plain_bn) {
  const struct unmix_backend *be = unmix_test_cpu();
  struct unmix_model *a = tiny(UNMIX_HEAD_SWAV), *b = tiny(UNMIX_HEAD_SWAV);
  b->bn_sync.allreduce_f64 = identity;
  const int n = 6, S = 16, out = unmix_model_out_dim(a);
  float *x = malloc(sizeof(float) * n * S * S * 3), *dy = malloc(sizeof(float) * n * out);
  unmix_test_fill(x, (size_t)n * S * S * 3, 11, -1.0f, 2.0f);
  for (int i = 0; i < n; i++) /* per-sample offsets: features that differ across the batch */
    for (int p = 0; p < S * S * 3; p++) x[i * S * S * 3 + p] += 0.7f * (float)i - 1.5f;
  unmix_test_fill(dy, (size_t)n * out, 12, -1.0f, 1.0f);
  struct unmix_ctx *ca = unmix_ctx_create(be, "a"), *cb = unmix_ctx_create(be, "b");
  g_calls = 0;
  const float *ya = unmix_model_forward(a, ca, x, n, UNMIX_FWD_TRAIN, true);
  const float *yb = unmix_model_forward(b, cb, x, n, UNMIX_FWD_TRAIN, true);
  ck_assert_int_gt(g_calls, 10);
  ck_assert_close("SyncBN forward vs BN", yb, ya, (size_t)n * out, 1e-6, 1e-4);
  unmix_model_zero_grad(a);
  unmix_model_zero_grad(b);
  unmix_model_backward(a, ca, dy);
  unmix_model_backward(b, cb, dy);
  double e = unmix_nmse(b->params.grad, a->params.grad, (size_t)a->params.total);
  ck_assert_msg(e <= 1e-5, "SyncBN parameter gradients vs BN: normalised difference %.3g", e);
  unmix_model_replay_bn_updates(a, ca);
  unmix_model_replay_bn_updates(b, cb);
  ck_assert_close("SyncBN running stats (after a replay) vs BN", b->buffers.data, a->buffers.data,
                  (size_t)a->buffers.total, 1e-6, 1e-5);
  ck_assert(b->bn_sync.status == UNMIX_OK);
  ck_assert_int_eq(a->bn_batches_tracked, b->bn_batches_tracked);
  unmix_ctx_destroy(ca);
  unmix_ctx_destroy(cb);
  free(x);
  free(dy);
  unmix_model_destroy(a);
  unmix_model_destroy(b);
}
END_TEST

static unmix_status failing(void *ctx, double *buf, int64_t n) {
  (void)ctx;
  (void)buf;
  (void)n;
  g_calls++;
  return unmix_error_set(UNMIX_ERR_COMM, "peer gone (test)");
}

START_TEST(test_sync_bn_failure_is_kept) {
  const struct unmix_backend *be = unmix_test_cpu();
  struct unmix_model *m = tiny(UNMIX_HEAD_LINEAR);
  m->bn_sync.allreduce_f64 = failing;
  const int n = 4, S = 16;
  float *x = malloc(sizeof(float) * n * S * S * 3);
  unmix_test_fill(x, (size_t)n * S * S * 3, 13, -1.0f, 1.0f);
  struct unmix_ctx *c = unmix_ctx_create(be, "f");
  g_calls = 0;
  unmix_model_forward(m, c, x, n, UNMIX_FWD_TRAIN, false);
  ck_assert_int_eq(g_calls, 1); /* the first failure sticks; later layers do not call again */
  ck_assert(m->bn_sync.status == UNMIX_ERR_COMM);
  unmix_ctx_destroy(c);
  free(x);
  unmix_model_destroy(m);
}
END_TEST

static Suite *dist_suite(void) {
  Suite *s = suite_create("comm");
  TCase *tc = tcase_create("single");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_null_and_single);
  tcase_add_test(tc, test_auto_without_launcher_is_single);
  tcase_add_test(tc, test_options_errors);
  tcase_add_test(tc, test_sync_bn_path_equals_plain_bn);
  tcase_add_test(tc, test_sync_bn_failure_is_kept);
  suite_add_tcase(s, tc);
  return s;
}
UNMIX_TEST_MAIN(dist_suite)
