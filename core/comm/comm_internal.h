/* Internal layout of the communicator shared by comm.c (single + dispatch + staging),
 * comm_mpi.c and comm_nccl.c. A communicator has up to two transports: `host` moves host
 * buffers (MPI), `dev` moves the attached backend's device buffers (NCCL). comm.c routes each
 * collective to the transport for its memory, staging through the other side when only one
 * exists, and turns any failure into a broken communicator. */
#pragma once
#include "core/comm/comm.h"

struct unmix_comm;

/* Every call gets the communicator (for rank/world/timeout) and its own impl pointer. Buffers
 * are in the transport's memory (host for mpi, device for nccl). Failures set the message and
 * return UNMIX_ERR_COMM; a timeout says which collective and after how long. */
struct unmix_comm_transport {
  const char *name;
  unmix_status (*allreduce)(struct unmix_comm *c, void *impl, void *const *bufs, const int64_t *counts, int nbuf,
                            enum unmix_comm_dtype t);
  unmix_status (*broadcast)(struct unmix_comm *c, void *impl, void *buf, int64_t count, enum unmix_comm_dtype t,
                            int root);
  unmix_status (*allgather)(struct unmix_comm *c, void *impl, const void *send, void *recv, int64_t count,
                            enum unmix_comm_dtype t);
  unmix_status (*barrier)(struct unmix_comm *c, void *impl);
  /* Collective over c: the transport of `child`, the sub-communicator of the `group`
   * consecutive ranks holding this one (child's rank/world are set: rank % group, group). */
  unmix_status (*split)(struct unmix_comm *c, void *impl, int group, struct unmix_comm *child, void **child_impl);
  /* broken: a collective failed; skip anything that could wait for a peer. */
  void (*destroy)(struct unmix_comm *c, void *impl, bool broken);
};

struct unmix_comm {
  enum unmix_comm_kind kind;       /* as asked (auto resolved at create for the host side) */
  int rank, world, local_rank, local_world;
  double timeout_s;
  int64_t bucket_bytes;
  char nccl_id_file[1024];
  const struct unmix_backend *be;  /* attached backend (NULL: device buffers are host buffers) */
  const struct unmix_comm_transport *host;
  void *host_impl;
  const struct unmix_comm_transport *dev;
  void *dev_impl;
  bool broken;
  char broken_why[512];
  char name[32];
  void *stage_host;                /* host staging for device buffers without a device transport */
  size_t stage_host_bytes;
  void *stage_dev;                 /* device staging for host buffers without a host transport */
  size_t stage_dev_bytes;
};

/* Seconds since an arbitrary origin (monotonic). */
double unmix_comm_clock(void);
/* Waiting politely in a poll loop: yields the CPU for the first ~50 ms of a wait (large
 * transfers progress only inside the poll calls), then sleeps up to 1 ms between polls. */
void unmix_comm_poll_pause(double waited_s);

#ifdef UNMIX_WITH_MPI
/* MPI_Init (once per process; finalised at exit unless a communicator broke), duplicates
 * MPI_COMM_WORLD with MPI_ERRORS_RETURN, fills rank/world/local_rank/local_world and
 * installs the host transport. */
unmix_status unmix_comm_mpi_open(struct unmix_comm *c);
#endif
#ifdef UNMIX_WITH_NCCL
/* Creates the NCCL communicator on the CUDA backend's device and stream (the backend must be
 * attached and initialised) and installs the device transport. The unique id comes from
 * rank 0 over the host transport, or through c->nccl_id_file when it is set (or when there
 * is no host transport). */
unmix_status unmix_comm_nccl_open(struct unmix_comm *c);
#endif
