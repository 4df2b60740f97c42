/* `unmix bench ops`: GFLOP/s of conv2d forward / backward-data / backward-weight at the
 * ResNet-18 CIFAR shapes (3x3 convs of layers 1-4, batch 256 by default) next to SGEMM
 * 2048^3, the machine's ceiling measured in the same run. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend/backend.h"
#include "core/io/manifest.h"
#include "core/util/blas.h"
#include "core/util/rng.h"
#include "core/util/timer.h"
#include "experiments/bench.h"
#include "experiments/commands.h"

/* Best (minimum) time of one call over repetitions filling at least min_seconds: on a
 * shared machine the minimum is the figure least disturbed by other load, and SGEMM and
 * every conv pass are measured the same way. */
static double time_it(void (*fn)(void *), void *arg, const struct unmix_backend *be, double min_seconds) {
  fn(arg); /* warm-up: scratch buffers, page faults, thread pools */
  be->synchronize();
  int reps = 0;
  double best = 1e30, t0 = unmix_now();
  do {
    double t1 = unmix_now();
    fn(arg);
    be->synchronize();
    double t = unmix_now() - t1;
    if (t < best) best = t;
    reps++;
  } while (unmix_now() - t0 < min_seconds || reps < 3);
  return best;
}

struct gemm_arg {
  const struct unmix_backend *be;
  int n;
  float *a, *b, *c;
};
static void run_gemm(void *p) {
  struct gemm_arg *g = p;
  g->be->gemm(false, false, g->n, g->n, g->n, 1.0f, g->a, g->n, g->b, g->n, 0.0f, g->c, g->n);
}

struct conv_arg {
  const struct unmix_backend *be;
  struct unmix_conv_geom g;
  float *x, *w, *y;
  int pass;
};
static void run_conv(void *p) {
  struct conv_arg *c = p;
  if (c->pass == 0) c->be->conv2d_forward(&c->g, c->x, c->w, c->y);
  else if (c->pass == 1) c->be->conv2d_backward_data(&c->g, c->y, c->w, c->x);
  else c->be->conv2d_backward_weight(&c->g, c->y, c->x, c->w);
}

static float *dev_random(const struct unmix_backend *be, size_t n, uint32_t idx) {
  float *h = malloc(n * sizeof(float));
  struct unmix_rng r = unmix_rng_make(1, UNMIX_RNG_TEST, 0, idx, 0);
  unmix_rng_fill_uniform(&r, h, n, -1.0f, 1.0f);
  float *d = be->alloc(n * sizeof(float));
  if (d) be->memcpy_h2d(d, h, n * sizeof(float));
  free(h);
  return d;
}

int unmix_bench_ops(int argc, char **argv) {
  const char *backend = "cpu";
  int batch = 256;
  double secs = 1.0;
  enum unmix_precision prec = UNMIX_PREC_FP32;
  static const struct option opts[] = {{"backend", required_argument, 0, 'b'},
                                       {"precision", required_argument, 0, 'p'},
                                       {"batch", required_argument, 0, 'n'},
                                       {"seconds", required_argument, 0, 's'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  int o;
  optind = 1;
  while ((o = getopt_long(argc, argv, "b:p:n:s:h", opts, NULL)) != -1) {
    char *end = NULL;
    switch (o) {
      case 'b': backend = optarg; break;
      case 'p':
        if (!strcmp(optarg, "fp32")) prec = UNMIX_PREC_FP32;
        else if (!strcmp(optarg, "tf32")) prec = UNMIX_PREC_TF32;
        else if (!strcmp(optarg, "bf16")) prec = UNMIX_PREC_BF16;
        else { fprintf(stderr, "unmix bench ops: --precision must be fp32, tf32 or bf16, got '%s'\n", optarg); return 2; }
        break;
      case 'n':
        batch = (int)strtol(optarg, &end, 10);
        if (!end || *end || batch < 1) { fprintf(stderr, "unmix bench ops: --batch must be a positive integer, got '%s'\n", optarg); return 2; }
        break;
      case 's':
        secs = strtod(optarg, &end);
        if (!end || *end || secs <= 0) { fprintf(stderr, "unmix bench ops: --seconds must be positive, got '%s'\n", optarg); return 2; }
        break;
      case 'h':
        printf("usage: unmix bench ops [--backend cpu|cuda] [--precision fp32|tf32|bf16] [--batch N] [--seconds S]\n\n"
               "Measures SGEMM 2048^3 and the three conv2d passes at the ResNet-18 CIFAR 3x3 shapes\n"
               "(64x32x32, 128x16x16, 256x8x8, 512x4x4; batch N, default 256), each repeated for at\n"
               "least S seconds (default 1), and prints GFLOP/s of the best repetition and the share\n"
               "of the SGEMM figure (measured the same way). --precision sets the backend's math mode\n"
               "for both (default fp32; `unmix info` says which kernels each mode runs). On the CPU the\n"
               "fp32 convolutions run on the kernels UNMIX_CPU_CONV picks (default auto); GFLOP/s\n"
               "count a direct convolution's FLOPs, so a Winograd kernel (fewer multiplications) can\n"
               "pass 100%% of SGEMM.\n\n"
               "example: unmix bench ops --batch 64 --seconds 2\n");
        return 0;
      default: return 2;
    }
  }
  if (optind < argc) { fprintf(stderr, "unmix bench ops: unexpected argument '%s'\n", argv[optind]); return 2; }
  const struct unmix_backend *be;
  if (unmix_backend_get(backend, &be) != UNMIX_OK) return unmix_cmd_fail("bench ops");
  be->set_precision(prec);
  if (be->device == UNMIX_DEVICE_CPU)
    printf("backend cpu: %s\n", unmix_blas_describe());
  else
    printf("backend %s\n", be->name);

  struct gemm_arg ga = {be, 2048, dev_random(be, 2048 * 2048, 1), dev_random(be, 2048 * 2048, 2),
                        dev_random(be, 2048 * 2048, 3)};
  if (!ga.a || !ga.b || !ga.c) { fprintf(stderr, "unmix bench ops: out of memory\n"); return 1; }
  double tg = time_it(run_gemm, &ga, be, secs);
  double gemm_gflops = 2.0 * 2048.0 * 2048.0 * 2048.0 / tg / 1e9;
  printf("%-28s %10.1f GFLOP/s (precision %s)\n", "gemm 2048^3", gemm_gflops, unmix_precision_name(prec));
  be->free(ga.a); be->free(ga.b); be->free(ga.c);

  static const int shapes[][2] = {{64, 32}, {128, 16}, {256, 8}, {512, 4}};
  static const char *pass_names[] = {"forward", "backward-data", "backward-weight"};
  printf("\n%-22s %-16s %10s %9s %10s\n", "conv 3x3 (C x HxW)", "pass", "GFLOP/s", "% sgemm", "ms");
  double worst = 1e30;
  for (int si = 0; si < 4; si++) {
    struct conv_arg ca;
    memset(&ca, 0, sizeof ca);
    ca.be = be;
    int ch = shapes[si][0], hw = shapes[si][1];
    unmix_conv_geom_init(&ca.g, batch, hw, hw, ch, ch, 3, 3, 1, 1);
    size_t nx = (size_t)batch * hw * hw * ch, nw = (size_t)ch * 9 * ch;
    ca.x = dev_random(be, nx, 10);
    ca.y = dev_random(be, nx, 11);
    ca.w = dev_random(be, nw, 12);
    if (!ca.x || !ca.y || !ca.w) { fprintf(stderr, "unmix bench ops: out of memory\n"); return 1; }
    double flops = 2.0 * batch * hw * hw * (double)ch * ch * 9.0;
    for (int pass = 0; pass < 3; pass++) {
      ca.pass = pass;
      double t = time_it(run_conv, &ca, be, secs);
      double gf = flops / t / 1e9;
      if (gf < worst) worst = gf;
      char label[64];
      snprintf(label, sizeof label, "%d x %dx%d", ch, hw, hw);
      printf("%-22s %-16s %10.1f %8.0f%% %10.2f\n", label, pass_names[pass], gf, 100.0 * gf / gemm_gflops, t * 1e3);
    }
    be->free(ca.x); be->free(ca.y); be->free(ca.w);
  }
  printf("\nslowest conv pass: %.1f GFLOP/s = %.0f%% of SGEMM (target >= 50%%)\n", worst, 100.0 * worst / gemm_gflops);
  return 0;
}
