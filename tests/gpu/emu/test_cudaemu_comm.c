/* The nccl communicator (comm_nccl.c: unique id through a file or over MPI, non-blocking init,
 * group calls, event waits, abort, process groups) executed for real: 2 ranks, each with its
 * own emulated CUDA device and the CUDA backend, exchanging device buffers through the emulated NCCL. Case "nccl"
 * forks its 2 ranks (file bootstrap); case "mpi" is run by ctest as `mpirun -np 2` (MPI bootstrap,
 * mpi+nccl). Built only in the UNMIX_CUDA=EMU build, where comm_nccl.c is compiled in. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/backend/backend.h"
#include "tests/support/testutil.h"

#include "core/comm/comm.h"

#define EXPECT(cond)                                                                                                  \
  do {                                                                                                                \
    if (!(cond)) {                                                                                                    \
      fprintf(stderr, "rank %d: line %d: %s (%s)\n", rank, __LINE__, #cond, unmix_error_message());                 \
      return 1;                                                                                                       \
    }                                                                                                                 \
  } while (0)

/* One rank: the communicator as `unmix train --comm nccl` opens it, without MPI (id_file) or
 * under mpirun (id_file NULL; rank -1: the launcher's). */
static int rank_main(int rank, const char *id_file, int peer_dies) {
  if (id_file) {
    char rs[8];
    snprintf(rs, sizeof rs, "%d", rank);
    setenv("UNMIX_RANK", rs, 1);
    setenv("UNMIX_WORLD_SIZE", "2", 1);
  }
  const struct unmix_backend *be = NULL;
  EXPECT(unmix_backend_get("cuda", &be) == UNMIX_OK);
  struct unmix_comm_options o;
  unmix_comm_options_init(&o);
  o.kind = UNMIX_COMM_NCCL;
  o.nccl_id_file = id_file;
  o.timeout_s = peer_dies ? 5 : 60;
  struct unmix_comm *c = NULL;
  EXPECT(unmix_comm_create(&o, &c) == UNMIX_OK);
  if (rank < 0) rank = unmix_comm_rank(c);
  EXPECT(unmix_comm_attach_backend(c, be) == UNMIX_OK);
  EXPECT(unmix_comm_world(c) == 2 && unmix_comm_rank(c) == rank);
  EXPECT(strcmp(unmix_comm_name(c), id_file ? "nccl(file)" : "mpi+nccl") == 0);
  if (peer_dies && rank == 1) _exit(0); /* dies after init, before the first collective */

  /* all-reduce of two device buffers at once (one NCCL group), then a barrier */
  enum { N = 1000, M = 7 };
  float h[N], g[M];
  for (int i = 0; i < N; i++) h[i] = (float)(i * (rank + 1));
  for (int i = 0; i < M; i++) g[i] = 0.5f * (float)rank + (float)i;
  float *d = be->alloc(N * sizeof(float)), *e = be->alloc(M * sizeof(float));
  EXPECT(d && e);
  be->memcpy_h2d(d, h, sizeof h);
  be->memcpy_h2d(e, g, sizeof g);
  void *bufs[2] = {d, e};
  const int64_t counts[2] = {N, M};
  unmix_status s = unmix_comm_allreduce_sum_many(c, bufs, counts, 2, UNMIX_COMM_F32, UNMIX_COMM_DEVICE);
  if (peer_dies) {
    EXPECT(s == UNMIX_ERR_COMM);         /* the dead peer is an error within the timeout, not a hang */
    EXPECT(unmix_comm_broken(c));
    EXPECT(unmix_comm_barrier(c) != UNMIX_OK); /* a broken communicator fails at once */
    unmix_comm_destroy(c);
    return 0;
  }
  EXPECT(s == UNMIX_OK);
  EXPECT(unmix_comm_barrier(c) == UNMIX_OK);
  be->memcpy_d2h(h, d, sizeof h);
  be->memcpy_d2h(g, e, sizeof g);
  for (int i = 0; i < N; i++) EXPECT(h[i] == (float)(3 * i));
  for (int i = 0; i < M; i++) EXPECT(g[i] == 0.5f + 2.0f * (float)i);

  /* broadcast from rank 1, all-gather of rows */
  int32_t b[3] = {rank, rank * 10, rank * 100};
  int32_t *db = be->alloc(sizeof b);
  be->memcpy_h2d(db, b, sizeof b);
  EXPECT(unmix_comm_broadcast(c, db, 3, UNMIX_COMM_I32, 1, UNMIX_COMM_DEVICE) == UNMIX_OK);
  be->memcpy_d2h(b, db, sizeof b);
  EXPECT(b[0] == 1 && b[1] == 10 && b[2] == 100);
  double row[2] = {rank + 0.25, rank + 0.75}, all[4];
  double *dr = be->alloc(sizeof row), *da = be->alloc(sizeof all);
  be->memcpy_h2d(dr, row, sizeof row);
  EXPECT(unmix_comm_allgather(c, dr, da, 2, UNMIX_COMM_F64, UNMIX_COMM_DEVICE) == UNMIX_OK);
  be->memcpy_d2h(all, da, sizeof all);
  EXPECT(all[0] == 0.25 && all[1] == 0.75 && all[2] == 1.25 && all[3] == 1.75);
  be->free(d), be->free(e), be->free(db), be->free(dr), be->free(da);

  /* process groups (SyncBN's model.sync_bn_group): each group is a second NCCL communicator
   * (its id all-gathered over c); groups of 1 keep every rank's data, a group of 2 sums */
  for (int group = 1; group <= 2; group++) {
    struct unmix_comm *gc = NULL;
    EXPECT(unmix_comm_split_groups(c, group, &gc) == UNMIX_OK);
    EXPECT(unmix_comm_world(gc) == group && unmix_comm_rank(gc) == rank % group);
    double v[2] = {1.0 + rank, 10.0 * rank}, *dv = be->alloc(sizeof v);
    be->memcpy_h2d(dv, v, sizeof v);
    EXPECT(unmix_comm_allreduce_f64(gc, dv, 2, UNMIX_COMM_DEVICE) == UNMIX_OK);
    be->memcpy_d2h(v, dv, sizeof v);
    EXPECT(group == 1 ? (v[0] == 1.0 + rank && v[1] == 10.0 * rank) : (v[0] == 3.0 && v[1] == 10.0));
    double hv[1] = {1.0}; /* host buffers: SyncBN's statistics */
    EXPECT(unmix_comm_allreduce_f64(gc, hv, 1, UNMIX_COMM_HOST) == UNMIX_OK);
    EXPECT(hv[0] == (double)group);
    be->free(dv);
    unmix_comm_destroy(gc);
  }
  EXPECT(unmix_comm_barrier(c) == UNMIX_OK); /* the parent still works */
  unmix_comm_destroy(c);
  return 0;
}

static void run_ranks(int peer_dies) {
  char *dir = unmix_test_tmpdir("cudaemu_comm");
  char id_file[1024], token[64];
  snprintf(id_file, sizeof id_file, "%s/nccl.id", dir);
  snprintf(token, sizeof token, "emu-%d-%d", (int)getpid(), peer_dies);
  setenv("UNMIX_NCCL_ID_TOKEN", token, 1);
  setenv("EMU_NCCL_TIMEOUT_S", "60", 0);
  fflush(NULL);
  pid_t pid[2];
  for (int r = 0; r < 2; r++) {
    pid[r] = fork();
    ck_assert_int_ge(pid[r], 0);
    if (pid[r] == 0) _exit(rank_main(r, id_file, peer_dies));
  }
  for (int done = 0; done < 2; done++) {
    int status = 0;
    pid_t p = waitpid(-1, &status, 0);
    ck_assert_msg(p == pid[0] || p == pid[1], "waitpid: %d", (int)p);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "rank %d failed (status 0x%x)", p == pid[0] ? 0 : 1,
                  status);
  }
  unmix_test_rmdir(dir);
  free(dir);
}

START_TEST(test_nccl_comm_collectives_two_ranks) { run_ranks(0); }
END_TEST
START_TEST(test_nccl_comm_dead_peer_fails_within_timeout) { run_ranks(1); }
END_TEST
/* This process is one of 2 mpirun ranks: the unique id goes over MPI. */
START_TEST(test_nccl_comm_under_mpirun) {
  if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMI_SIZE") && !getenv("PMIX_RANK")) {
    printf("SKIPPED (not started by mpirun; ctest runs this case as test_cudaemu_comm_mpi): test_nccl_comm_under_mpirun\n");
    return;
  }
  ck_assert_int_eq(rank_main(-1, NULL, 0), 0);
}
END_TEST

static Suite *cudaemu_comm_suite(void) {
  Suite *s = suite_create("cudaemu_comm");
  TCase *tc = tcase_create("nccl");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_nccl_comm_collectives_two_ranks);
  tcase_add_test(tc, test_nccl_comm_dead_peer_fails_within_timeout);
  suite_add_tcase(s, tc);
  tc = tcase_create("mpi");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_nccl_comm_under_mpirun);
  suite_add_tcase(s, tc);
  return s;
}
UNMIX_TEST_MAIN(cudaemu_comm_suite)
