/* `unmix bench tsne`: seconds per phase (PCA, affinities, optimisation, KL) of a full
 * t-SNE run on synthetic clustered features (default 10,000 points x 128 dims, 10 Gaussian
 * clusters, the paper's Fig. 4 scale), with the final KL and optionally trustworthiness. */
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/data/synth.h"
#include "core/util/blas.h"
#include "core/util/rng.h"
#include "core/util/timer.h"
#include "eval/tsne.h"
#include "experiments/bench.h"
#include "experiments/commands.h"

static int parse_int(const char *flag, const char *s, int lo, int *out) {
  char *end = NULL;
  long v = strtol(s, &end, 10);
  if (!end || *end || end == s || v < lo || v > 100000000) {
    fprintf(stderr, "unmix bench tsne: %s must be an integer >= %d, got '%s'\n", flag, lo, s);
    return 0;
  }
  *out = (int)v;
  return 1;
}
static int parse_float(const char *flag, const char *s, double lo, double *out) {
  char *end = NULL;
  double v = strtod(s, &end);
  if (!end || *end || end == s || !isfinite(v) || v < lo) {
    fprintf(stderr, "unmix bench tsne: %s must be a number >= %g, got '%s'\n", flag, lo, s);
    return 0;
  }
  *out = v;
  return 1;
}

/* n points of dimension d: class c = i % k has centre mu_c ~ N(0, 1) per coordinate (so
 * centres lie ~sqrt(2d) apart) and noise N(0, 1) (within-class spread ~sqrt(2d) as well:
 * overlapping but separable clusters, like learned features). */
static void make_data(int n, int d, int k, uint64_t seed, float *x) {
  float *mu = malloc((size_t)k * d * sizeof(float));
  UNMIX_REQUIRE(mu != NULL, "out of memory");
  struct unmix_rng r = unmix_rng_make(seed, UNMIX_RNG_DATA, 0, 0, 0);
  unmix_rng_fill_normal(&r, mu, (size_t)k * d, 0.0f, 1.0f);
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++) {
    struct unmix_rng ri = unmix_rng_make(seed, UNMIX_RNG_DATA, 1, (uint32_t)i, 0);
    for (int j = 0; j < d; j++) x[(size_t)i * d + j] = mu[(size_t)(i % k) * d + j] + (float)unmix_rng_normal(&ri);
  }
  free(mu);
}

int unmix_bench_tsne(int argc, char **argv) {
  int n = 10000, dim = 128, threads = 0, iters = 1000, clusters = 10, trust_k = 0, verbose = 0;
  double theta = 0.5, perplexity = 30.0;
  static const struct option opts[] = {{"n", required_argument, 0, 'n'},
                                       {"dim", required_argument, 0, 'd'},
                                       {"threads", required_argument, 0, 't'},
                                       {"iterations", required_argument, 0, 'i'},
                                       {"theta", required_argument, 0, 'a'},
                                       {"perplexity", required_argument, 0, 'p'},
                                       {"clusters", required_argument, 0, 'c'},
                                       {"trustworthiness", required_argument, 0, 'k'},
                                       {"verbose", no_argument, 0, 'v'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  int o;
  optind = 1;
  while ((o = getopt_long(argc, argv, "n:d:t:i:a:p:c:k:vh", opts, NULL)) != -1) {
    switch (o) {
      case 'n': if (!parse_int("--n", optarg, 2, &n)) return 2; break;
      case 'd': if (!parse_int("--dim", optarg, 1, &dim)) return 2; break;
      case 't': if (!parse_int("--threads", optarg, 1, &threads)) return 2; break;
      case 'i': if (!parse_int("--iterations", optarg, 0, &iters)) return 2; break;
      case 'a': if (!parse_float("--theta", optarg, 0.0, &theta)) return 2; break;
      case 'p': if (!parse_float("--perplexity", optarg, 1e-3, &perplexity)) return 2; break;
      case 'c': if (!parse_int("--clusters", optarg, 1, &clusters)) return 2; break;
      case 'k': if (!parse_int("--trustworthiness", optarg, 1, &trust_k)) return 2; break;
      case 'v': verbose = 1; break;
      case 'h':
        printf("usage: unmix bench tsne [--n N] [--dim D] [--threads T] [--iterations I] [--theta TH]\n"
               "                        [--perplexity P] [--clusters C] [--trustworthiness K] [--verbose]\n\n"
               "Runs t-SNE (PCA to 50, perplexity P = 30, Barnes-Hut theta TH = 0.5, or exact with 0; I = 1000\n"
               "iterations) on N = 10000 synthetic points of dimension D = 128 drawn from C = 10 Gaussian\n"
               "clusters, and prints the seconds of each phase and in total, and the final KL. T sets the\n"
               "OpenMP (and OpenBLAS) thread count (default: OMP_NUM_THREADS or all cores). With K, also\n"
               "the trustworthiness T(K) of the embedding (O(N^2 log N), not included in the phase times).\n\n"
               "example: unmix bench tsne --n 2000 --threads 2\n");
        return 0;
      default: return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "unmix bench tsne: unexpected argument '%s'\n", argv[optind]);
    return 2;
  }
  if (threads > 0) omp_set_num_threads(threads);
  float *x = malloc((size_t)n * dim * sizeof(float)), *y = malloc((size_t)n * 2 * sizeof(float));
  if (!x || !y) {
    fprintf(stderr, "unmix bench tsne: out of memory for %d x %d points\n", n, dim);
    free(x);
    free(y);
    return 1;
  }
  make_data(n, dim, clusters, 1, x);
  struct unmix_tsne_params p = unmix_tsne_params_default();
  p.iterations = iters;
  p.theta = (float)theta;
  p.perplexity = (float)perplexity;
  p.verbose = verbose;
  p.progress_every = 100;
  printf("t-SNE bench: %d points x %d dims, %d clusters; perplexity %g, theta %g%s, %d iterations; %d threads; %s\n",
         n, dim, clusters, perplexity, theta, theta == 0 ? " (exact)" : " (Barnes-Hut)", iters, omp_get_max_threads(),
         unmix_blas_describe());
  fflush(stdout);
  struct unmix_tsne_stats st;
  if (unmix_tsne_run(x, n, dim, &p, y, &st) != UNMIX_OK) {
    free(x);
    free(y);
    return unmix_cmd_fail("bench tsne");
  }
  printf("%-34s %9.2f s\n", "PCA (to 50 dims)", st.seconds_pca);
  printf("%-34s %9.2f s   (%d neighbours, %lld non-zeros)\n", "P (neighbours + perplexity)", st.seconds_affinity,
         st.neighbours, (long long)st.p_nnz);
  printf("%-34s %9.2f s   (%.1f ms/iteration, learning rate %.1f)\n", "optimisation", st.seconds_optimise,
         iters > 0 ? 1e3 * st.seconds_optimise / iters : 0.0, st.learning_rate);
  printf("%-34s %9.2f s\n", "final KL", st.seconds_kl);
  printf("%-34s %9.2f s\n", "total", st.seconds_total);
  printf("KL(P||Q) %.5f%s\n", st.kl, st.kl_exact_z ? "" : " (Barnes-Hut estimate of Z)");
  if (trust_k > 0) {
    double t, t0 = unmix_now();
    if (unmix_tsne_trustworthiness(x, n, dim, y, 2, trust_k, &t) != UNMIX_OK) {
      free(x);
      free(y);
      return unmix_cmd_fail("bench tsne");
    }
    printf("trustworthiness T(%d) %.4f (%.1f s)\n", trust_k, t, unmix_now() - t0);
  }
  free(x);
  free(y);
  return 0;
}
