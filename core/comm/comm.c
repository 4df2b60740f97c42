/* The communicator interface (comm.h): options, the `single` implementation (rank 0 of 1),
 * choosing and opening the mpi / nccl transports, and the dispatch that routes each
 * collective to the transport of its memory, staging through the other side when needed. */
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/comm/comm_internal.h"
#include "core/util/log.h"

#define DEFAULT_TIMEOUT_S 300.0
#define DEFAULT_BUCKET_MB 25

/* ---- small helpers ---------------------------------------------------------------------- */
double unmix_comm_clock(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void unmix_comm_poll_pause(double waited_s) {
  if (waited_s < 0.05) {
    sched_yield();
    return;
  }
  double s = waited_s < 1.0 ? 1e-4 : 1e-3;
  struct timespec ts = {0, (long)(s * 1e9)};
  nanosleep(&ts, NULL);
}

int unmix_comm_dtype_size(enum unmix_comm_dtype t) {
  switch (t) {
    case UNMIX_COMM_F32: return 4;
    case UNMIX_COMM_F64: return 8;
    case UNMIX_COMM_I32: return 4;
    case UNMIX_COMM_BYTE: return 1;
  }
  return 1;
}

/* An integer environment variable: true and *out when set and well formed. */
static bool env_int(const char *name, int *out) {
  const char *v = getenv(name);
  if (!v || !*v) return false;
  char *end = NULL;
  errno = 0;
  long x = strtol(v, &end, 10);
  if (errno || end == v || x < 0 || x > 1 << 24) return false;
  /* Slurm's SLURM_TASKS_PER_NODE looks like "8(x2)": the leading count is what we want */
  if (*end && *end != '(' && *end != ',') return false;
  *out = (int)x;
  return true;
}

void unmix_comm_options_init(struct unmix_comm_options *o) {
  memset(o, 0, sizeof *o);
  o->kind = UNMIX_COMM_AUTO;
}

unmix_status unmix_comm_kind_parse(const char *s, enum unmix_comm_kind *out) {
  static const char *names[] = {"auto", "single", "mpi", "nccl"};
  for (int i = 0; i < 4; i++)
    if (s && !strcmp(s, names[i])) {
      *out = (enum unmix_comm_kind)i;
      return UNMIX_OK;
    }
  return unmix_error_set(UNMIX_ERR_ARG, "unknown communicator '%s' (auto, single, mpi or nccl)", s ? s : "");
}


unmix_status unmix_comm_parse_timeout(const char *s, double *out) {
  char *end = NULL;
  errno = 0;
  double v = s ? strtod(s, &end) : NAN;
  if (!s || errno || end == s || *end || !(v > 0) || !isfinite(v))
    return unmix_error_set(UNMIX_ERR_ARG, "communicator timeout must be a positive number of seconds, got '%s'",
                           s ? s : "");
  *out = v;
  return UNMIX_OK;
}

/* ---- create / attach / destroy ------------------------------------------------------------ */
static bool any_mpi_built(void) {
#ifdef UNMIX_WITH_MPI
  return true;
#else
  return false;
#endif
}

static bool nccl_built(void) {
#ifdef UNMIX_WITH_NCCL
  return true;
#else
  return false;
#endif
}

/* An MPI launcher started this process (Open MPI, PMI/PMIx, MPICH's hydra, MVAPICH). */
static bool launched_by_mpi(void) {
  static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMI_RANK", "PMIX_RANK", "MPI_LOCALNRANKS",
                               "MV2_COMM_WORLD_SIZE", NULL};
  for (int i = 0; vars[i]; i++)
    if (getenv(vars[i])) return true;
  return false;
}

/* rank/world for a launcher without MPI (srun + file-bootstrapped NCCL). */
static unmix_status ranks_from_env(struct unmix_comm *c) {
  int rank = -1, world = -1, lrank = -1, lworld = -1;
  if (!env_int("UNMIX_RANK", &rank)) env_int("SLURM_PROCID", &rank);
  if (!env_int("UNMIX_WORLD_SIZE", &world)) env_int("SLURM_NTASKS", &world);
  if (!env_int("UNMIX_LOCAL_RANK", &lrank)) env_int("SLURM_LOCALID", &lrank);
  if (!env_int("UNMIX_LOCAL_WORLD_SIZE", &lworld)) env_int("SLURM_TASKS_PER_NODE", &lworld);
  if (rank < 0 || world < 1 || rank >= world)
    return unmix_error_set(UNMIX_ERR_ARG,
                           "a file-bootstrapped NCCL communicator needs this process's rank and the world size: "
                           "set UNMIX_RANK and UNMIX_WORLD_SIZE (srun sets SLURM_PROCID and SLURM_NTASKS)");
  c->rank = rank;
  c->world = world;
  c->local_rank = lrank >= 0 ? lrank : rank;
  c->local_world = lworld >= 1 ? lworld : world;
  return UNMIX_OK;
}

unmix_status unmix_comm_create(const struct unmix_comm_options *o, struct unmix_comm **out) {
  *out = NULL;
  struct unmix_comm_options def;
  if (!o) {
    unmix_comm_options_init(&def);
    o = &def;
  }
  struct unmix_comm *c = unmix_xcalloc(1, sizeof *c);
  c->kind = o->kind;
  c->rank = 0;
  c->world = 1;
  c->local_rank = 0;
  c->local_world = 1;
  c->timeout_s = o->timeout_s;
  if (!(c->timeout_s > 0)) {
    const char *t = getenv("UNMIX_COMM_TIMEOUT");
    c->timeout_s = DEFAULT_TIMEOUT_S;
    if (t && *t && unmix_comm_parse_timeout(t, &c->timeout_s) != UNMIX_OK) {
      free(c);
      return unmix_error_wrap(UNMIX_ERR_ARG, "UNMIX_COMM_TIMEOUT");
    }
  }
  c->bucket_bytes = o->bucket_bytes;
  if (c->bucket_bytes <= 0) {
    int mb = DEFAULT_BUCKET_MB;
    if (getenv("UNMIX_COMM_BUCKET_MB") && (!env_int("UNMIX_COMM_BUCKET_MB", &mb) || mb < 1)) {
      free(c);
      return unmix_error_set(UNMIX_ERR_ARG, "UNMIX_COMM_BUCKET_MB must be a positive integer (MiB)");
    }
    c->bucket_bytes = (int64_t)mb << 20;
  }
  const char *idf = o->nccl_id_file ? o->nccl_id_file : getenv("UNMIX_NCCL_ID_FILE");
  if (idf) snprintf(c->nccl_id_file, sizeof c->nccl_id_file, "%s", idf);

  enum unmix_comm_kind k = o->kind;
  bool want_mpi = false, want_file = false;
  switch (k) {
    case UNMIX_COMM_SINGLE: break;
    case UNMIX_COMM_MPI: want_mpi = true; break;
    case UNMIX_COMM_NCCL:
      if (!nccl_built()) {
        free(c);
        return unmix_error_set(UNMIX_ERR_UNSUPPORTED,
                               "this build has no NCCL communicator (it needs CUDA, NCCL and MPI at build time)");
      }
      if (launched_by_mpi()) want_mpi = true;
      else want_file = true;
      break;
    case UNMIX_COMM_AUTO: {
      int w = 1;
      if (launched_by_mpi()) want_mpi = true;
      else if (c->nccl_id_file[0] && (env_int("UNMIX_WORLD_SIZE", &w) || env_int("SLURM_NTASKS", &w)) && w > 1)
        want_file = true;
      break;
    }
  }
  if (want_mpi && !any_mpi_built()) {
    free(c);
    /* also under `mpirun` with auto: N independent copies would write one run directory */
    return unmix_error_set(UNMIX_ERR_UNSUPPORTED, "%sthis build has no MPI communicator (MPI was not found at build "
                                                  "time; install an MPI and rebuild with -DUNMIX_DIST=ON)",
                           k == UNMIX_COMM_AUTO ? "launched by an MPI launcher, but " : "");
  }
  unmix_status s = UNMIX_OK;
#ifdef UNMIX_WITH_MPI
  if (want_mpi) s = unmix_comm_mpi_open(c);
#endif
  if (want_file) {
    if (!nccl_built())
      s = unmix_error_set(UNMIX_ERR_UNSUPPORTED,
                          "UNMIX_NCCL_ID_FILE is set for %s ranks but this build has no NCCL communicator",
                          getenv("SLURM_NTASKS") ? getenv("SLURM_NTASKS") : "several");
    else if (!c->nccl_id_file[0])
      s = unmix_error_set(UNMIX_ERR_ARG, "without an MPI launcher the NCCL communicator needs UNMIX_NCCL_ID_FILE "
                                         "(a path on a file system every rank sees) to exchange its unique id");
    else s = ranks_from_env(c);
  }
  if (s != UNMIX_OK) {
    free(c);
    return s;
  }
  if (c->host) snprintf(c->name, sizeof c->name, "%s", c->host->name);
  else snprintf(c->name, sizeof c->name, "%s", want_file ? "nccl(file)" : "single");
  *out = c;
  return UNMIX_OK;
}

unmix_status unmix_comm_attach_backend(struct unmix_comm *c, const struct unmix_backend *be) {
  if (!c) return UNMIX_OK;
  c->be = be;
  const bool device = be && be->device != UNMIX_DEVICE_CPU;
  if (c->kind == UNMIX_COMM_NCCL && !device)
    return unmix_error_set(UNMIX_ERR_CONFIG, "the nccl communicator needs a GPU backend (backend: cuda), not %s",
                           be ? be->name : "none");
  if ((c->world <= 1 && c->kind != UNMIX_COMM_NCCL) || !device || c->kind == UNMIX_COMM_MPI || c->dev)
    return UNMIX_OK;
#ifdef UNMIX_WITH_NCCL
  UNMIX_TRY(unmix_comm_nccl_open(c));
  snprintf(c->name, sizeof c->name, "%s", c->host ? "mpi+nccl" : "nccl(file)");
  return UNMIX_OK;
#else
  if (!c->host)
    return unmix_error_set(UNMIX_ERR_UNSUPPORTED, "no transport for %s device buffers in this build", be->name);
  unmix_log_warn("this build has no NCCL: device collectives are staged through host memory over MPI");
  return UNMIX_OK;
#endif
}

const char *unmix_comm_bind_local_gpu(const struct unmix_comm *c) {
  static char what[256];
  if (!c || c->local_world <= 1) return "one rank on this host: no GPU binding";
  const char *no = getenv("UNMIX_GPU_BIND");
  if (no && !strcmp(no, "0")) return "UNMIX_GPU_BIND=0: GPU binding left to the launcher";
  const char *vis = getenv("CUDA_VISIBLE_DEVICES");
  char pick[64] = "";
  if (!vis) {
    snprintf(pick, sizeof pick, "%d", c->local_rank);
  } else {
    /* entry local_rank of a comma list; one entry = the launcher bound us already */
    int n = 0;
    const char *p = vis;
    char buf[64];
    while (*p) {
      size_t len = strcspn(p, ",");
      if (n == c->local_rank && len < sizeof buf) {
        memcpy(buf, p, len);
        buf[len] = 0;
        snprintf(pick, sizeof pick, "%s", buf);
      }
      n++;
      p += len;
      if (*p == ',') p++;
    }
    if (n <= 1) {
      snprintf(what, sizeof what, "CUDA_VISIBLE_DEVICES=%s set by the launcher", vis);
      return what;
    }
    if (!pick[0]) {
      snprintf(what, sizeof what, "CUDA_VISIBLE_DEVICES=%s has fewer devices than the %d local ranks", vis,
               c->local_world);
      return what;
    }
  }
  setenv("CUDA_VISIBLE_DEVICES", pick, 1);
  snprintf(what, sizeof what, "local rank %d of %d -> CUDA_VISIBLE_DEVICES=%s", c->local_rank, c->local_world, pick);
  return what;
}

void unmix_comm_destroy(struct unmix_comm *c) {
  if (!c) return;
  if (c->dev) c->dev->destroy(c, c->dev_impl, c->broken);
  if (c->host) c->host->destroy(c, c->host_impl, c->broken);
  free(c->stage_host);
  if (c->stage_dev && c->be) c->be->free(c->stage_dev);
  free(c);
}

int unmix_comm_rank(const struct unmix_comm *c) { return c ? c->rank : 0; }
int unmix_comm_world(const struct unmix_comm *c) { return c ? c->world : 1; }
int unmix_comm_local_world(const struct unmix_comm *c) { return c ? c->local_world : 1; }
const char *unmix_comm_name(const struct unmix_comm *c) { return c ? c->name : "single"; }
double unmix_comm_timeout(const struct unmix_comm *c) { return c ? c->timeout_s : DEFAULT_TIMEOUT_S; }
int64_t unmix_comm_bucket_bytes(const struct unmix_comm *c) {
  return c ? c->bucket_bytes : (int64_t)DEFAULT_BUCKET_MB << 20;
}
bool unmix_comm_broken(const struct unmix_comm *c) { return c && c->broken; }

/* Marks the communicator broken (after a failure on this rank that its peers cannot see:
 * destroy then skips the collective shutdown). */
static void set_broken(struct unmix_comm *c, const char *why) {
  if (!c || c->broken) return;
  c->broken = true;
  snprintf(c->broken_why, sizeof c->broken_why, "%s", why ? why : "a collective failed");
}

/* ---- dispatch ------------------------------------------------------------------------------ */
static unmix_status check_usable(struct unmix_comm *c, const char *op) {
  if (c->broken)
    return unmix_error_set(UNMIX_ERR_COMM, "rank %d: %s on a broken communicator (earlier: %s)", c->rank, op,
                           c->broken_why);
  return UNMIX_OK;
}

static unmix_status fail(struct unmix_comm *c, unmix_status s) {
  if (s != UNMIX_OK) set_broken(c, unmix_error_message());
  return s;
}

/* Device buffers that the host transport must move: the CPU backend's memory is host memory. */
static bool device_is_host(const struct unmix_comm *c) { return !c->be || c->be->device == UNMIX_DEVICE_CPU; }

static void *host_stage(struct unmix_comm *c, size_t bytes) {
  if (bytes > c->stage_host_bytes) {
    free(c->stage_host);
    c->stage_host = unmix_xmalloc(bytes);
    c->stage_host_bytes = bytes;
  }
  return c->stage_host;
}

static void *dev_stage(struct unmix_comm *c, size_t bytes) {
  if (bytes > c->stage_dev_bytes) {
    if (c->stage_dev) c->be->free(c->stage_dev);
    c->stage_dev = c->be->alloc(bytes);
    c->stage_dev_bytes = c->stage_dev ? bytes : 0;
  }
  return c->stage_dev;
}

/* Which path a collective on `mem` takes: 'h' host transport on the buffer, 'd' device
 * transport on the buffer, 'H' host transport through host staging, 'D' device transport
 * through device staging, 0 none available. */
static char route(const struct unmix_comm *c, enum unmix_comm_mem mem) {
  if (mem == UNMIX_COMM_HOST || device_is_host(c)) {
    if (c->host) return 'h';
    if (c->dev) return 'D';
    return 0;
  }
  if (c->dev) return 'd';
  if (c->host) return 'H';
  return 0;
}

static unmix_status no_route(struct unmix_comm *c, const char *op) {
  return unmix_error_set(UNMIX_ERR_COMM, "rank %d: no transport for %s (%s): attach a GPU backend to the NCCL "
                                         "communicator first", c->rank, op, c->name);
}

/* Nothing to exchange: one rank, unless NCCL was asked for by name and is open, in which
 * case even one rank goes through it (that is how a one-GPU machine exercises NCCL). */
static bool solo(const struct unmix_comm *c) {
  return !c || (c->world <= 1 && !(c->kind == UNMIX_COMM_NCCL && c->dev));
}

unmix_status unmix_comm_barrier(struct unmix_comm *c) {
  if (solo(c)) return UNMIX_OK;
  UNMIX_TRY(check_usable(c, "barrier"));
  if (c->host) return fail(c, c->host->barrier(c, c->host_impl));
  if (c->dev) return fail(c, c->dev->barrier(c, c->dev_impl));
  return no_route(c, "barrier");
}

unmix_status unmix_comm_allreduce_sum_many(struct unmix_comm *c, void *const *bufs, const int64_t *counts, int nbuf,
                                           enum unmix_comm_dtype t, enum unmix_comm_mem mem) {
  if (solo(c) || nbuf <= 0) return UNMIX_OK;
  UNMIX_TRY(check_usable(c, "all-reduce"));
  UNMIX_REQUIRE(t != UNMIX_COMM_BYTE, "all-reduce of bytes");
  const size_t es = (size_t)unmix_comm_dtype_size(t);
  switch (route(c, mem)) {
    case 'h': return fail(c, c->host->allreduce(c, c->host_impl, bufs, counts, nbuf, t));
    case 'd': return fail(c, c->dev->allreduce(c, c->dev_impl, bufs, counts, nbuf, t));
    case 'H':
    case 'D': {
      const bool to_host = route(c, mem) == 'H';
      int64_t total = 0;
      for (int i = 0; i < nbuf; i++) total += counts[i];
      char *st = to_host ? host_stage(c, es * (size_t)total) : dev_stage(c, es * (size_t)total);
      if (!st) return unmix_error_set(UNMIX_ERR_NOMEM, "communicator staging buffer (%lld bytes)", (long long)(es * total));
      int64_t off = 0;
      for (int i = 0; i < nbuf; i++) {
        if (to_host) c->be->memcpy_d2h(st + off * es, bufs[i], es * (size_t)counts[i]);
        else c->be->memcpy_h2d(st + off * es, bufs[i], es * (size_t)counts[i]);
        off += counts[i];
      }
      void *one[1] = {st};
      unmix_status s = to_host ? c->host->allreduce(c, c->host_impl, one, &total, 1, t)
                               : c->dev->allreduce(c, c->dev_impl, one, &total, 1, t);
      if (s != UNMIX_OK) return fail(c, s);
      off = 0;
      for (int i = 0; i < nbuf; i++) {
        if (to_host) c->be->memcpy_h2d(bufs[i], st + off * es, es * (size_t)counts[i]);
        else c->be->memcpy_d2h(bufs[i], st + off * es, es * (size_t)counts[i]);
        off += counts[i];
      }
      return UNMIX_OK;
    }
    default: return no_route(c, "all-reduce");
  }
}

unmix_status unmix_comm_allreduce_sum(struct unmix_comm *c, void *buf, int64_t count, enum unmix_comm_dtype t,
                                      enum unmix_comm_mem mem) {
  void *b[1] = {buf};
  return unmix_comm_allreduce_sum_many(c, b, &count, 1, t, mem);
}

unmix_status unmix_comm_broadcast(struct unmix_comm *c, void *buf, int64_t count, enum unmix_comm_dtype t, int root,
                                  enum unmix_comm_mem mem) {
  if (solo(c)) return UNMIX_OK;
  UNMIX_TRY(check_usable(c, "broadcast"));
  UNMIX_REQUIRE(root >= 0 && root < c->world, "broadcast root %d outside world %d", root, c->world);
  const size_t bytes = (size_t)unmix_comm_dtype_size(t) * (size_t)count;
  switch (route(c, mem)) {
    case 'h': return fail(c, c->host->broadcast(c, c->host_impl, buf, count, t, root));
    case 'd': return fail(c, c->dev->broadcast(c, c->dev_impl, buf, count, t, root));
    case 'H': {
      void *st = host_stage(c, bytes);
      if (c->rank == root) c->be->memcpy_d2h(st, buf, bytes);
      UNMIX_TRY(fail(c, c->host->broadcast(c, c->host_impl, st, count, t, root)));
      c->be->memcpy_h2d(buf, st, bytes);
      return UNMIX_OK;
    }
    case 'D': {
      void *st = dev_stage(c, bytes);
      if (!st) return unmix_error_set(UNMIX_ERR_NOMEM, "communicator staging buffer (%zu bytes)", bytes);
      if (c->rank == root) c->be->memcpy_h2d(st, buf, bytes);
      UNMIX_TRY(fail(c, c->dev->broadcast(c, c->dev_impl, st, count, t, root)));
      c->be->memcpy_d2h(buf, st, bytes);
      return UNMIX_OK;
    }
    default: return no_route(c, "broadcast");
  }
}

unmix_status unmix_comm_allgather(struct unmix_comm *c, const void *send, void *recv, int64_t count,
                                  enum unmix_comm_dtype t, enum unmix_comm_mem mem) {
  const size_t bytes = (size_t)unmix_comm_dtype_size(t) * (size_t)count;
  if (solo(c)) {
    if (send == recv || count == 0) return UNMIX_OK;
    if (mem == UNMIX_COMM_DEVICE && c && c->be && !device_is_host(c)) c->be->memcpy_d2d(recv, send, bytes);
    else memmove(recv, send, bytes);
    return UNMIX_OK;
  }
  UNMIX_TRY(check_usable(c, "all-gather"));
  const size_t total = bytes * (size_t)c->world;
  switch (route(c, mem)) {
    case 'h': return fail(c, c->host->allgather(c, c->host_impl, send, recv, count, t));
    case 'd': return fail(c, c->dev->allgather(c, c->dev_impl, send, recv, count, t));
    case 'H': {
      char *st = host_stage(c, bytes + total);
      c->be->memcpy_d2h(st, send, bytes);
      UNMIX_TRY(fail(c, c->host->allgather(c, c->host_impl, st, st + bytes, count, t)));
      c->be->memcpy_h2d(recv, st + bytes, total);
      return UNMIX_OK;
    }
    case 'D': {
      char *st = dev_stage(c, bytes + total);
      if (!st) return unmix_error_set(UNMIX_ERR_NOMEM, "communicator staging buffer (%zu bytes)", bytes + total);
      c->be->memcpy_h2d(st, send, bytes);
      UNMIX_TRY(fail(c, c->dev->allgather(c, c->dev_impl, st, st + bytes, count, t)));
      c->be->memcpy_d2h(recv, st + bytes, total);
      return UNMIX_OK;
    }
    default: return no_route(c, "all-gather");
  }
}

/* ---- process groups ------------------------------------------------------------------------ */
unmix_status unmix_comm_split_groups(struct unmix_comm *c, int group, struct unmix_comm **out) {
  *out = NULL;
  const int world = unmix_comm_world(c);
  if (group < 1 || world % group != 0)
    return unmix_error_set(UNMIX_ERR_CONFIG, "process groups of %d ranks do not divide the %d ranks", group, world);
  if (!c) return UNMIX_OK; /* single: the one group is this rank, NULL */
  UNMIX_TRY(check_usable(c, "split"));
  struct unmix_comm *g = unmix_xcalloc(1, sizeof *g);
  g->kind = c->kind;
  g->rank = c->rank % group;
  g->world = group;
  /* ranks on this host within the group: consecutive ranks fill a host first (srun, mpirun) */
  g->local_rank = c->local_rank % group;
  g->local_world = c->local_world < group ? c->local_world : group;
  g->timeout_s = c->timeout_s;
  g->bucket_bytes = c->bucket_bytes;
  g->be = c->be;
  unmix_status s = UNMIX_OK;
  if (c->host) {
    s = fail(c, c->host->split(c, c->host_impl, group, g, &g->host_impl));
    if (s == UNMIX_OK) g->host = c->host;
  }
  if (s == UNMIX_OK && c->dev) {
    s = fail(c, c->dev->split(c, c->dev_impl, group, g, &g->dev_impl));
    if (s == UNMIX_OK) g->dev = c->dev;
  }
  if (s != UNMIX_OK) {
    g->broken = true; /* the parent is broken too: nothing collective on the way out */
    unmix_comm_destroy(g);
    return s;
  }
  snprintf(g->name, sizeof g->name, "%.20s/%d", c->name, group);
  *out = g;
  return UNMIX_OK;
}
