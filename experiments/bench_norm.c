/* `unmix bench norm`: batch norm forward (train mode) and backward, each with and without
 * the ReLU that follows it in a ResNet, at the ResNet-18 CIFAR activation shapes, in ms and
 * GB/s of the bytes the op must move at least. A benchmark: it prints figures, never a test. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend/backend.h"
#include "core/util/rng.h"
#include "core/util/timer.h"
#include "experiments/bench.h"
#include "experiments/commands.h"

struct bn_arg {
  const struct unmix_backend *be;
  struct unmix_bn_geom g;
  float *x, *y, *dy, *dx, *gamma, *beta, *sm, *si, *dg, *db;
  bool relu;
  int pass; /* 0 forward, 1 backward */
};

/* The forward a ResNet node runs (BN, and its ReLU fused in), or the backward. */
static void run_bn(struct bn_arg *a) {
  const struct unmix_backend *be = a->be;
  if (a->pass == 0)
    be->batchnorm_forward_train(&a->g, a->x, a->gamma, a->beta, a->y, a->sm, a->si, NULL, NULL, 0.1f, 1e-5f,
                                a->relu);
  else
    be->batchnorm_backward(&a->g, a->dy, a->x, a->gamma, a->beta, a->sm, a->si, a->relu, a->dx, a->dg, a->db);
}

/* Best (minimum) time of one call over repetitions filling at least min_seconds: on a shared
 * machine the minimum is the figure least disturbed by other load. */
static double time_bn(struct bn_arg *a, double min_seconds) {
  run_bn(a);
  a->be->synchronize();
  int reps = 0;
  double best = 1e30, t0 = unmix_now();
  do {
    double t1 = unmix_now();
    run_bn(a);
    a->be->synchronize();
    double t = unmix_now() - t1;
    if (t < best) best = t;
    reps++;
  } while (unmix_now() - t0 < min_seconds || reps < 3);
  return best;
}

static float *dev_random(const struct unmix_backend *be, size_t n, uint32_t idx, float lo, float hi) {
  float *h = malloc(n * sizeof(float));
  if (!h) return NULL;
  struct unmix_rng r = unmix_rng_make(1, UNMIX_RNG_TEST, 0, idx, 0);
  unmix_rng_fill_uniform(&r, h, n, lo, hi);
  float *d = be->alloc(n * sizeof(float));
  if (d) be->memcpy_h2d(d, h, n * sizeof(float));
  free(h);
  return d;
}

int unmix_bench_norm(int argc, char **argv) {
  const char *backend = "cpu";
  int batch = 64, splits = 8;
  double secs = 0.5;
  static const struct option opts[] = {{"backend", required_argument, 0, 'b'}, {"batch", required_argument, 0, 'n'},
                                       {"splits", required_argument, 0, 'S'},  {"seconds", required_argument, 0, 's'},
                                       {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
  int o;
  optind = 1;
  while ((o = getopt_long(argc, argv, "b:n:S:s:h", opts, NULL)) != -1) {
    char *end = NULL;
    long v;
    switch (o) {
      case 'b': backend = optarg; break;
      case 'n':
      case 'S':
        v = strtol(optarg, &end, 10);
        if (!end || *end || v < 1 || v > 65536) {
          fprintf(stderr, "unmix bench norm: --%s must be a positive integer, got '%s'\n", o == 'n' ? "batch" : "splits",
                  optarg);
          return 2;
        }
        if (o == 'n') batch = (int)v;
        else splits = (int)v;
        break;
      case 's':
        secs = strtod(optarg, &end);
        if (!end || *end || secs <= 0) {
          fprintf(stderr, "unmix bench norm: --seconds must be positive, got '%s'\n", optarg);
          return 2;
        }
        break;
      case 'h':
        printf("usage: unmix bench norm [--backend cpu|cuda] [--batch N] [--splits S] [--seconds T]\n\n"
               "Times batch norm in train mode at the ResNet-18 CIFAR activation shapes (64x32x32,\n"
               "128x16x16, 256x8x8, 512x4x4; batch N, default 64; S BN splits, default 8 as the CIFAR\n"
               "MoCo manifests): the forward and the backward, each plain and with the ReLU that\n"
               "follows a ResNet's BN fused in. Each figure is the best of repetitions filling at\n"
               "least T seconds (default 0.5), in ms and in GB/s of the bytes the op must move at\n"
               "least (forward: read x, write y; backward: read dy and x, write dx). The last lines\n"
               "add the shapes up as one ResNet-18 forward and backward runs them (5 BNs per stage,\n"
               "stem and first convs of each block followed by a ReLU).\n\n"
               "example: unmix bench norm --batch 64 --seconds 1\n");
        return 0;
      default: return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "unmix bench norm: unexpected argument '%s'\n", argv[optind]);
    return 2;
  }
  if (batch % splits) {
    fprintf(stderr, "unmix bench norm: --batch %d is not a multiple of --splits %d\n", batch, splits);
    return 2;
  }
  const struct unmix_backend *be;
  if (unmix_backend_get(backend, &be) != UNMIX_OK) return unmix_cmd_fail("bench norm");
  printf("backend %s, batch %d, %d BN splits\n\n", be->name, batch, splits);
  printf("%-18s %-9s %-5s %10s %10s\n", "shape (C x HxW)", "pass", "relu", "ms", "GB/s");
  /* ResNet-18 (CIFAR stem): per stage 5 BNs; with a ReLU: stage 1 the stem's and 2 blocks'
   * first BNs (3), later stages the 2 blocks' first BNs (2, the third being a shortcut's) */
  static const int shapes[][2] = {{64, 32}, {128, 16}, {256, 8}, {512, 4}};
  static const int with_relu[4] = {3, 2, 2, 2};
  double total[2] = {0, 0};
  for (int si = 0; si < 4; si++) {
    const int C = shapes[si][0], hw = shapes[si][1] * shapes[si][1];
    const size_t nx = (size_t)batch * hw * C;
    struct bn_arg a = {.be = be, .g = {batch, hw, C, splits}};
    a.x = dev_random(be, nx, 1, -2.0f, 3.0f);
    a.y = dev_random(be, nx, 2, 0.0f, 1.0f);
    a.dy = dev_random(be, nx, 3, -1.0f, 1.0f);
    a.dx = dev_random(be, nx, 4, 0.0f, 1.0f);
    a.gamma = dev_random(be, (size_t)C, 5, 0.5f, 1.5f);
    a.beta = dev_random(be, (size_t)C, 6, -0.5f, 0.5f);
    a.sm = dev_random(be, (size_t)splits * C, 7, 0.0f, 1.0f);
    a.si = dev_random(be, (size_t)splits * C, 8, 0.0f, 1.0f);
    a.dg = dev_random(be, (size_t)C, 9, 0.0f, 1.0f);
    a.db = dev_random(be, (size_t)C, 10, 0.0f, 1.0f);
    if (!a.x || !a.y || !a.dy || !a.dx || !a.gamma || !a.beta || !a.sm || !a.si || !a.dg || !a.db) {
      fprintf(stderr, "unmix bench norm: out of memory\n");
      return 1;
    }
    for (int pass = 0; pass < 2; pass++)
      for (int relu = 0; relu < 2; relu++) {
        a.pass = pass;
        a.relu = relu;
        if (pass == 1) { /* the saved statistics and output of a forward with this ReLU setting */
          a.pass = 0;
          run_bn(&a);
          a.pass = 1;
        }
        const double t = time_bn(&a, secs), bytes = (pass == 0 ? 8.0 : 12.0) * (double)nx;
        char label[32];
        snprintf(label, sizeof label, "%d x %dx%d", C, shapes[si][1], shapes[si][1]);
        printf("%-18s %-9s %-5s %10.3f %10.2f\n", label, pass ? "backward" : "forward", relu ? "yes" : "no", t * 1e3,
               bytes / t / 1e9);
        total[pass] += t * (relu ? with_relu[si] : 5 - with_relu[si]);
      }
    float *bufs[] = {a.x, a.y, a.dy, a.dx, a.gamma, a.beta, a.sm, a.si, a.dg, a.db};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) be->free(bufs[i]);
  }
  printf("\nResNet-18 forward, its 20 BNs (and ReLUs)  %10.3f ms\n", total[0] * 1e3);
  printf("ResNet-18 backward, its 20 BNs (and ReLUs) %10.3f ms\n", total[1] * 1e3);
  return 0;
}
