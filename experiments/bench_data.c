/* `unmix bench data RECIPE`: augmented views per second through the threaded loader (decode,
 * augmentation, normalisation into the batch ring), total and per worker thread. By default
 * on an in-memory synthetic dataset of the recipe's input size (32x32 for CIFAR recipes,
 * 375x500 for ImageNet ones), so it measures the pipeline, not the disk. */
#include <getopt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "core/data/loader.h"
#include "core/data/synth.h"
#include "core/util/timer.h"
#include "experiments/bench.h"
#include "experiments/commands.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: unmix bench data RECIPE [--threads N] [--seconds S] [--batch B] [--n N]\n"
          "                          [--dataset NAME --root DIR] [--dct-scale]\n\n"
          "Runs the loader in training mode for S seconds (default 3) with N worker threads\n"
          "(default 1) and prints views/s, views/s per core (per worker thread) and views per\n"
          "CPU-second (from all threads' CPU time: the per-core rate, robust to other load on\n"
          "the machine). Without --dataset the input is an in-memory synthetic set of N images\n"
          "(default 10000 at 32x32, or 256 at 375x500 for *-imagenet recipes). --dct-scale\n"
          "decodes streamed JPEGs at reduced scale.\n\n"
          "example: unmix bench data moco-cifar --threads 2\n");
}

/* CPU seconds used by the process (all threads): per-core throughput that stays meaningful
 * when other processes share the machine. */
static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static int parse_int(const char *flag, const char *s, long lo, long hi, long *out) {
  char *end = NULL;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || !end || end == s || *end || v < lo || v > hi) {
    fprintf(stderr, "unmix bench data: %s must be an integer in %ld..%ld, got '%s'\n", flag, lo, hi, s);
    return 0;
  }
  *out = v;
  return 1;
}

int unmix_bench_data(int argc, char **argv) {
  long threads = 1, batch = 256, n = 0;
  double seconds = 3.0;
  const char *dataset = NULL, *root = NULL;
  int dct = 0;
  static const struct option opts[] = {{"threads", required_argument, 0, 't'}, {"seconds", required_argument, 0, 's'},
                                       {"batch", required_argument, 0, 'b'},   {"n", required_argument, 0, 'n'},
                                       {"dataset", required_argument, 0, 'd'}, {"root", required_argument, 0, 'r'},
                                       {"dct-scale", no_argument, 0, 'D'},     {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  int o;
  optind = 1;
  while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    char *end = NULL;
    switch (o) {
      case 't':
        if (!parse_int("--threads", optarg, 1, 1024, &threads)) return 2;
        break;
      case 'b':
        if (!parse_int("--batch", optarg, 1, 65536, &batch)) return 2;
        break;
      case 'n':
        if (!parse_int("--n", optarg, 1, 100000000, &n)) return 2;
        break;
      case 's':
        errno = 0;
        seconds = strtod(optarg, &end);
        if (errno || !end || end == optarg || *end || !(seconds > 0 && seconds <= 3600)) {
          fprintf(stderr, "unmix bench data: --seconds must be a number in (0, 3600], got '%s'\n", optarg);
          return 2;
        }
        break;
      case 'd': dataset = optarg; break;
      case 'r': root = optarg; break;
      case 'D': dct = 1; break;
      case 'h': usage(stdout); return 0;
      default: usage(stderr); return 2;
    }
  }
  if (optind != argc - 1) {
    usage(stderr);
    return 2;
  }
  struct unmix_recipe recipe;
  if (unmix_recipe_get(argv[optind], &recipe) != UNMIX_OK) return unmix_cmd_fail("bench data");
  struct unmix_dataset *ds = NULL;
  unmix_status s;
  if (dataset) {
    struct unmix_dataset_options dopt = {.name = dataset, .root = root, .split = UNMIX_SPLIT_TRAIN, .subset = n,
                                         .dct_scale = dct != 0};
    s = unmix_dataset_open(&dopt, &ds);
  } else {
    int imagenet = strstr(recipe.name, "imagenet") != NULL;
    s = unmix_synth_dataset(n ? n : (imagenet ? 256 : 10000), imagenet ? 375 : 32, imagenet ? 500 : 32, 3, 10, 1, &ds);
  }
  if (s != UNMIX_OK) return unmix_cmd_fail("bench data");
  if (batch > ds->n) batch = ds->n;
  struct unmix_loader_options lo;
  unmix_loader_options_init(&lo, UNMIX_LOADER_TRAIN, (int)batch, 1);
  lo.workers = (int)threads;
  lo.prefetch = (int)threads + 1;
  struct unmix_loader *ld;
  if (unmix_loader_create(ds, &recipe, &lo, &ld) != UNMIX_OK) {
    unmix_dataset_free(ds);
    return unmix_cmd_fail("bench data");
  }
  int epoch = 0;
  const struct unmix_batch *b;
  s = unmix_loader_start_epoch(ld, epoch);
  if (s == UNMIX_OK) s = unmix_loader_next(ld, &b); /* warm-up: first batch, buffers touched */
  long long views = 0, batches = 0;
  double t0 = unmix_now(), t = 0, c0 = cpu_seconds();
  while (s == UNMIX_OK && t < seconds) {
    s = unmix_loader_next(ld, &b);
    if (s != UNMIX_OK) break;
    if (!b) {
      s = unmix_loader_start_epoch(ld, ++epoch);
      continue;
    }
    views += (long long)b->size * b->n_views;
    batches++;
    t = unmix_now() - t0;
  }
  double cpu = cpu_seconds() - c0;
  unmix_loader_free(ld);
  if (s != UNMIX_OK) {
    unmix_dataset_free(ds);
    return unmix_cmd_fail("bench data");
  }
  const struct unmix_view_spec *v0 = &recipe.views[0];
  int oh, ow;
  unmix_view_out_size(v0, ds->h, ds->w, &oh, &ow);
  printf("recipe %s, dataset %s (%lld images%s), %d views of %dx%d, batch %ld\n", recipe.name, ds->name,
         (long long)ds->n, ds->h ? "" : ", varying size", recipe.n_views, oh, ow, batch);
  printf("%-8s %10s %10s %12s %16s %14s\n", "threads", "batches", "seconds", "views/s", "views/s/core", "views/cpu-s");
  printf("%-8ld %10lld %10.2f %12.0f %16.0f %14.0f\n", threads, batches, t, views / t, views / t / threads,
         cpu > 0 ? views / cpu : 0.0);
  unmix_dataset_free(ds);
  return 0;
}
