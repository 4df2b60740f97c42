/* `unmix bench step MANIFEST`: the training step of a manifest's method on synthetic batches
 * (no data loading), measured on a backend: images/s, ms/step, achieved TFLOP/s and its share
 * of the GEMM peak measured in the same run, device memory held, and the projected wall time
 * of the full run. A benchmark: it prints measured figures and is never a test. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend/profile.h"
#include "core/data/recipe.h"
#include "core/io/manifest.h"
#include "core/methods/method.h"
#include "core/optim/optim.h"
#include "core/util/blas.h"
#include "core/util/rng.h"
#include "core/util/timer.h"
#include "experiments/bench.h"
#include "experiments/commands.h"
#include "experiments/projection.h"
#include "experiments/suggest.h"

/* Training-set sizes of the paper's datasets, for the projection (data.subset wins). */
static int64_t train_size(const struct unmix_config *c) {
  if (c->data.subset > 0) return c->data.subset;
  if (!strcmp(c->data.dataset, "cifar10") || !strcmp(c->data.dataset, "cifar100")) return 50000;
  if (!strcmp(c->data.dataset, "fashion-mnist")) return 60000;
  if (!strcmp(c->data.dataset, "imagefolder")) return 1281167; /* ImageNet-1K train */
  return 0;
}

static int image_size(const struct unmix_config *c) {
  if (!strcmp(c->data.recipe, "mocov1-imagenet") || !strcmp(c->data.recipe, "mocov2-imagenet")) return 224;
  if (c->data.n_crop_groups > 0) return c->data.size_crops[0];
  return 32;
}

/* SGEMM n^3 on the backend: the machine's matrix ceiling for this precision. */
static double gemm_peak(const struct unmix_backend *be, int n, double seconds) {
  size_t bytes = sizeof(float) * (size_t)n * n;
  float *a = be->alloc(bytes), *b = be->alloc(bytes), *c = be->alloc(bytes);
  if (!a || !b || !c) return 0;
  be->fill((int64_t)n * n, 0.5f, a);
  be->fill((int64_t)n * n, 0.25f, b);
  be->gemm(false, false, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
  be->synchronize();
  double best = 1e30, t_end = unmix_now() + seconds;
  int reps = 0;
  while (unmix_now() < t_end || reps < 3) {
    double t0 = unmix_now();
    be->gemm(false, false, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    be->synchronize();
    double t = unmix_now() - t0;
    if (t < best) best = t;
    reps++;
  }
  be->free(a);
  be->free(b);
  be->free(c);
  return 2.0 * n * (double)n * n / best;
}

int unmix_bench_step(int argc, char **argv) {
  const char **sets = calloc((size_t)argc + 2, sizeof *sets);
  char backend_set[64] = "";
  int nsets = 0, steps = 10, warmup = 2, batch = 0, rc = 2, profile = 0;
  double gemm_seconds = 1.0;
  static const struct option opts[] = {{"set", required_argument, 0, 's'},   {"backend", required_argument, 0, 'b'},
                                       {"steps", required_argument, 0, 'n'}, {"warmup", required_argument, 0, 'w'},
                                       {"batch", required_argument, 0, 'B'}, {"profile", no_argument, 0, 'P'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  optind = 1;
  int o;
  while ((o = getopt_long(argc, argv, "s:b:n:w:B:Ph", opts, NULL)) != -1) {
    char *end = NULL;
    long v;
    switch (o) {
      case 's': sets[nsets++] = optarg; break;
      case 'P': profile = 1; break;
      case 'b':
        snprintf(backend_set, sizeof backend_set, "backend=%s", optarg);
        sets[nsets++] = backend_set;
        break;
      case 'n':
      case 'w':
      case 'B':
        v = strtol(optarg, &end, 10);
        if (!end || *end || v < (o == 'w' ? 0 : 1) || v > 1000000) {
          fprintf(stderr, "unmix bench step: bad number '%s'\n", optarg);
          goto out;
        }
        if (o == 'n') steps = (int)v;
        else if (o == 'w') warmup = (int)v;
        else batch = (int)v;
        break;
      case 'h':
        printf("usage: unmix bench step MANIFEST [--set k=v]... [--backend auto|cpu|cuda] [--batch B] [--steps N] "
               "[--warmup W] [--profile]\n\n"
               "Times N training steps (after W warm-up steps) of the manifest's method on synthetic\n"
               "batches of its image size (no data loading) and prints images/s, ms/step, achieved TFLOP/s\n"
               "(model FLOPs: conv+linear, backward = 2x forward; a Winograd conv counts as a direct one)\n"
               "next to the SGEMM 4096^3 peak measured in the same run, device memory held by the method,\n"
               "the projected wall time of the manifest's full run on this backend, and the full run on 1,\n"
               "8 and 64 GPUs at the manifest's global batch from the model of docs/scaling.md (assumed\n"
               "GPU throughput and interconnect; compute scaled by the step's model FLOPs). --batch\n"
               "overrides optim.batch_size. --profile times every backend op of the N steps and prints the\n"
               "time per op family and phase (forward, backward, other) per step; on a GPU each op then\n"
               "waits for the device, so the step is slower than unprofiled.\n\n"
               "example: unmix bench step configs/cifar10/moco_sym_unmix.yaml --backend cuda --steps 20\n");
        rc = 0;
        goto out;
      default: unmix_cli_option_hint(stderr, "bench step", opts, argv[optind - 1]); goto out;
    }
  }
  if (optind != argc - 1) {
    fprintf(stderr, "unmix bench step: expected one MANIFEST\n");
    goto out;
  }
  char bset[64];
  if (batch > 0) {
    snprintf(bset, sizeof bset, "optim.batch_size=%d", batch);
    sets[nsets++] = bset;
  }
  struct unmix_config cfg;
  if (unmix_manifest_load(argv[optind], sets, nsets, &cfg) != UNMIX_OK) {
    rc = unmix_cmd_fail("bench step");
    goto out;
  }
  /* the manifest's own (global) batch, for the GPU projection: --batch only sizes this run */
  int global_batch = cfg.optim.batch_size;
  if (batch > 0) {
    struct unmix_config c0;
    if (unmix_manifest_load(argv[optind], sets, nsets - 1, &c0) == UNMIX_OK) {
      global_batch = c0.optim.batch_size;
      unmix_config_free(&c0);
    }
  }
  const struct unmix_backend *be;
  if (unmix_backend_get(cfg.backend, &be) != UNMIX_OK) {
    rc = unmix_cmd_fail("bench step");
    unmix_config_free(&cfg);
    goto out;
  }
  be->set_precision(cfg.precision);
  be->set_deterministic(cfg.deterministic);
  if (profile) be = unmix_profile_wrap(be); /* the method sees the timing table */
  const int S = image_size(&cfg), n = cfg.optim.batch_size;
  struct unmix_method *m = NULL;
  if (unmix_method_create(&cfg, be, S, NULL, &m) != UNMIX_OK) {
    rc = unmix_cmd_fail("bench step");
    unmix_config_free(&cfg);
    goto out;
  }
  const int nviews = unmix_method_views_needed(m);
  /* each view at its recipe size (SwAV multi-crop: 2 x 224 + 6 x 96 ...), else S */
  int vsize[UNMIX_MAX_VIEWS], smax = S;
  struct unmix_recipe rec;
  const bool have_rec = unmix_recipe_from_config(&cfg.data, &rec) == UNMIX_OK && rec.n_views == nviews;
  for (int i = 0; i < nviews && i < UNMIX_MAX_VIEWS; i++) {
    vsize[i] = have_rec && rec.views[i].size > 0 ? rec.views[i].size : S;
    if (vsize[i] > smax) smax = vsize[i];
  }
  float *host = malloc(sizeof(float) * (size_t)n * smax * smax * 3);
  struct unmix_views v = {.n = n, .nviews = nviews};
  struct unmix_rng r = unmix_rng_make(1, UNMIX_RNG_TEST, 0, 0, 0);
  char sizes[160] = "";
  for (int i = 0; i < nviews; i++) {
    const size_t per_view = (size_t)n * vsize[i] * vsize[i] * 3;
    size_t l = strlen(sizes);
    snprintf(sizes + l, sizeof sizes - l, "%s%d", i ? "," : "", vsize[i]);
    unmix_rng_fill_normal(&r, host, per_view, 0.0f, 1.0f);
    float *d = be->alloc(sizeof(float) * per_view);
    if (!d) {
      fprintf(stderr, "unmix bench step: out of device memory for the batch\n");
      rc = 1;
      goto done;
    }
    be->memcpy_h2d(d, host, sizeof(float) * per_view);
    v.view[i] = d;
    v.size[i] = vsize[i];
  }
  printf("manifest %s: %s, %s width %d, batch %d, %d views of sizes %s px, backend %s, precision %s\n",
         argv[optind], unmix_method_name(cfg.method), unmix_arch_name(cfg.model.arch), cfg.model.width, n, nviews,
         sizes, be->name, unmix_precision_name(cfg.precision));
  if (be->device == UNMIX_DEVICE_CPU) {
    printf("cpu: %s\n", unmix_blas_describe());
    printf("openmp: OMP_WAIT_POLICY %s\n", unmix_omp_wait_policy_describe());
  }
  if (be->describe_kernels) printf("%s\n", be->describe_kernels());
  struct unmix_step_stats st;
  for (int i = 0; i < warmup; i++) {
    if (unmix_method_step(m, &v, i, 0, 0.01f, &st) != UNMIX_OK) {
      rc = unmix_cmd_fail("bench step");
      goto done;
    }
  }
  be->synchronize();
  unmix_profile_reset();
  double best = 1e30, total = 0;
  for (int i = 0; i < steps; i++) {
    double t0 = unmix_now();
    if (unmix_method_step(m, &v, warmup + i, 0, 0.01f, &st) != UNMIX_OK) {
      rc = unmix_cmd_fail("bench step");
      goto done;
    }
    be->synchronize();
    double t = unmix_now() - t0;
    total += t;
    if (t < best) best = t;
  }
  const double mean = total / steps;
  if (profile) unmix_profile_print(stdout, steps, mean);
  const double flops = unmix_method_step_flops_per_sample(m) * n;
  const double peak = gemm_peak(be, be->device == UNMIX_DEVICE_CPU ? 2048 : 4096, gemm_seconds);
  const int64_t N = train_size(&cfg);
  const double steps_per_epoch = N > 0 ? floor((double)N / n) : 0;
  const double proj = steps_per_epoch * cfg.train.epochs * mean;
  printf("\n%-34s %12.2f\n", "ms/step (mean)", mean * 1e3);
  printf("%-34s %12.2f\n", "ms/step (best)", best * 1e3);
  printf("%-34s %12.1f\n", "images/s (samples/s, mean)", n / mean);
  printf("%-34s %12.1f\n", "views/s (mean)", n * (double)nviews / mean);
  printf("%-34s %12.3f\n", "model GFLOP per step", flops / 1e9);
  printf("%-34s %12.3f\n", "achieved TFLOP/s (mean)", flops / mean / 1e12);
  printf("%-34s %12.3f\n", "GEMM peak TFLOP/s (same run)", peak / 1e12);
  printf("%-34s %11.1f%%\n", "share of GEMM peak", peak > 0 ? 100.0 * flops / mean / peak : 0.0);
  printf("%-34s %12.1f\n", "device MiB held by the method", (double)unmix_method_device_bytes(m) / 1048576.0);
  if (proj > 0) {
    printf("%-34s %12.0f x %d epochs\n", "steps/epoch (dataset / batch)", steps_per_epoch, cfg.train.epochs);
    printf("%-34s %12.2f h (%.1f days)\n", "projected full run (training only)", proj / 3600.0, proj / 86400.0);
  }
  /* the full run on 1, 8 and 64 GPUs at the manifest's global batch (docs/scaling.md's model) */
  const int64_t gsteps = N > 0 && global_batch > 0 ? (int64_t)floor((double)N / global_batch) * cfg.train.epochs : 0;
  if (gsteps > 0) {
    const int64_t grad = unmix_model_param_count(unmix_method_encoder(m));
    printf("\nprojected on GPUs (ASSUMED inputs, docs/scaling.md: one H100 at %.1f TFLOP/s effective, all-reduce of\n"
           "the encoder's %lld gradients at %.0f GB/s busbw within 8 GPUs, %.0f GB/s beyond; not measured):\n",
           UNMIX_ASSUMED_GPU_FLOPS / 1e12, (long long)grad, UNMIX_ASSUMED_BUSBW_NODE / 1e9,
           UNMIX_ASSUMED_BUSBW_NET / 1e9);
    printf("%6s %14s %12s %14s %10s %14s %16s\n", "GPUs", "batch per GPU", "compute ms", "all-reduce ms", "step ms",
           "steps", "full run");
    const int gpus[3] = {1, 8, 64};
    for (int i = 0; i < 3; i++) {
      struct unmix_gpu_projection p;
      unmix_projection_gpu(unmix_method_step_flops_per_sample(m), grad, global_batch, gsteps, gpus[i], &p);
      if (!p.per_gpu_batch) continue;
      char dur[64];
      unmix_format_duration(p.run_s, dur, sizeof dur);
      printf("%6d %14d %12.1f %14.2f %10.1f %14lld %16s\n", p.gpus, p.per_gpu_batch, p.compute_s * 1e3,
             p.allreduce_s * 1e3, p.step_s * 1e3, (long long)gsteps, dur);
    }
  }
  rc = 0;
done:
  for (int i = 0; i < nviews; i++)
    if (v.view[i]) be->free((void *)v.view[i]);
  free(host);
  unmix_method_destroy(m);
  unmix_config_free(&cfg);
out:
  free(sets);
  return rc;
}
