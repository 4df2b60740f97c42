/* The communicator of data-parallel training (layer 7, comm): rank, world and the
 * collectives the methods and the trainer need, behind one interface with three
 * implementations:
 *   single  rank 0 of 1: every collective is a no-op (all-gather a copy);
 *   mpi     MPI ranks (OpenMPI), host buffers; device buffers are staged through the host;
 *   nccl    GPU ranks: device buffers go through NCCL on the CUDA backend's stream; the NCCL
 *           unique id travels over MPI, or through a shared file for launchers without MPI
 *           (Slurm's srun: UNMIX_NCCL_ID_FILE). Host buffers use MPI when there is MPI, else
 *           they are staged through the device.
 *
 * Failure model: every collective returns a status and none waits longer than the timeout
 * (UNMIX_COMM_TIMEOUT seconds, default 300). MPI collectives are started non-blocking with
 * MPI_ERRORS_RETURN and polled against a deadline; NCCL ones are polled on the stream with
 * ncclCommGetAsyncError and aborted (ncclCommAbort) at the deadline. A peer that died or
 * hangs therefore makes the others fail with UNMIX_ERR_COMM within the timeout; the
 * communicator is then broken: every later collective fails at once, and destroy skips
 * MPI_Finalize (which would wait for the dead peer), so the process can exit with an error.
 *
 * A NULL communicator is valid everywhere and means "single". */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "core/backend/backend.h"
#include "core/util/error.h"

enum unmix_comm_kind {
  UNMIX_COMM_AUTO = 0, /* mpi when launched by an MPI launcher, file-bootstrapped nccl when
                          UNMIX_NCCL_ID_FILE and a world size (SLURM_NTASKS / UNMIX_WORLD_SIZE)
                          are set, else single; nccl replaces staging on a CUDA backend */
  UNMIX_COMM_SINGLE,
  UNMIX_COMM_MPI,      /* MPI only, also for device buffers (staged through the host) */
  UNMIX_COMM_NCCL      /* NCCL for device buffers (needs a CUDA backend at attach time) */
};
enum unmix_comm_dtype { UNMIX_COMM_F32 = 0, UNMIX_COMM_F64, UNMIX_COMM_I32, UNMIX_COMM_BYTE };
/* Where a collective's buffers live: host memory, or the attached backend's memory
 * (pointers from be->alloc; on the CPU backend that is host memory too). */
enum unmix_comm_mem { UNMIX_COMM_HOST = 0, UNMIX_COMM_DEVICE };

struct unmix_comm_options {
  enum unmix_comm_kind kind;
  double timeout_s;          /* <= 0: env UNMIX_COMM_TIMEOUT, else 300 */
  const char *nccl_id_file;  /* NULL: env UNMIX_NCCL_ID_FILE */
  int64_t bucket_bytes;      /* gradient all-reduce bucket; <= 0: env UNMIX_COMM_BUCKET_MB, else 25 MiB */
};
void unmix_comm_options_init(struct unmix_comm_options *o);
unmix_status unmix_comm_kind_parse(const char *s, enum unmix_comm_kind *out); /* auto|single|mpi|nccl */
/* Seconds from a string ("300", "2.5"): > 0, finite. */
unmix_status unmix_comm_parse_timeout(const char *s, double *out);

struct unmix_comm;
/* Opens the communicator: MPI_Init (once per process) for mpi, rank/world from the
 * environment for a file-bootstrapped nccl. Device collectives need a backend: attach it. */
unmix_status unmix_comm_create(const struct unmix_comm_options *o, struct unmix_comm **out);
/* Binds the device memory space: device collectives use this backend's memory. On a CUDA
 * backend with NCCL built in (kind auto or nccl) this creates the NCCL communicator. */
unmix_status unmix_comm_attach_backend(struct unmix_comm *c, const struct unmix_backend *be);
/* Before the backend starts: give each local rank its own GPU by narrowing
 * CUDA_VISIBLE_DEVICES to the local rank's entry (unset: the local rank's index), unless
 * UNMIX_GPU_BIND=0 or the launcher left one device per rank. Returns what it did (for logs). */
const char *unmix_comm_bind_local_gpu(const struct unmix_comm *c);
void unmix_comm_destroy(struct unmix_comm *c);
/* The sub-communicator of the `group` consecutive ranks that hold this one: ranks
 * [r - r % group, r - r % group + group) of c, this rank being rank r % group of world
 * `group` (how apex's create_syncbn_process_group forms SyncBN process groups). Collective
 * over c: every rank calls it with the same group, which must divide the world. Each of c's
 * transports is split (MPI_Comm_split; a second NCCL communicator per group). Destroy it
 * before c. */
unmix_status unmix_comm_split_groups(struct unmix_comm *c, int group, struct unmix_comm **out);

int unmix_comm_rank(const struct unmix_comm *c);        /* 0 for NULL */
int unmix_comm_world(const struct unmix_comm *c);       /* 1 for NULL */
int unmix_comm_local_world(const struct unmix_comm *c); /* ranks on this host */
const char *unmix_comm_name(const struct unmix_comm *c); /* "single", "mpi", "mpi+nccl", "nccl(file)" */
double unmix_comm_timeout(const struct unmix_comm *c);
int64_t unmix_comm_bucket_bytes(const struct unmix_comm *c);
bool unmix_comm_broken(const struct unmix_comm *c);

/* ---- collectives (every rank calls them in the same order with the same counts) -------- */
unmix_status unmix_comm_barrier(struct unmix_comm *c);
/* buf[i] = sum over ranks of buf[i], in place (I32/F32/F64). */
unmix_status unmix_comm_allreduce_sum(struct unmix_comm *c, void *buf, int64_t count, enum unmix_comm_dtype t,
                                      enum unmix_comm_mem mem);
/* The same over several buffers at once (buckets of one flat buffer): all are started, then
 * waited for together, so the transport pipelines them. */
unmix_status unmix_comm_allreduce_sum_many(struct unmix_comm *c, void *const *bufs, const int64_t *counts, int nbuf,
                                           enum unmix_comm_dtype t, enum unmix_comm_mem mem);
/* root's buf to every rank. */
unmix_status unmix_comm_broadcast(struct unmix_comm *c, void *buf, int64_t count, enum unmix_comm_dtype t, int root,
                                  enum unmix_comm_mem mem);
/* recv (world * count elements) = every rank's send, in rank order (rows of a batch). */
unmix_status unmix_comm_allgather(struct unmix_comm *c, const void *send, void *recv, int64_t count,
                                  enum unmix_comm_dtype t, enum unmix_comm_mem mem);

/* Typed shorthands. */
static inline unmix_status unmix_comm_allreduce_f32(struct unmix_comm *c, float *buf, int64_t n,
                                                    enum unmix_comm_mem mem) {
  return unmix_comm_allreduce_sum(c, buf, n, UNMIX_COMM_F32, mem);
}
static inline unmix_status unmix_comm_allreduce_f64(struct unmix_comm *c, double *buf, int64_t n,
                                                    enum unmix_comm_mem mem) {
  return unmix_comm_allreduce_sum(c, buf, n, UNMIX_COMM_F64, mem);
}
static inline unmix_status unmix_comm_bcast_i32(struct unmix_comm *c, int32_t *buf, int64_t n, int root,
                                                enum unmix_comm_mem mem) {
  return unmix_comm_broadcast(c, buf, n, UNMIX_COMM_I32, root, mem);
}
static inline unmix_status unmix_comm_bcast_bytes(struct unmix_comm *c, void *buf, int64_t n, int root) {
  return unmix_comm_broadcast(c, buf, n, UNMIX_COMM_BYTE, root, UNMIX_COMM_HOST);
}
/* rows x row_floats floats of this rank -> (world * rows) x row_floats, rank order. */
static inline unmix_status unmix_comm_allgather_rows(struct unmix_comm *c, const float *send, int64_t rows,
                                                     int64_t row_floats, float *recv, enum unmix_comm_mem mem) {
  return unmix_comm_allgather(c, send, recv, rows * row_floats, UNMIX_COMM_F32, mem);
}

/* Bytes of one element of a dtype. */
int unmix_comm_dtype_size(enum unmix_comm_dtype t);
