/* The mpi communicator: MPI ranks on host buffers (compiled only when CMake finds MPI).
 * Each collective is started non-blocking (MPI_Iallreduce, MPI_Ibcast, MPI_Iallgather,
 * MPI_Ibarrier) on a private duplicate of MPI_COMM_WORLD with MPI_ERRORS_RETURN, then polled
 * with MPI_Testall until it completes or the deadline passes: a dead or hung peer makes the
 * call return UNMIX_ERR_COMM after the timeout instead of blocking forever. MPI cannot cancel
 * a collective, so after a timeout the communicator is broken and MPI_Finalize is skipped at
 * exit (it would wait for the peer); the launcher then tears the job down. */
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/comm/comm_internal.h"

struct mpi_impl {
  MPI_Comm comm;
  bool blocking; /* UNMIX_COMM_MPI_BLOCKING=1 (`unmix bench comm --blocking`): plain blocking calls, no timeout */
};

static bool g_init_by_us = false;
static bool g_any_broken = false;

static void finalize_at_exit(void) {
  int fin = 0;
  MPI_Finalized(&fin);
  if (!fin && g_init_by_us && !g_any_broken) MPI_Finalize();
}

static unmix_status mpi_fail(struct unmix_comm *c, int rc, const char *op) {
  char msg[MPI_MAX_ERROR_STRING] = "";
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  return unmix_error_set(UNMIX_ERR_COMM, "rank %d of %d: MPI %s failed: %s", c->rank, c->world, op, msg);
}

static MPI_Datatype mpi_type(enum unmix_comm_dtype t) {
  switch (t) {
    case UNMIX_COMM_F32: return MPI_FLOAT;
    case UNMIX_COMM_F64: return MPI_DOUBLE;
    case UNMIX_COMM_I32: return MPI_INT32_T;
    case UNMIX_COMM_BYTE: return MPI_BYTE;
  }
  return MPI_BYTE;
}

/* Polls the requests until all complete or the communicator's timeout passes. */
static unmix_status wait_all(struct unmix_comm *c, MPI_Request *req, int n, const char *op, int64_t bytes) {
  const double t0 = unmix_comm_clock(), deadline = t0 + c->timeout_s;
  for (;;) {
    int done = 0;
    int rc = MPI_Testall(n, req, &done, MPI_STATUSES_IGNORE);
    if (rc != MPI_SUCCESS) return mpi_fail(c, rc, op);
    if (done) return UNMIX_OK;
    double now = unmix_comm_clock();
    if (now > deadline)
      return unmix_error_set(UNMIX_ERR_COMM,
                             "rank %d of %d: %s of %lld bytes timed out after %.1f s: a peer rank died, hangs or "
                             "stopped calling collectives (timeout: UNMIX_COMM_TIMEOUT / --comm-timeout)",
                             c->rank, c->world, op, (long long)bytes, now - t0);
    unmix_comm_poll_pause(now - t0);
  }
}

#define CHUNK ((int64_t)1 << 30) /* elements per request: MPI counts are int */

static unmix_status mpi_allreduce(struct unmix_comm *c, void *impl, void *const *bufs, const int64_t *counts,
                                  int nbuf, enum unmix_comm_dtype t) {
  struct mpi_impl *m = impl;
  const int es = unmix_comm_dtype_size(t);
  int nreq = 0;
  int64_t bytes = 0;
  for (int i = 0; i < nbuf; i++) nreq += (int)((counts[i] + CHUNK - 1) / CHUNK);
  MPI_Request *req = unmix_xcalloc((size_t)(nreq > 0 ? nreq : 1), sizeof *req);
  int r = 0;
  unmix_status s = UNMIX_OK;
  for (int i = 0; i < nbuf && s == UNMIX_OK; i++) {
    for (int64_t off = 0; off < counts[i]; off += CHUNK) {
      int64_t n = counts[i] - off < CHUNK ? counts[i] - off : CHUNK;
      if (m->blocking) {
        int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)bufs[i] + off * es, (int)n, mpi_type(t), MPI_SUM, m->comm);
        if (rc != MPI_SUCCESS) s = mpi_fail(c, rc, "Allreduce");
        continue;
      }
      int rc = MPI_Iallreduce(MPI_IN_PLACE, (char *)bufs[i] + off * es, (int)n, mpi_type(t), MPI_SUM, m->comm, &req[r]);
      if (rc != MPI_SUCCESS) {
        s = mpi_fail(c, rc, "Iallreduce");
        break;
      }
      r++;
      bytes += n * es;
    }
  }
  if (s == UNMIX_OK) s = wait_all(c, req, r, "all-reduce", bytes);
  free(req);
  return s;
}

static unmix_status mpi_broadcast(struct unmix_comm *c, void *impl, void *buf, int64_t count, enum unmix_comm_dtype t,
                                  int root) {
  struct mpi_impl *m = impl;
  UNMIX_REQUIRE(count <= INT_MAX, "broadcast of %lld elements", (long long)count);
  MPI_Request req;
  int rc = MPI_Ibcast(buf, (int)count, mpi_type(t), root, m->comm, &req);
  if (rc != MPI_SUCCESS) return mpi_fail(c, rc, "Ibcast");
  return wait_all(c, &req, 1, "broadcast", count * unmix_comm_dtype_size(t));
}

static unmix_status mpi_allgather(struct unmix_comm *c, void *impl, const void *send, void *recv, int64_t count,
                                  enum unmix_comm_dtype t) {
  struct mpi_impl *m = impl;
  UNMIX_REQUIRE(count <= INT_MAX, "all-gather of %lld elements", (long long)count);
  MPI_Request req;
  int rc = MPI_Iallgather(send, (int)count, mpi_type(t), recv, (int)count, mpi_type(t), m->comm, &req);
  if (rc != MPI_SUCCESS) return mpi_fail(c, rc, "Iallgather");
  return wait_all(c, &req, 1, "all-gather", count * unmix_comm_dtype_size(t) * c->world);
}

static unmix_status mpi_barrier(struct unmix_comm *c, void *impl) {
  struct mpi_impl *m = impl;
  MPI_Request req;
  int rc = MPI_Ibarrier(m->comm, &req);
  if (rc != MPI_SUCCESS) return mpi_fail(c, rc, "Ibarrier");
  return wait_all(c, &req, 1, "barrier", 0);
}

/* MPI_Comm_split is blocking (no deadline): it runs once, at set-up, right after the
 * communicator's other set-up collectives. */
static unmix_status mpi_split(struct unmix_comm *c, void *impl, int group, struct unmix_comm *child,
                              void **child_impl) {
  struct mpi_impl *m = impl;
  struct mpi_impl *g = unmix_xcalloc(1, sizeof *g);
  int rc = MPI_Comm_split(m->comm, c->rank / group, c->rank % group, &g->comm);
  if (rc != MPI_SUCCESS) {
    free(g);
    return mpi_fail(c, rc, "Comm_split");
  }
  MPI_Comm_set_errhandler(g->comm, MPI_ERRORS_RETURN);
  g->blocking = m->blocking;
  int r = -1, w = 0;
  MPI_Comm_rank(g->comm, &r);
  MPI_Comm_size(g->comm, &w);
  UNMIX_REQUIRE(r == child->rank && w == child->world, "MPI_Comm_split gave rank %d of %d, expected %d of %d", r, w,
                child->rank, child->world);
  *child_impl = g;
  return UNMIX_OK;
}

static void mpi_destroy(struct unmix_comm *c, void *impl, bool broken) {
  struct mpi_impl *m = impl;
  (void)c;
  if (broken) g_any_broken = true; /* a peer may be gone: nothing collective from here on */
  else MPI_Comm_free(&m->comm);
  free(m);
}

static const struct unmix_comm_transport g_mpi = {
    /* .name      = */ "mpi",
    /* .allreduce = */ mpi_allreduce,
    /* .broadcast = */ mpi_broadcast,
    /* .allgather = */ mpi_allgather,
    /* .barrier   = */ mpi_barrier,
    /* .split     = */ mpi_split,
    /* .destroy   = */ mpi_destroy,
};

unmix_status unmix_comm_mpi_open(struct unmix_comm *c) {
  int inited = 0, fin = 0;
  MPI_Finalized(&fin);
  if (fin) return unmix_error_set(UNMIX_ERR_COMM, "MPI was finalised already in this process");
  MPI_Initialized(&inited);
  if (!inited) {
    int provided = 0;
    int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return unmix_error_set(UNMIX_ERR_COMM, "MPI_Init_thread failed (code %d)", rc);
    g_init_by_us = true;
    atexit(finalize_at_exit);
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  struct mpi_impl *m = unmix_xcalloc(1, sizeof *m);
  int rc = MPI_Comm_dup(MPI_COMM_WORLD, &m->comm);
  if (rc != MPI_SUCCESS) {
    free(m);
    return mpi_fail(c, rc, "Comm_dup");
  }
  MPI_Comm_set_errhandler(m->comm, MPI_ERRORS_RETURN);
  const char *blk = getenv("UNMIX_COMM_MPI_BLOCKING");
  m->blocking = blk && !strcmp(blk, "1");
  MPI_Comm_rank(m->comm, &c->rank);
  MPI_Comm_size(m->comm, &c->world);
  MPI_Comm local;
  rc = MPI_Comm_split_type(m->comm, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &local);
  if (rc == MPI_SUCCESS) {
    MPI_Comm_rank(local, &c->local_rank);
    MPI_Comm_size(local, &c->local_world);
    MPI_Comm_free(&local);
  } else {
    c->local_rank = c->rank;
    c->local_world = c->world;
  }
  c->host = &g_mpi;
  c->host_impl = m;
  return UNMIX_OK;
}
