/* The nccl communicator: collectives on the CUDA backend's device buffers through NCCL, on
 * the backend's own stream (so they are ordered after the kernels that produced the data).
 * Compiled only with CUDA, NCCL and MPI; the one file of the dist layer that uses CUDA types.
 *
 * Bootstrap: rank 0's ncclUniqueId goes to the others over the host transport (MPI), or
 * through a shared file (UNMIX_NCCL_ID_FILE / --nccl-id-file) for launchers without MPI:
 * rank 0 writes it atomically (temp file + rename) with a job token (UNMIX_NCCL_ID_TOKEN, or
 * SLURM_JOB_ID.SLURM_STEP_ID), the others poll for a file with their token (without a token:
 * one written after they started, less two minutes) until the timeout.
 *
 * Failures: the communicator is non-blocking (ncclConfig_t.blocking = 0). Every operation
 * polls ncclCommGetAsyncError while the call is in progress, then a CUDA event recorded after
 * the collective, until the deadline; at the deadline (a dead or hung peer) the communicator is
 * aborted with ncclCommAbort, which releases the stuck kernels, and UNMIX_ERR_COMM returned.
 *
 * NOT RUN on this project's CPU-only machines: it compiles and links with -Werror there; its
 * runtime check is the NCCL step of tools/device-check.sh on a GPU machine. */
#include <cuda_runtime.h>
#include <errno.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/backend/cuda/cuda_backend.h"
#include "core/comm/comm_internal.h"

#define ID_MAGIC "UNMIXNCCLID1"

struct nccl_impl {
  ncclComm_t comm;
  cudaStream_t stream;
  cudaEvent_t done;
  int32_t *scratch;      /* barrier */
  char id_file[1024];    /* rank 0 removes it at the end */
};

static ncclDataType_t nccl_type(enum unmix_comm_dtype t) {
  switch (t) {
    case UNMIX_COMM_F32: return ncclFloat32;
    case UNMIX_COMM_F64: return ncclFloat64;
    case UNMIX_COMM_I32: return ncclInt32;
    case UNMIX_COMM_BYTE: return ncclUint8;
  }
  return ncclUint8;
}

static unmix_status nccl_fail(struct unmix_comm *c, struct nccl_impl *n, ncclResult_t r, const char *op) {
  const char *last = n && n->comm ? ncclGetLastError(n->comm) : "";
  return unmix_error_set(UNMIX_ERR_COMM, "rank %d of %d: NCCL %s failed: %s%s%s", c->rank, c->world, op,
                         ncclGetErrorString(r), last && *last ? ": " : "", last ? last : "");
}

static unmix_status abort_comm(struct nccl_impl *n) {
  if (n->comm) ncclCommAbort(n->comm);
  n->comm = NULL;
  return UNMIX_ERR_COMM;
}

/* Polls until a non-blocking call has been issued (ncclInProgress -> ncclSuccess). */
static unmix_status settle(struct unmix_comm *c, struct nccl_impl *n, ncclResult_t r, const char *op, double t0) {
  const double deadline = t0 + c->timeout_s;
  while (r == ncclInProgress) {
    double now = unmix_comm_clock();
    if (now > deadline) {
      unmix_error_set(UNMIX_ERR_COMM, "rank %d of %d: NCCL %s still in progress after %.1f s: a peer rank died or "
                                      "hangs (timeout: UNMIX_COMM_TIMEOUT / --comm-timeout)", c->rank, c->world, op,
                      now - t0);
      return abort_comm(n);
    }
    unmix_comm_poll_pause(now - t0);
    if (ncclCommGetAsyncError(n->comm, &r) != ncclSuccess) r = ncclInternalError;
  }
  if (r != ncclSuccess) {
    unmix_status s = nccl_fail(c, n, r, op);
    abort_comm(n);
    return s;
  }
  return UNMIX_OK;
}

/* Waits for the collective(s) just issued on the stream, with the deadline. */
static unmix_status wait_done(struct unmix_comm *c, struct nccl_impl *n, const char *op, int64_t bytes, double t0) {
  cudaError_t e = cudaEventRecord(n->done, n->stream);
  if (e != cudaSuccess)
    return unmix_error_set(UNMIX_ERR_DEVICE, "rank %d: cudaEventRecord after NCCL %s: %s", c->rank, op,
                           cudaGetErrorString(e));
  const double deadline = t0 + c->timeout_s;
  for (;;) {
    e = cudaEventQuery(n->done);
    if (e == cudaSuccess) return UNMIX_OK;
    if (e != cudaErrorNotReady)
      return unmix_error_set(UNMIX_ERR_DEVICE, "rank %d: CUDA error during NCCL %s: %s", c->rank, op,
                             cudaGetErrorString(e));
    ncclResult_t ar = ncclSuccess;
    if (ncclCommGetAsyncError(n->comm, &ar) == ncclSuccess && ar != ncclSuccess && ar != ncclInProgress) {
      unmix_status s = nccl_fail(c, n, ar, op);
      abort_comm(n);
      return s;
    }
    double now = unmix_comm_clock();
    if (now > deadline) {
      unmix_error_set(UNMIX_ERR_COMM, "rank %d of %d: NCCL %s of %lld bytes timed out after %.1f s: a peer rank died, "
                                      "hangs or stopped calling collectives (timeout: UNMIX_COMM_TIMEOUT / "
                                      "--comm-timeout)", c->rank, c->world, op, (long long)bytes, now - t0);
      return abort_comm(n);
    }
    unmix_comm_poll_pause(now - t0);
  }
}

static unmix_status usable(struct unmix_comm *c, struct nccl_impl *n) {
  if (!n->comm) return unmix_error_set(UNMIX_ERR_COMM, "rank %d: the NCCL communicator was aborted", c->rank);
  return UNMIX_OK;
}

static unmix_status nccl_allreduce(struct unmix_comm *c, void *impl, void *const *bufs, const int64_t *counts, int nbuf,
                                   enum unmix_comm_dtype t) {
  struct nccl_impl *n = impl;
  UNMIX_TRY(usable(c, n));
  const double t0 = unmix_comm_clock();
  int64_t bytes = 0;
  ncclResult_t r = ncclGroupStart();
  for (int i = 0; i < nbuf && (r == ncclSuccess || r == ncclInProgress); i++) {
    r = ncclAllReduce(bufs[i], bufs[i], (size_t)counts[i], nccl_type(t), ncclSum, n->comm, n->stream);
    bytes += counts[i] * unmix_comm_dtype_size(t);
  }
  ncclResult_t g = ncclGroupEnd();
  if (r == ncclSuccess) r = g;
  UNMIX_TRY(settle(c, n, r, "all-reduce", t0));
  return wait_done(c, n, "all-reduce", bytes, t0);
}

static unmix_status nccl_broadcast(struct unmix_comm *c, void *impl, void *buf, int64_t count, enum unmix_comm_dtype t,
                                   int root) {
  struct nccl_impl *n = impl;
  UNMIX_TRY(usable(c, n));
  const double t0 = unmix_comm_clock();
  ncclResult_t r = ncclBroadcast(buf, buf, (size_t)count, nccl_type(t), root, n->comm, n->stream);
  UNMIX_TRY(settle(c, n, r, "broadcast", t0));
  return wait_done(c, n, "broadcast", count * unmix_comm_dtype_size(t), t0);
}

static unmix_status nccl_allgather(struct unmix_comm *c, void *impl, const void *send, void *recv, int64_t count,
                                   enum unmix_comm_dtype t) {
  struct nccl_impl *n = impl;
  UNMIX_TRY(usable(c, n));
  const double t0 = unmix_comm_clock();
  ncclResult_t r = ncclAllGather(send, recv, (size_t)count, nccl_type(t), n->comm, n->stream);
  UNMIX_TRY(settle(c, n, r, "all-gather", t0));
  return wait_done(c, n, "all-gather", count * unmix_comm_dtype_size(t) * c->world, t0);
}

static unmix_status nccl_barrier(struct unmix_comm *c, void *impl) {
  struct nccl_impl *n = impl;
  UNMIX_TRY(usable(c, n));
  const double t0 = unmix_comm_clock();
  ncclResult_t r = ncclAllReduce(n->scratch, n->scratch, 1, ncclInt32, ncclSum, n->comm, n->stream);
  UNMIX_TRY(settle(c, n, r, "barrier", t0));
  return wait_done(c, n, "barrier", 4, t0);
}

static void nccl_destroy(struct unmix_comm *c, void *impl, bool broken) {
  struct nccl_impl *n = impl;
  if (n->comm && !broken) {
    /* A non-blocking communicator is finalised (its pending work flushed) before it is
     * destroyed; a finalise that errs or outlasts the timeout ends in an abort. */
    ncclResult_t r = ncclCommFinalize(n->comm);
    const double t0 = unmix_comm_clock();
    while (r == ncclInProgress) {
      if (unmix_comm_clock() - t0 > c->timeout_s) break;
      unmix_comm_poll_pause(unmix_comm_clock() - t0);
      if (ncclCommGetAsyncError(n->comm, &r) != ncclSuccess) r = ncclInternalError;
    }
    broken = r != ncclSuccess;
    if (!broken) ncclCommDestroy(n->comm);
  }
  if (n->comm && broken) ncclCommAbort(n->comm);
  if (n->scratch) cudaFree(n->scratch);
  if (n->done) cudaEventDestroy(n->done);
  if (c->rank == 0 && n->id_file[0]) unlink(n->id_file);
  free(n);
}

/* The NCCL communicator of c's c->world ranks from `id` (this rank is c->rank), non-blocking,
 * on `stream`, with its event and barrier scratch. */
static unmix_status comm_init(struct unmix_comm *c, cudaStream_t stream, const ncclUniqueId *id,
                              struct nccl_impl **out) {
  struct nccl_impl *n = unmix_xcalloc(1, sizeof *n);
  n->stream = stream;
  cudaError_t e = cudaEventCreateWithFlags(&n->done, cudaEventDisableTiming);
  if (e == cudaSuccess) e = cudaMalloc((void **)&n->scratch, sizeof(int32_t));
  if (e == cudaSuccess) e = cudaMemset(n->scratch, 0, sizeof(int32_t)); /* the barrier sums it: 0 + 0 stays 0 */
  if (e != cudaSuccess) {
    unmix_status s = unmix_error_set(UNMIX_ERR_DEVICE, "NCCL communicator set-up: %s", cudaGetErrorString(e));
    nccl_destroy(c, n, true);
    return s;
  }
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  const double t0 = unmix_comm_clock();
  ncclResult_t r = ncclCommInitRankConfig(&n->comm, c->world, *id, c->rank, &config);
  if (r != ncclSuccess && r != ncclInProgress) {
    unmix_status s = nccl_fail(c, NULL, r, "CommInitRank");
    n->comm = NULL;
    nccl_destroy(c, n, true);
    return s;
  }
  if (r == ncclInProgress && ncclCommGetAsyncError(n->comm, &r) != ncclSuccess) r = ncclInternalError;
  unmix_status s = settle(c, n, r, "CommInitRank", t0);
  if (s != UNMIX_OK) {
    nccl_destroy(c, n, true);
    return s;
  }
  *out = n;
  return UNMIX_OK;
}

/* A process group is a second NCCL communicator (ncclCommSplit would need NCCL >= 2.18, and
 * the emulated NCCL of the EMU build has only ncclCommInitRankConfig): the group's first rank
 * makes a unique id, every rank's id is all-gathered over c, and each rank joins its group's
 * communicator as rank c->rank % group, on the same stream. */
static unmix_status nccl_split(struct unmix_comm *c, void *impl, int group, struct unmix_comm *child,
                               void **child_impl) {
  struct nccl_impl *n = impl;
  UNMIX_TRY(usable(c, n));
  ncclUniqueId mine;
  memset(&mine, 0, sizeof mine);
  if (child->rank == 0) {
    ncclResult_t r = ncclGetUniqueId(&mine);
    if (r != ncclSuccess) return nccl_fail(c, n, r, "GetUniqueId (process group)");
  }
  ncclUniqueId *all = unmix_xcalloc((size_t)c->world, sizeof *all);
  unmix_status s = unmix_comm_allgather(c, &mine, all, (int64_t)sizeof mine, UNMIX_COMM_BYTE, UNMIX_COMM_HOST);
  struct nccl_impl *g = NULL;
  if (s == UNMIX_OK) s = comm_init(child, n->stream, &all[c->rank - c->rank % group], &g);
  free(all);
  UNMIX_TRY(s);
  *child_impl = g;
  return UNMIX_OK;
}

static const struct unmix_comm_transport g_nccl = {
    /* .name      = */ "nccl",
    /* .allreduce = */ nccl_allreduce,
    /* .broadcast = */ nccl_broadcast,
    /* .allgather = */ nccl_allgather,
    /* .barrier   = */ nccl_barrier,
    /* .split     = */ nccl_split,
    /* .destroy   = */ nccl_destroy,
};

/* ---- the unique id through a shared file --------------------------------------------------- */
static void job_token(char *buf, size_t len) {
  const char *t = getenv("UNMIX_NCCL_ID_TOKEN");
  const char *job = getenv("SLURM_JOB_ID"), *step = getenv("SLURM_STEP_ID");
  if (t) snprintf(buf, len, "%s", t);
  else if (job) snprintf(buf, len, "%s.%s", job, step ? step : "");
  else buf[0] = 0;
}

static unmix_status write_id(struct unmix_comm *c, const ncclUniqueId *id) {
  char token[128], tmp[1100];
  job_token(token, sizeof token);
  snprintf(tmp, sizeof tmp, "%s.tmp.%d", c->nccl_id_file, (int)getpid());
  FILE *f = fopen(tmp, "wb");
  if (!f) return unmix_error_set(UNMIX_ERR_IO, "cannot write the NCCL id file %s: %s", tmp, strerror(errno));
  uint32_t tl = (uint32_t)strlen(token);
  bool ok = fwrite(ID_MAGIC, 1, sizeof ID_MAGIC, f) == sizeof ID_MAGIC && fwrite(&tl, sizeof tl, 1, f) == 1 &&
            fwrite(token, 1, tl, f) == tl && fwrite(id, sizeof *id, 1, f) == 1;
  ok = fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
  ok = fclose(f) == 0 && ok;
  if (!ok || rename(tmp, c->nccl_id_file) != 0) {
    unlink(tmp);
    return unmix_error_set(UNMIX_ERR_IO, "cannot write the NCCL id file %s: %s", c->nccl_id_file, strerror(errno));
  }
  return UNMIX_OK;
}

static bool try_read_id(const char *path, const char *token, time_t not_before, ncclUniqueId *id) {
  struct stat sb;
  if (stat(path, &sb) != 0) return false;
  if (!token[0] && sb.st_mtime < not_before) return false; /* a stale file of an earlier job */
  FILE *f = fopen(path, "rb");
  if (!f) return false;
  char magic[sizeof ID_MAGIC], tok[256];
  uint32_t tl = 0;
  bool ok = fread(magic, 1, sizeof magic, f) == sizeof magic && !memcmp(magic, ID_MAGIC, sizeof magic) &&
            fread(&tl, sizeof tl, 1, f) == 1 && tl < sizeof tok && fread(tok, 1, tl, f) == tl;
  if (ok) {
    tok[tl] = 0;
    ok = !strcmp(tok, token) && fread(id, sizeof *id, 1, f) == 1;
  }
  fclose(f);
  return ok;
}

static unmix_status read_id(struct unmix_comm *c, ncclUniqueId *id) {
  char token[128];
  job_token(token, sizeof token);
  const double t0 = unmix_comm_clock();
  const time_t not_before = time(NULL) - 120;
  while (!try_read_id(c->nccl_id_file, token, not_before, id)) {
    double now = unmix_comm_clock();
    if (now - t0 > c->timeout_s)
      return unmix_error_set(UNMIX_ERR_COMM,
                             "rank %d: no NCCL id from rank 0 in %s after %.0f s (token '%s'): is the path on a file "
                             "system every rank sees, and did rank 0 start?", c->rank, c->nccl_id_file, now - t0,
                             token);
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  return UNMIX_OK;
}

unmix_status unmix_comm_nccl_open(struct unmix_comm *c) {
  cudaStream_t stream = (cudaStream_t)unmix_cuda_stream();
  if (!stream) return unmix_error_set(UNMIX_ERR_DEVICE, "the NCCL communicator needs an initialised CUDA backend");
  ncclUniqueId id;
  memset(&id, 0, sizeof id);
  const bool by_file = c->nccl_id_file[0] || !c->host;
  if (by_file && !c->nccl_id_file[0])
    return unmix_error_set(UNMIX_ERR_ARG, "no MPI and no UNMIX_NCCL_ID_FILE: the NCCL id cannot reach the other ranks");
  if (c->rank == 0) {
    ncclResult_t r = ncclGetUniqueId(&id);
    if (r != ncclSuccess) return nccl_fail(c, NULL, r, "GetUniqueId");
    if (by_file) UNMIX_TRY(write_id(c, &id));
  }
  if (by_file) {
    if (c->rank != 0) UNMIX_TRY(read_id(c, &id));
  } else {
    UNMIX_TRY(c->host->broadcast(c, c->host_impl, &id, (int64_t)sizeof id, UNMIX_COMM_BYTE, 0));
  }
  struct nccl_impl *n = NULL;
  unmix_status s = comm_init(c, stream, &id, &n);
  if (s != UNMIX_OK) {
    if (by_file && c->rank == 0) unlink(c->nccl_id_file);
    return s;
  }
  if (by_file && c->rank == 0) snprintf(n->id_file, sizeof n->id_file, "%s", c->nccl_id_file);
  c->dev = &g_nccl;
  c->dev_impl = n;
  return UNMIX_OK;
}
