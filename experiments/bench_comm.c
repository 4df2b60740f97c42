/* `unmix bench comm`: all-reduce bandwidth of the communicator, run under the launcher
 * (`mpirun -np N unmix bench comm`): the flat gradient buffers of our models (ResNet-18 CIFAR
 * MoCo encoder, ResNet-50 MoCo v2 encoder) through the trainer's own path (buckets of
 * UNMIX_COMM_BUCKET_MB, started together, then averaged), and a sweep of sizes. Reports time,
 * algorithm bandwidth (bytes / time) and bus bandwidth (algbw * 2(n-1)/n, the nccl-tests
 * convention: what each link carries in a ring all-reduce). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/comm/comm.h"
#include "core/io/manifest.h"
#include "core/nn/model.h"
#include "core/util/timer.h"
#include "experiments/bench.h"
#include "experiments/commands.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: mpirun -np N unmix bench comm [--backend cpu|cuda] [--seconds S] [--max-mb M]\n"
          "                                     [--blocking]\n\n"
          "All-reduce (sum, float32) bandwidth over the ranks: our models' flat gradient buffers\n"
          "(ResNet-18 CIFAR MoCo, ResNet-50 MoCo v2) bucketed as the trainer does, then a sweep from\n"
          "4 KiB to M MiB (default 128) as one buffer. Each size runs for about S seconds (default\n"
          "1; at least 3 repetitions after 2 warm-ups); the time is the slowest rank's mean.\n"
          "algbw = bytes/time, busbw = algbw*2(n-1)/n. With --backend cuda the buffers are on the GPU\n"
          "(NCCL when built in). --blocking uses blocking MPI calls without the timeout poll (to\n"
          "measure what the poll costs). With one rank it only says how to launch it.\n\n"
          "example: mpirun -np 2 unmix bench comm --max-mb 64\n");
}

/* The flat parameter count (with alignment padding, as all-reduced) of a model. */
static int64_t model_floats(enum unmix_arch arch, enum unmix_stem stem, enum unmix_head head, int hidden,
                            const struct unmix_backend *be) {
  struct unmix_config cfg;
  unmix_config_init_defaults(&cfg);
  cfg.model.arch = arch;
  cfg.model.stem = stem;
  cfg.model.head = head;
  cfg.model.hidden = hidden;
  cfg.model.bn_splits = 1;
  struct unmix_model_spec spec;
  unmix_model_spec_from_config(&cfg, stem == UNMIX_STEM_IMAGENET ? 224 : 32, &spec);
  struct unmix_model *m = NULL;
  if (unmix_model_create(&spec, be, 0, &m) != UNMIX_OK) return 0;
  int64_t n = m->params.total;
  unmix_model_destroy(m);
  return n;
}

struct result {
  double secs, algbw, busbw;
  int reps;
};

/* Times all-reduces of n floats in buckets of `bucket` floats (<= 0: one buffer). */
static unmix_status measure(struct unmix_comm *c, const struct unmix_backend *be, float *buf, int64_t n,
                            int64_t bucket, double seconds, struct result *res) {
  const int W = unmix_comm_world(c);
  int nb = bucket > 0 ? (int)((n + bucket - 1) / bucket) : 1;
  void **bufs = malloc(sizeof(void *) * (size_t)nb);
  int64_t *counts = malloc(sizeof(int64_t) * (size_t)nb);
  for (int b = 0; b < nb; b++) {
    int64_t off = bucket > 0 ? (int64_t)b * bucket : 0;
    bufs[b] = buf + off;
    counts[b] = bucket > 0 ? (n - off < bucket ? n - off : bucket) : n;
  }
  unmix_status s = UNMIX_OK;
  for (int w = 0; w < 2 && s == UNMIX_OK; w++)
    s = unmix_comm_allreduce_sum_many(c, bufs, counts, nb, UNMIX_COMM_F32, UNMIX_COMM_DEVICE);
  /* repetitions: rank 0 decides from its warm-up speed and tells the others */
  int32_t reps = 3;
  if (s == UNMIX_OK && unmix_comm_rank(c) == 0) {
    double t0 = unmix_now();
    s = unmix_comm_allreduce_sum_many(c, bufs, counts, nb, UNMIX_COMM_F32, UNMIX_COMM_DEVICE);
    double one = unmix_now() - t0;
    reps = one > 0 ? (int32_t)(seconds / one) : 1000;
    if (reps < 3) reps = 3;
    if (reps > 1000) reps = 1000;
  } else if (s == UNMIX_OK) {
    s = unmix_comm_allreduce_sum_many(c, bufs, counts, nb, UNMIX_COMM_F32, UNMIX_COMM_DEVICE);
  }
  if (s == UNMIX_OK) s = unmix_comm_bcast_i32(c, &reps, 1, 0, UNMIX_COMM_HOST);
  if (s == UNMIX_OK) s = unmix_comm_barrier(c);
  double t0 = unmix_now();
  for (int r = 0; r < reps && s == UNMIX_OK; r++) {
    s = unmix_comm_allreduce_sum_many(c, bufs, counts, nb, UNMIX_COMM_F32, UNMIX_COMM_DEVICE);
    if (s == UNMIX_OK) be->scale(n, 1.0f / (float)W, buf, buf); /* the trainer's averaging; keeps values bounded */
  }
  be->synchronize();
  double mine = (unmix_now() - t0) / reps;
  free(bufs);
  free(counts);
  if (s != UNMIX_OK) return s;
  double *all = malloc(sizeof(double) * (size_t)W);
  s = unmix_comm_allgather(c, &mine, all, 1, UNMIX_COMM_F64, UNMIX_COMM_HOST);
  double worst = 0;
  for (int r = 0; r < W; r++)
    if (all[r] > worst) worst = all[r];
  free(all);
  res->secs = worst;
  res->reps = reps;
  res->algbw = (double)n * 4.0 / worst / 1e9;
  res->busbw = res->algbw * 2.0 * (W - 1) / W;
  return s;
}

int unmix_bench_comm(int argc, char **argv) {
  const char *backend = "cpu";
  double seconds = 1.0;
  long max_mb = 128;
  bool blocking = false;
  static const struct option opts[] = {{"backend", required_argument, 0, 'b'}, {"seconds", required_argument, 0, 's'},
                                       {"max-mb", required_argument, 0, 'm'},  {"blocking", no_argument, 0, 'B'},
                                       {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
  optind = 1;
  int o;
  while ((o = getopt_long(argc, argv, "b:s:m:h", opts, NULL)) != -1) {
    char *end = NULL;
    switch (o) {
      case 'b': backend = optarg; break;
      case 's':
        errno = 0;
        seconds = strtod(optarg, &end);
        if (errno || !end || *end || !(seconds > 0) || seconds > 600) {
          fprintf(stderr, "unmix bench comm: --seconds must be in (0, 600], got '%s'\n", optarg);
          return 2;
        }
        break;
      case 'm':
        errno = 0;
        max_mb = strtol(optarg, &end, 10);
        if (errno || !end || *end || max_mb < 1 || max_mb > 4096) {
          fprintf(stderr, "unmix bench comm: --max-mb must be an integer in 1..4096, got '%s'\n", optarg);
          return 2;
        }
        break;
      case 'B': blocking = true; break;
      case 'h': usage(stdout); return 0;
      default: usage(stderr); return 2;
    }
  }
  if (optind != argc) {
    usage(stderr);
    return 2;
  }
  if (blocking) setenv("UNMIX_COMM_MPI_BLOCKING", "1", 1);
  struct unmix_comm *c = NULL;
  if (unmix_comm_create(NULL, &c) != UNMIX_OK) return unmix_cmd_fail("bench comm");
  const int W = unmix_comm_world(c), R = unmix_comm_rank(c);
  if (W < 2) {
    printf("unmix bench comm: one rank: nothing to measure. Launch it on several ranks, e.g.\n"
           "  mpirun -np 2 unmix bench comm\n");
    unmix_comm_destroy(c);
    return 0;
  }
  if (!strcmp(backend, "cuda")) unmix_comm_bind_local_gpu(c);
  const struct unmix_backend *be = NULL;
  if (unmix_backend_get(backend, &be) != UNMIX_OK || unmix_comm_attach_backend(c, be) != UNMIX_OK) {
    int rc = unmix_cmd_fail("bench comm");
    unmix_comm_destroy(c);
    return rc;
  }
  const int64_t r18 = model_floats(UNMIX_ARCH_RESNET18, UNMIX_STEM_CIFAR, UNMIX_HEAD_LINEAR, 0, be);
  const int64_t r50 = model_floats(UNMIX_ARCH_RESNET50, UNMIX_STEM_IMAGENET, UNMIX_HEAD_MLP, 2048, be);
  int64_t maxn = ((int64_t)max_mb << 20) / 4;
  if (r50 > maxn) maxn = r50;
  float *buf = be->alloc(sizeof(float) * (size_t)maxn);
  if (!buf) {
    fprintf(stderr, "unmix bench comm: cannot allocate %lld floats on %s\n", (long long)maxn, be->name);
    unmix_comm_destroy(c);
    return 1;
  }
  be->fill(maxn, 1.0f, buf);
  const int64_t bucket = unmix_comm_bucket_bytes(c) / 4;
  if (R == 0) {
    printf("unmix bench comm: %d ranks (%d on this host), communicator %s%s, buffers on %s, float32 sum\n", W,
           unmix_comm_local_world(c), unmix_comm_name(c), blocking ? " (blocking, no timeout)" : "", be->name);
    printf("%-34s %12s %10s %6s %10s %10s\n", "buffer", "floats", "ms", "reps", "algbw GB/s", "busbw GB/s");
  }
  unmix_status s = UNMIX_OK;
  struct {
    const char *name;
    int64_t n, bucket;
  } named[] = {{"ResNet-18 CIFAR MoCo grad (buckets)", r18, bucket}, {"ResNet-50 MoCo v2 grad (buckets)", r50, bucket}};
  for (int i = 0; i < 2 && s == UNMIX_OK; i++) {
    struct result res = {0};
    s = measure(c, be, buf, named[i].n, named[i].bucket, seconds, &res);
    if (s == UNMIX_OK && R == 0)
      printf("%-34s %12lld %10.3f %6d %10.3f %10.3f\n", named[i].name, (long long)named[i].n, res.secs * 1e3, res.reps,
             res.algbw, res.busbw);
  }
  for (int64_t bytes = 4096; bytes <= ((int64_t)max_mb << 20) && s == UNMIX_OK; bytes *= 4) {
    struct result res = {0};
    s = measure(c, be, buf, bytes / 4, 0, seconds, &res);
    char name[64];
    if (bytes >= (1 << 20)) snprintf(name, sizeof name, "sweep %lld MiB", (long long)(bytes >> 20));
    else snprintf(name, sizeof name, "sweep %lld KiB", (long long)(bytes >> 10));
    if (s == UNMIX_OK && R == 0)
      printf("%-34s %12lld %10.3f %6d %10.3f %10.3f\n", name, (long long)(bytes / 4), res.secs * 1e3, res.reps,
             res.algbw, res.busbw);
  }
  be->free(buf);
  int rc = 0;
  if (s != UNMIX_OK) rc = unmix_cmd_fail("bench comm");
  unmix_comm_destroy(c);
  return rc;
}
