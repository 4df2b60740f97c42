/* t-SNE: PCA, perplexity-calibrated affinities (sparse kNN or dense), Barnes-Hut or exact
 * gradient descent, final KL, and trustworthiness. Semantics and choices: eval/tsne.h. */
#include "eval/tsne.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/util/log.h"
#include "core/util/rng.h"
#include "core/util/timer.h"

/* LAPACK from libopenblas (Fortran calling convention, hidden string lengths last). */
extern void dsyevr_(const char *jobz, const char *range, const char *uplo, const int *n, double *a, const int *lda,
                    const double *vl, const double *vu, const int *il, const int *iu, const double *abstol, int *m,
                    double *w, double *z, const int *ldz, int *isuppz, double *work, const int *lwork, int *iwork,
                    const int *liwork, int *info, size_t l_jobz, size_t l_range, size_t l_uplo);

#define TSNE_EXACT_MAX_N 5000   /* dense P is n^2 doubles */
#define TSNE_EXACT_Z_MAX_N 50000 /* final KL sums Z over all pairs up to here */
#define QT_LEAF_CAP 8
#define QT_MAX_DEPTH 48
#define KNN_BLOCK 256
/* Per-iteration loops go parallel from this many points on: below it a team's barriers
 * cost more than they save (much more on a loaded machine). */
#define PAR_MIN_POINTS 1024

struct unmix_tsne_params unmix_tsne_params_default(void) {
  struct unmix_tsne_params p;
  memset(&p, 0, sizeof p);
  p.dims_out = 2;
  p.perplexity = 30.0f;
  p.theta = 0.5f;
  p.iterations = 1000;
  p.exaggeration_iters = 250;
  p.exaggeration = 12.0f;
  p.learning_rate = 0.0f;
  p.momentum = 0.5f;
  p.final_momentum = 0.8f;
  p.pca_dims = 50;
  p.seed = 0;
  p.verbose = 0;
  p.progress_every = 50;
  return p;
}

/* ======================================================================================
 * PCA
 * ====================================================================================== */

unmix_status unmix_pca(const float *x, int n, int d, int k, float *proj, float *components, double *variances) {
  if (!x || !proj) return unmix_error_set(UNMIX_ERR_ARG, "pca: missing input or output");
  if (n < 2 || d < 1 || k < 1 || k > d)
    return unmix_error_set(UNMIX_ERR_ARG, "pca: %d samples of dimension %d to %d components: need n >= 2 and "
                           "1 <= k <= d", n, d, k);
  unmix_status st = UNMIX_OK;
  int omp_threads = 0; /* to restore; 0 = unchanged */
  double *mean = calloc((size_t)d, sizeof(double));
  float *xc = malloc((size_t)n * d * sizeof(float));
  float *cov = malloc((size_t)d * d * sizeof(float));
  double *a = malloc((size_t)d * d * sizeof(double));
  double *w = malloc((size_t)d * sizeof(double));
  double *z = malloc((size_t)d * k * sizeof(double));
  int *isuppz = malloc((size_t)2 * k * sizeof(int));
  float *v = malloc((size_t)d * k * sizeof(float));
  double *work = NULL;
  int *iwork = NULL;
  if (!mean || !xc || !cov || !a || !w || !z || !isuppz || !v) {
    st = unmix_error_set(UNMIX_ERR_NOMEM, "pca: out of memory for %d x %d samples", n, d);
    goto done;
  }
  for (int i = 0; i < n; i++)
    for (int j = 0; j < d; j++) mean[j] += x[(size_t)i * d + j];
  for (int j = 0; j < d; j++) mean[j] /= n;
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++)
    for (int j = 0; j < d; j++) xc[(size_t)i * d + j] = (float)((double)x[(size_t)i * d + j] - mean[j]);
  /* BLAS and LAPACK below run on one thread (the OpenMP build of OpenBLAS sizes its team
   * from this thread's OpenMP setting): their partitioning, and so their rounding, would
   * otherwise depend on the thread count. */
  omp_threads = omp_get_max_threads();
  omp_set_num_threads(1);
  /* cov (d, d), upper triangle = xc^T xc / (n - 1) */
  cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, d, n, 1.0f / (float)(n - 1), xc, d, 0.0f, cov, d);
  for (int i = 0; i < d; i++)
    for (int j = i; j < d; j++) a[(size_t)i * d + j] = a[(size_t)j * d + i] = cov[(size_t)i * d + j];

  {
    const char jobz = 'V', range = 'I', uplo = 'L';
    const int il = d - k + 1, iu = d, lda = d, ldz = d;
    const double vl = 0.0, vu = 0.0, abstol = DBL_MIN;
    int m = 0, info = 0, lwork = -1, liwork = -1, iwq = 0;
    double wq = 0.0;
    dsyevr_(&jobz, &range, &uplo, &d, a, &lda, &vl, &vu, &il, &iu, &abstol, &m, w, z, &ldz, isuppz, &wq, &lwork, &iwq,
            &liwork, &info, 1, 1, 1);
    if (info != 0) {
      st = unmix_error_set(UNMIX_ERR_NUMERIC, "pca: LAPACK dsyevr workspace query failed (info %d)", info);
      goto done;
    }
    lwork = (int)wq;
    liwork = iwq;
    work = malloc((size_t)lwork * sizeof(double));
    iwork = malloc((size_t)liwork * sizeof(int));
    if (!work || !iwork) {
      st = unmix_error_set(UNMIX_ERR_NOMEM, "pca: out of memory for the eigen-solver workspace");
      goto done;
    }
    dsyevr_(&jobz, &range, &uplo, &d, a, &lda, &vl, &vu, &il, &iu, &abstol, &m, w, z, &ldz, isuppz, work, &lwork,
            iwork, &liwork, &info, 1, 1, 1);
    if (info != 0 || m != k) {
      st = unmix_error_set(UNMIX_ERR_NUMERIC, "pca: LAPACK dsyevr failed on the %d x %d covariance (info %d, "
                           "%d of %d eigenvectors)", d, d, info, m, k);
      goto done;
    }
  }
  /* eigenvalues ascending: component r is column k-1-r of z (column-major, ldz = d) */
  for (int r = 0; r < k; r++) {
    const double *col = z + (size_t)(k - 1 - r) * d;
    int big = 0;
    for (int j = 1; j < d; j++)
      if (fabs(col[j]) > fabs(col[big])) big = j;
    double sgn = col[big] < 0 ? -1.0 : 1.0;
    for (int j = 0; j < d; j++) {
      v[(size_t)j * k + r] = (float)(sgn * col[j]);
      if (components) components[(size_t)r * d + j] = (float)(sgn * col[j]);
    }
    if (variances) variances[r] = w[k - 1 - r];
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, k, d, 1.0f, xc, d, v, k, 0.0f, proj, k);

done:
  if (omp_threads > 0) omp_set_num_threads(omp_threads);
  free(mean); free(xc); free(cov); free(a); free(w); free(z); free(isuppz); free(v); free(work); free(iwork);
  return st;
}

/* ======================================================================================
 * Affinities
 * ====================================================================================== */

double unmix_tsne_calibrate_row(const double *sqdist, int k, double perplexity, double *p, double *beta_out) {
  /* Distances are shifted by their minimum: P and H are unchanged, exp() cannot underflow
   * everywhere, and the sum is >= 1. */
  double dmin = DBL_MAX;
  for (int m = 0; m < k; m++) dmin = sqdist[m] < dmin ? sqdist[m] : dmin;
  const double target = log(perplexity), tol = 1e-5;
  double beta = 1.0, lo = 0.0, hi = 0.0, h = 0.0, sum = 1.0;
  bool have_lo = false, have_hi = false;
  for (int it = 0; it < 200; it++) {
    sum = 0.0;
    double hs = 0.0;
    for (int m = 0; m < k; m++) {
      double e = sqdist[m] - dmin;
      p[m] = exp(-beta * e);
      sum += p[m];
      hs += e * p[m];
    }
    h = beta * hs / sum + log(sum);
    double diff = h - target;
    if (fabs(diff) < tol) break;
    if (diff > 0) { /* too flat: sharpen */
      lo = beta;
      have_lo = true;
      beta = have_hi ? 0.5 * (beta + hi) : 2.0 * beta;
    } else {
      hi = beta;
      have_hi = true;
      beta = have_lo ? 0.5 * (beta + lo) : 0.5 * beta;
    }
  }
  for (int m = 0; m < k; m++) p[m] /= sum;
  if (beta_out) *beta_out = beta;
  return h;
}

/* Max-heap of K (dist, idx) pairs, worst (largest) on top; ties: larger index is worse. */
static inline bool nb_worse(float da, int ia, float db, int ib) { return da > db || (da == db && ia > ib); }
static void nb_sift(float *dv, int32_t *iv, int k, int pos) {
  for (;;) {
    int l = 2 * pos + 1, r = l + 1, w = pos;
    if (l < k && nb_worse(dv[l], iv[l], dv[w], iv[w])) w = l;
    if (r < k && nb_worse(dv[r], iv[r], dv[w], iv[w])) w = r;
    if (w == pos) return;
    float td = dv[w]; dv[w] = dv[pos]; dv[pos] = td;
    int32_t ti = iv[w]; iv[w] = iv[pos]; iv[pos] = ti;
    pos = w;
  }
}

struct nb_pair {
  double d;
  int32_t j;
};
static int nb_cmp(const void *a, const void *b) {
  const struct nb_pair *x = a, *y = b;
  if (x->d != y->d) return x->d < y->d ? -1 : 1;
  return (x->j > y->j) - (x->j < y->j);
}

/* Exact K nearest neighbours (excluding self) of every row of x (n, d): candidates from a
 * blocked SGEMM distance matrix, distances then recomputed in double and sorted ascending
 * (ties by index). nbr (n, K), sqd (n, K). */
static unmix_status knn_exact(const float *x, int n, int d, int K, int32_t *nbr, double *sqd) {
  float *nrm = malloc((size_t)n * sizeof(float));
  float *g = malloc((size_t)KNN_BLOCK * n * sizeof(float));
  if (!nrm || !g) {
    free(nrm);
    free(g);
    return unmix_error_set(UNMIX_ERR_NOMEM, "t-SNE: out of memory for the neighbour search (%d points)", n);
  }
  for (int i = 0; i < n; i++) {
    double s = 0;
    for (int e = 0; e < d; e++) s += (double)x[(size_t)i * d + e] * x[(size_t)i * d + e];
    nrm[i] = (float)s;
  }
  for (int i0 = 0; i0 < n; i0 += KNN_BLOCK) {
    int b = n - i0 < KNN_BLOCK ? n - i0 : KNN_BLOCK;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b, n, d, 1.0f, x + (size_t)i0 * d, d, x, d, 0.0f, g, n);
#pragma omp parallel
    {
      float *hd = malloc((size_t)K * sizeof(float));
      struct nb_pair *pr = malloc((size_t)K * sizeof(struct nb_pair));
      UNMIX_REQUIRE(hd && pr, "t-SNE: out of host memory for %d neighbours", K);
#pragma omp for schedule(static)
      for (int r = 0; r < b; r++) {
        int i = i0 + r;
        const float *gr = g + (size_t)r * n;
        int32_t *hi = nbr + (size_t)i * K;
        int filled = 0;
        for (int j = 0; j < n; j++) {
          if (j == i) continue;
          float dist = nrm[i] + nrm[j] - 2.0f * gr[j];
          if (filled < K) {
            hd[filled] = dist;
            hi[filled] = j;
            if (++filled == K)
              for (int s = K / 2 - 1; s >= 0; s--) nb_sift(hd, hi, K, s);
          } else if (nb_worse(hd[0], hi[0], dist, j)) {
            hd[0] = dist;
            hi[0] = j;
            nb_sift(hd, hi, K, 0);
          }
        }
        for (int m = 0; m < K; m++) {
          int j = hi[m];
          double s = 0;
          for (int e = 0; e < d; e++) {
            double t = (double)x[(size_t)i * d + e] - x[(size_t)j * d + e];
            s += t * t;
          }
          pr[m].d = s;
          pr[m].j = j;
        }
        qsort(pr, (size_t)K, sizeof *pr, nb_cmp);
        for (int m = 0; m < K; m++) {
          hi[m] = pr[m].j;
          sqd[(size_t)i * K + m] = pr[m].d;
        }
      }
      free(hd);
      free(pr);
    }
  }
  free(nrm);
  free(g);
  return UNMIX_OK;
}

/* Sparse symmetric P in CSR form. */
struct csr {
  int n;
  int64_t *rowptr; /* n+1 */
  int32_t *col;
  double *val;
};
static void csr_free(struct csr *c) {
  free(c->rowptr);
  free(c->col);
  free(c->val);
  memset(c, 0, sizeof *c);
}
static int pair_col_cmp(const void *a, const void *b) {
  const struct nb_pair *x = a, *y = b;
  return (x->j > y->j) - (x->j < y->j);
}

/* P = (Pc + Pc^T) / sum from the conditional rows Pc (n, K) over neighbours nbr. */
static unmix_status symmetrise_sparse(int n, int K, const int32_t *nbr, const double *pc, struct csr *out) {
  memset(out, 0, sizeof *out);
  int64_t *cnt = calloc((size_t)n + 1, sizeof(int64_t));
  int64_t *pos = malloc((size_t)n * sizeof(int64_t));
  struct nb_pair *ent = malloc((size_t)2 * n * K * sizeof(struct nb_pair));
  int64_t *newcnt = calloc((size_t)n + 1, sizeof(int64_t));
  if (!cnt || !pos || !ent || !newcnt) goto nomem;
  for (int i = 0; i < n; i++) {
    cnt[i + 1] += K;
    for (int m = 0; m < K; m++) cnt[nbr[(size_t)i * K + m] + 1]++;
  }
  for (int i = 0; i < n; i++) cnt[i + 1] += cnt[i];
  for (int i = 0; i < n; i++) pos[i] = cnt[i];
  for (int i = 0; i < n; i++)
    for (int m = 0; m < K; m++) {
      int j = nbr[(size_t)i * K + m];
      double v = pc[(size_t)i * K + m];
      ent[pos[i]].j = j;
      ent[pos[i]++].d = v;
      ent[pos[j]].j = i;
      ent[pos[j]++].d = v;
    }
  /* per row: sort by column, merge duplicates (a + b: order-independent) */
#pragma omp parallel for schedule(dynamic, 64)
  for (int i = 0; i < n; i++) {
    struct nb_pair *r = ent + cnt[i];
    int64_t len = cnt[i + 1] - cnt[i], w = 0;
    qsort(r, (size_t)len, sizeof *r, pair_col_cmp);
    for (int64_t s = 0; s < len; s++) {
      if (w > 0 && r[w - 1].j == r[s].j) r[w - 1].d += r[s].d;
      else r[w++] = r[s];
    }
    newcnt[i + 1] = w;
  }
  for (int i = 0; i < n; i++) newcnt[i + 1] += newcnt[i];
  out->n = n;
  out->rowptr = newcnt;
  newcnt = NULL;
  out->col = malloc((size_t)out->rowptr[n] * sizeof(int32_t));
  out->val = malloc((size_t)out->rowptr[n] * sizeof(double));
  if (!out->col || !out->val) goto nomem;
  double total = 0.0;
  for (int i = 0; i < n; i++) {
    int64_t len = out->rowptr[i + 1] - out->rowptr[i];
    for (int64_t s = 0; s < len; s++) {
      out->col[out->rowptr[i] + s] = ent[cnt[i] + s].j;
      out->val[out->rowptr[i] + s] = ent[cnt[i] + s].d;
      total += ent[cnt[i] + s].d;
    }
  }
  for (int64_t s = 0; s < out->rowptr[n]; s++) out->val[s] /= total;
  free(cnt);
  free(pos);
  free(ent);
  return UNMIX_OK;
nomem:
  free(cnt);
  free(pos);
  free(ent);
  free(newcnt);
  csr_free(out);
  return unmix_error_set(UNMIX_ERR_NOMEM, "t-SNE: out of memory for the sparse affinities (%d points)", n);
}

/* ======================================================================================
 * Barnes-Hut quadtree
 * ====================================================================================== */

struct qt_node {
  double comx, comy; /* centre of mass */
  double cx, cy, hw; /* cell centre and half-width */
  int32_t count;     /* points below */
  int32_t next;      /* index of the node after this subtree (preorder) */
  int32_t start;     /* first point (into perm) */
  int32_t leaf;
};
struct qtree {
  struct qt_node *nodes;
  int nnodes, cap;
  int32_t *perm, *tmp; /* points in tree order */
  double *py;          /* their coordinates, (n, 2), tree order */
};

static int qt_push(struct qtree *t) {
  if (t->nnodes == t->cap) {
    int cap = t->cap ? 2 * t->cap : 1024;
    struct qt_node *nn = realloc(t->nodes, (size_t)cap * sizeof *nn);
    UNMIX_REQUIRE(nn != NULL, "t-SNE: out of host memory for %d quadtree nodes", cap);
    t->nodes = nn;
    t->cap = cap;
  }
  return t->nnodes++;
}

static void qt_build_node(struct qtree *t, const double *y, int start, int count, double cx, double cy, double hw,
                          int depth) {
  int id = qt_push(t);
  double sx = 0, sy = 0;
  for (int s = start; s < start + count; s++) {
    sx += y[2 * t->perm[s]];
    sy += y[2 * t->perm[s] + 1];
  }
  struct qt_node nd = {sx / count, sy / count, cx, cy, hw, count, 0, start, 0};
  if (count <= QT_LEAF_CAP || depth >= QT_MAX_DEPTH) {
    nd.leaf = 1;
    for (int s = start; s < start + count; s++) {
      t->py[2 * s] = y[2 * t->perm[s]];
      t->py[2 * s + 1] = y[2 * t->perm[s] + 1];
    }
    nd.next = t->nnodes;
    t->nodes[id] = nd;
    return;
  }
  t->nodes[id] = nd;
  /* stable counting partition into quadrants q = (x >= cx) + 2 (y >= cy) */
  int qc[4] = {0, 0, 0, 0};
  for (int s = start; s < start + count; s++) {
    int i = t->perm[s];
    qc[(y[2 * i] >= cx) + 2 * (y[2 * i + 1] >= cy)]++;
  }
  int off[4] = {start, start + qc[0], start + qc[0] + qc[1], start + qc[0] + qc[1] + qc[2]}, o2[4];
  memcpy(o2, off, sizeof off);
  for (int s = start; s < start + count; s++) {
    int i = t->perm[s];
    t->tmp[o2[(y[2 * i] >= cx) + 2 * (y[2 * i + 1] >= cy)]++] = i;
  }
  memcpy(t->perm + start, t->tmp + start, (size_t)count * sizeof(int32_t));
  double h = 0.5 * hw;
  for (int q = 0; q < 4; q++)
    if (qc[q] > 0)
      qt_build_node(t, y, off[q], qc[q], cx + ((q & 1) ? h : -h), cy + ((q & 2) ? h : -h), h, depth + 1);
  t->nodes[id].next = t->nnodes;
}

static void qt_build(struct qtree *t, const double *y, int n) {
  double x0 = DBL_MAX, x1 = -DBL_MAX, y0 = DBL_MAX, y1 = -DBL_MAX;
  for (int i = 0; i < n; i++) {
    x0 = fmin(x0, y[2 * i]);
    x1 = fmax(x1, y[2 * i]);
    y0 = fmin(y0, y[2 * i + 1]);
    y1 = fmax(y1, y[2 * i + 1]);
  }
  double hw = 0.5 * fmax(x1 - x0, y1 - y0);
  hw = hw * (1.0 + 1e-6) + 1e-12;
  for (int i = 0; i < n; i++) t->perm[i] = i;
  t->nnodes = 0;
  qt_build_node(t, y, 0, n, 0.5 * (x0 + x1), 0.5 * (y0 + y1), hw, 0);
}

static bool qt_init(struct qtree *t, int n) {
  memset(t, 0, sizeof *t);
  t->perm = malloc((size_t)n * sizeof(int32_t));
  t->tmp = malloc((size_t)n * sizeof(int32_t));
  t->py = malloc((size_t)2 * n * sizeof(double));
  return t->perm && t->tmp && t->py;
}
static void qt_free(struct qtree *t) {
  free(t->nodes);
  free(t->perm);
  free(t->tmp);
  free(t->py);
  memset(t, 0, sizeof *t);
}

/* Repulsion on point i at (xi, yi): f += sum_j q^2 (y_i - y_j), returns sum_j q. */
static double qt_repulse(const struct qtree *t, int i, double xi, double yi, double theta2, double *fx, double *fy) {
  double sq = 0.0, ax = 0.0, ay = 0.0;
  const struct qt_node *nodes = t->nodes;
  int idx = 0, nn = t->nnodes;
  while (idx < nn) {
    const struct qt_node *nd = &nodes[idx];
    double dx = xi - nd->comx, dy = yi - nd->comy, dd = dx * dx + dy * dy;
    bool inside = fabs(xi - nd->cx) <= nd->hw && fabs(yi - nd->cy) <= nd->hw;
    if (!inside && 4.0 * nd->hw * nd->hw < theta2 * dd) { /* side / distance < theta */
      double q = 1.0 / (1.0 + dd), m = nd->count * q;
      sq += m;
      m *= q;
      ax += m * dx;
      ay += m * dy;
      idx = nd->next;
    } else if (nd->leaf) {
      for (int s = nd->start; s < nd->start + nd->count; s++) {
        if (t->perm[s] == i) continue;
        double ex = xi - t->py[2 * s], ey = yi - t->py[2 * s + 1];
        double q = 1.0 / (1.0 + ex * ex + ey * ey);
        sq += q;
        ax += q * q * ex;
        ay += q * q * ey;
      }
      idx = nd->next;
    } else {
      idx++;
    }
  }
  *fx = ax;
  *fy = ay;
  return sq;
}

/* neg_f (n, 2) and per-point sums; total in fixed order. */
static double qt_repulsion_all(const struct qtree *t, const double *y, int n, double theta, double *neg_f,
                               double *sqi) {
  double theta2 = theta * theta;
  /* tree order: neighbouring points walk similar paths */
#pragma omp parallel for schedule(dynamic, 64) if (n >= PAR_MIN_POINTS)
  for (int s = 0; s < n; s++) {
    int i = t->perm[s];
    sqi[i] = qt_repulse(t, i, y[2 * i], y[2 * i + 1], theta2, &neg_f[2 * i], &neg_f[2 * i + 1]);
  }
  double z = 0.0;
  for (int i = 0; i < n; i++) z += sqi[i];
  return z;
}

void unmix_tsne_repulsion(const double *y, int n, double theta, double *neg_f, double *sum_q) {
  struct qtree t;
  double *sqi = malloc((size_t)n * sizeof(double));
  UNMIX_REQUIRE(sqi && qt_init(&t, n), "t-SNE: out of host memory for %d points", n);
  qt_build(&t, y, n);
  *sum_q = qt_repulsion_all(&t, y, n, theta, neg_f, sqi);
  qt_free(&t);
  free(sqi);
}

/* ======================================================================================
 * Optimisation
 * ====================================================================================== */

static inline double sgn(double v) { return v == 0.0 ? 0.0 : (v < 0.0 ? -1.0 : 1.0); }

/* Gains, momentum update and re-centring (bhtsne). */
static void update_step(int n, int dims, double *y, const double *grad, double *upd, double *gains, double mom,
                        double lr) {
  int64_t nd = (int64_t)n * dims;
#pragma omp parallel for schedule(static) if (nd >= 8 * PAR_MIN_POINTS)
  for (int64_t e = 0; e < nd; e++) {
    double g = gains[e];
    g = sgn(grad[e]) != sgn(upd[e]) ? g + 0.2 : g * 0.8;
    if (g < 0.01) g = 0.01;
    gains[e] = g;
    upd[e] = mom * upd[e] - lr * g * grad[e];
    y[e] += upd[e];
  }
  for (int c = 0; c < dims; c++) {
    double mu = 0.0;
    for (int i = 0; i < n; i++) mu += y[(size_t)i * dims + c];
    mu /= n;
    for (int i = 0; i < n; i++) y[(size_t)i * dims + c] -= mu;
  }
}

/* Attractive forces from the sparse P (times ex); when klpart is non-NULL also
 * klpart[i] = sum_j P_ij log(P_ij (1 + d_ij^2)). */
static void attract_sparse(const struct csr *P, const double *y, double ex, double *pos_f, double *klpart) {
  int n = P->n;
#pragma omp parallel for schedule(dynamic, 256) if (n >= 4 * PAR_MIN_POINTS)
  for (int i = 0; i < n; i++) {
    double fx = 0, fy = 0, kl = 0;
    for (int64_t s = P->rowptr[i]; s < P->rowptr[i + 1]; s++) {
      int j = P->col[s];
      double dx = y[2 * i] - y[2 * j], dy = y[2 * i + 1] - y[2 * j + 1];
      double w = 1.0 + dx * dx + dy * dy, pq = P->val[s] / w;
      fx += pq * dx;
      fy += pq * dy;
      if (klpart && P->val[s] > 0) kl += P->val[s] * log(P->val[s] * w);
    }
    pos_f[2 * i] = ex * fx;
    pos_f[2 * i + 1] = ex * fy;
    if (klpart) klpart[i] = kl;
  }
}

static double sum_fixed(const double *v, int n) {
  double s = 0.0;
  for (int i = 0; i < n; i++) s += v[i];
  return s;
}

/* Structure-of-arrays copy of y (n, dims) for the O(n^2) loops: soa[c * n + i]. */
static void to_soa(const double *y, int n, int dims, double *soa) {
  for (int i = 0; i < n; i++)
    for (int c = 0; c < dims; c++) soa[(size_t)c * n + i] = y[(size_t)i * dims + c];
}

/* One row of the exact sums for point i over all j (self included: it adds q = 1 and no
 * force, removed by the caller): a = sum_j w_j q_ij t_ij with w = ex*P_i (or 0 when pr is
 * NULL), b = sum_j q_ij^2 t_ij, returns sum_j q_ij; t_ij = y_i - y_j. The 2-D case is the
 * hot one: a SIMD reduction in a fixed order (deterministic, thread-count independent). */
static double exact_row2(int i, int n, const double *soa, const double *pr, double ex, double *a, double *b) {
  const double *xs = soa, *ys = soa + n;
  const double xi = xs[i], yi = ys[i];
  double z = 0, a0 = 0, a1 = 0, b0 = 0, b1 = 0;
  if (pr) {
#pragma omp simd reduction(+ : z, a0, a1, b0, b1)
    for (int j = 0; j < n; j++) {
      double tx = xi - xs[j], ty = yi - ys[j], q = 1.0 / (1.0 + tx * tx + ty * ty), w = ex * pr[j] * q, qq = q * q;
      z += q;
      a0 += w * tx;
      a1 += w * ty;
      b0 += qq * tx;
      b1 += qq * ty;
    }
  } else {
#pragma omp simd reduction(+ : z, b0, b1)
    for (int j = 0; j < n; j++) {
      double tx = xi - xs[j], ty = yi - ys[j], q = 1.0 / (1.0 + tx * tx + ty * ty), qq = q * q;
      z += q;
      b0 += qq * tx;
      b1 += qq * ty;
    }
  }
  a[0] = a0; a[1] = a1;
  b[0] = b0; b[1] = b1;
  return z;
}
static double exact_row_any(int dims, int i, int n, const double *soa, const double *pr, double ex, double *a,
                            double *b) {
  double z = 0;
  for (int c = 0; c < dims; c++) a[c] = b[c] = 0;
  for (int j = 0; j < n; j++) {
    double t[3], dd = 0;
    for (int c = 0; c < dims; c++) {
      t[c] = soa[(size_t)c * n + i] - soa[(size_t)c * n + j];
      dd += t[c] * t[c];
    }
    double q = 1.0 / (1.0 + dd), w = pr ? ex * pr[j] * q : 0.0;
    z += q;
    for (int c = 0; c < dims; c++) {
      a[c] += w * t[c];
      b[c] += q * q * t[c];
    }
  }
  return z;
}

/* Exact sums over all pairs: returns Z = sum_{i != j} q_ij; when P (n, n) is given,
 * grad_i = sum_j (ex P_ij - q_ij/Z) q_ij (y_i - y_j). soa (dims, n) and rowbuf (n) are scratch. */
static double exact_pass(const double *P, const double *y, int n, int dims, double ex, double *grad, double *soa,
                         double *rowbuf) {
  to_soa(y, n, dims, soa);
  double *bf = grad ? grad : NULL;
#pragma omp parallel for schedule(dynamic, 16) if (n >= PAR_MIN_POINTS / 4)
  for (int i = 0; i < n; i++) {
    double a[3], b[3];
    const double *pr = P ? P + (size_t)i * n : NULL;
    double zi = dims == 2 ? exact_row2(i, n, soa, pr, ex, a, b) : exact_row_any(dims, i, n, soa, pr, ex, a, b);
    rowbuf[i] = zi - 1.0; /* self */
    if (bf)
      for (int c = 0; c < dims; c++) {
        bf[(size_t)i * dims + c] = a[c];
        rowbuf[n + (size_t)i * dims + c] = b[c];
      }
  }
  double z = sum_fixed(rowbuf, n);
  if (bf)
    for (size_t e = 0; e < (size_t)n * dims; e++) bf[e] -= rowbuf[n + e] / z;
  return z;
}

/* klpart[i] = sum_j P_ij log(P_ij (1 + d_ij^2)) for dense P; KL = sum(klpart) + log Z. */
static void exact_klpart(const double *P, const double *y, int n, int dims, double *klpart) {
#pragma omp parallel for schedule(dynamic, 16)
  for (int i = 0; i < n; i++) {
    double kl = 0;
    for (int j = 0; j < n; j++) {
      double pij = P[(size_t)i * n + j];
      if (j == i || !(pij > 0)) continue;
      double dd = 0;
      for (int c = 0; c < dims; c++) {
        double t = y[(size_t)i * dims + c] - y[(size_t)j * dims + c];
        dd += t * t;
      }
      kl += pij * log(pij * (1.0 + dd));
    }
    klpart[i] = kl;
  }
}

/* ======================================================================================
 * Driver
 * ====================================================================================== */

static unmix_status check_params(int n, int d, const struct unmix_tsne_params *p) {
  if (n < 2 || d < 1) return unmix_error_set(UNMIX_ERR_ARG, "t-SNE: %d points of dimension %d: need n >= 2, d >= 1", n, d);
  if (!(p->perplexity > 0) || !isfinite(p->perplexity))
    return unmix_error_set(UNMIX_ERR_ARG, "t-SNE: perplexity %g must be positive", (double)p->perplexity);
  if ((double)(n - 1) < 3.0 * p->perplexity)
    return unmix_error_set(UNMIX_ERR_ARG, "t-SNE: perplexity %g too large for %d points (need n - 1 >= 3 * "
                           "perplexity)", (double)p->perplexity, n);
  if (!(p->theta >= 0) || !isfinite(p->theta))
    return unmix_error_set(UNMIX_ERR_ARG, "t-SNE: theta %g must be >= 0 (0 = exact)", (double)p->theta);
  if (p->theta > 0 && p->dims_out != 2)
    return unmix_error_set(UNMIX_ERR_ARG, "t-SNE: Barnes-Hut (theta > 0) embeds in 2 dimensions, not %d", p->dims_out);
  if (p->dims_out < 1 || p->dims_out > 3)
    return unmix_error_set(UNMIX_ERR_ARG, "t-SNE: dims_out %d must be 1..3 (exact mode) or 2", p->dims_out);
  if (p->theta == 0 && n > TSNE_EXACT_MAX_N)
    return unmix_error_set(UNMIX_ERR_ARG, "t-SNE: exact mode (theta = 0) keeps n^2 affinities; %d points exceed "
                           "its limit of %d: use theta > 0", n, TSNE_EXACT_MAX_N);
  if (p->iterations < 0 || p->exaggeration_iters < 0)
    return unmix_error_set(UNMIX_ERR_ARG, "t-SNE: iterations %d and exaggeration_iters %d must be >= 0",
                           p->iterations, p->exaggeration_iters);
  if (!(p->exaggeration > 0) || !isfinite(p->exaggeration))
    return unmix_error_set(UNMIX_ERR_ARG, "t-SNE: exaggeration %g must be positive", (double)p->exaggeration);
  if (!(p->learning_rate >= 0) || !isfinite(p->learning_rate))
    return unmix_error_set(UNMIX_ERR_ARG, "t-SNE: learning_rate %g must be >= 0 (0 = automatic)",
                           (double)p->learning_rate);
  if (!(p->momentum >= 0 && p->momentum < 1) || !(p->final_momentum >= 0 && p->final_momentum < 1))
    return unmix_error_set(UNMIX_ERR_ARG, "t-SNE: momentum %g / final_momentum %g must lie in [0, 1)",
                           (double)p->momentum, (double)p->final_momentum);
  if (p->pca_dims < 0) return unmix_error_set(UNMIX_ERR_ARG, "t-SNE: pca_dims %d must be >= 0", p->pca_dims);
  if (p->progress_every < 0)
    return unmix_error_set(UNMIX_ERR_ARG, "t-SNE: progress_every %d must be >= 0", p->progress_every);
  return UNMIX_OK;
}

/* Input after PCA/centring, scaled by max |value| (bhtsne). *dp receives its width. */
static unmix_status prepare_input(const float *x, int n, int d, int pca_dims, float **out, int *dp) {
  float *xp;
  if (pca_dims > 0 && d > pca_dims) {
    xp = malloc((size_t)n * pca_dims * sizeof(float));
    if (!xp) return unmix_error_set(UNMIX_ERR_NOMEM, "t-SNE: out of memory for the PCA output");
    unmix_status st = unmix_pca(x, n, d, pca_dims, xp, NULL, NULL);
    if (st != UNMIX_OK) {
      free(xp);
      return st;
    }
    *dp = pca_dims;
  } else {
    xp = malloc((size_t)n * d * sizeof(float));
    double *mean = calloc((size_t)d, sizeof(double));
    if (!xp || !mean) {
      free(xp);
      free(mean);
      return unmix_error_set(UNMIX_ERR_NOMEM, "t-SNE: out of memory for %d x %d inputs", n, d);
    }
    for (int i = 0; i < n; i++)
      for (int j = 0; j < d; j++) mean[j] += x[(size_t)i * d + j];
    for (int j = 0; j < d; j++) mean[j] /= n;
    for (int i = 0; i < n; i++)
      for (int j = 0; j < d; j++) xp[(size_t)i * d + j] = (float)((double)x[(size_t)i * d + j] - mean[j]);
    free(mean);
    *dp = d;
  }
  size_t tot = (size_t)n * *dp;
  float mx = 0.0f;
  for (size_t e = 0; e < tot; e++) mx = fabsf(xp[e]) > mx ? fabsf(xp[e]) : mx;
  if (mx > 0.0f)
    for (size_t e = 0; e < tot; e++) xp[e] /= mx;
  *out = xp;
  return UNMIX_OK;
}

/* Dense symmetric P for exact mode: conditional rows over all others, then (P + P^T)/sum. */
static unmix_status dense_affinities(const float *xp, int n, int d, double perplexity, double **out) {
  double *P = malloc((size_t)n * n * sizeof(double));
  if (!P) return unmix_error_set(UNMIX_ERR_NOMEM, "t-SNE: out of memory for %d x %d affinities", n, n);
#pragma omp parallel
  {
    double *dist = malloc((size_t)n * sizeof(double)), *pr = malloc((size_t)n * sizeof(double));
    UNMIX_REQUIRE(dist && pr, "t-SNE: out of host memory for %d distances", n);
#pragma omp for schedule(dynamic, 16)
    for (int i = 0; i < n; i++) {
      int m = 0;
      for (int j = 0; j < n; j++) {
        if (j == i) continue;
        double s = 0.0;
        for (int e = 0; e < d; e++) {
          double t = (double)xp[(size_t)i * d + e] - xp[(size_t)j * d + e];
          s += t * t;
        }
        dist[m++] = s;
      }
      unmix_tsne_calibrate_row(dist, n - 1, perplexity, pr, NULL);
      m = 0;
      for (int j = 0; j < n; j++) P[(size_t)i * n + j] = j == i ? 0.0 : pr[m++];
    }
    free(dist);
    free(pr);
  }
  double total = 0.0;
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++) {
      double s = P[(size_t)i * n + j] + P[(size_t)j * n + i];
      P[(size_t)i * n + j] = P[(size_t)j * n + i] = s;
      total += 2.0 * s;
    }
#pragma omp parallel for schedule(static)
  for (int64_t e = 0; e < (int64_t)n * n; e++) P[e] /= total;
  *out = P;
  return UNMIX_OK;
}

/* The affinities of a run: dense (exact mode) or sparse CSR (Barnes-Hut). */
struct affinities {
  double *dense; /* (n, n) or NULL */
  struct csr sparse;
  int dims_used, neighbours;
  int64_t nnz;
};
static void affinities_free(struct affinities *a) {
  free(a->dense);
  csr_free(&a->sparse);
  memset(a, 0, sizeof *a);
}

/* Validates x, then PCA/centring/scaling and P as the parameters say; times into S. */
static unmix_status build_affinities(const float *x, int n, int d, const struct unmix_tsne_params *p,
                                     struct affinities *A, struct unmix_tsne_stats *S) {
  memset(A, 0, sizeof *A);
  if (!x) return unmix_error_set(UNMIX_ERR_ARG, "t-SNE: missing input");
  UNMIX_TRY(check_params(n, d, p));
  for (int i = 0; i < n; i++)
    for (int j = 0; j < d; j++)
      if (!isfinite(x[(size_t)i * d + j]))
        return unmix_error_set(UNMIX_ERR_NUMERIC, "t-SNE: sample %d has a non-finite value (%g) in column %d", i,
                               (double)x[(size_t)i * d + j], j);
  double t0 = unmix_now();
  float *xp = NULL;
  int dp = 0;
  UNMIX_TRY(prepare_input(x, n, d, p->pca_dims, &xp, &dp));
  A->dims_used = dp;
  S->seconds_pca = unmix_now() - t0;
  if (p->verbose) unmix_log_info("t-SNE: %d points, %d -> %d dims (%.2f s)", n, d, dp, S->seconds_pca);

  t0 = unmix_now();
  unmix_status st = UNMIX_OK;
  if (p->theta == 0.0f) {
    st = dense_affinities(xp, n, dp, p->perplexity, &A->dense);
    A->neighbours = n - 1;
    A->nnz = (int64_t)n * (n - 1);
  } else {
    int K = (int)(3.0 * p->perplexity);
    if (K > n - 1) K = n - 1;
    A->neighbours = K;
    int32_t *nbr = malloc((size_t)n * K * sizeof(int32_t));
    double *sqd = malloc((size_t)n * K * sizeof(double)), *pc = malloc((size_t)n * K * sizeof(double));
    if (!nbr || !sqd || !pc) st = unmix_error_set(UNMIX_ERR_NOMEM, "t-SNE: out of memory for %d x %d neighbours", n, K);
    if (st == UNMIX_OK) st = knn_exact(xp, n, dp, K, nbr, sqd);
    double t1 = unmix_now(), t2 = t1;
    if (st == UNMIX_OK) {
#pragma omp parallel for schedule(dynamic, 64)
      for (int i = 0; i < n; i++)
        unmix_tsne_calibrate_row(sqd + (size_t)i * K, K, p->perplexity, pc + (size_t)i * K, NULL);
      t2 = unmix_now();
      st = symmetrise_sparse(n, K, nbr, pc, &A->sparse);
    }
    if (p->verbose)
      unmix_log_info("t-SNE: neighbours %.2f s, perplexity search %.2f s, symmetrisation %.2f s", t1 - t0, t2 - t1,
                     unmix_now() - t2);
    if (st == UNMIX_OK) A->nnz = A->sparse.rowptr[n];
    free(nbr);
    free(sqd);
    free(pc);
  }
  free(xp);
  if (st != UNMIX_OK) {
    affinities_free(A);
    return st;
  }
  S->seconds_affinity = unmix_now() - t0;
  if (p->verbose)
    unmix_log_info("t-SNE: affinities (%s, %d neighbours, %lld non-zeros) in %.2f s", A->dense ? "dense" : "sparse",
                   A->neighbours, (long long)A->nnz, S->seconds_affinity);
  return UNMIX_OK;
}

/* Scratch of the optimiser and the KL evaluation. */
struct work {
  double *grad, *negf, *rowbuf, *klpart, *soa;
  struct qtree tree;
};
static void work_free(struct work *w) {
  free(w->grad); free(w->negf); free(w->rowbuf); free(w->klpart); free(w->soa);
  qt_free(&w->tree);
  memset(w, 0, sizeof *w);
}
static unmix_status work_init(struct work *w, int n, int dims, bool tree) {
  memset(w, 0, sizeof *w);
  size_t nd = (size_t)n * dims;
  w->grad = malloc(nd * sizeof(double));
  w->negf = malloc(nd * sizeof(double));
  w->rowbuf = malloc(((size_t)n + nd) * sizeof(double));
  w->klpart = malloc((size_t)n * sizeof(double));
  w->soa = malloc(nd * sizeof(double));
  if (!w->grad || !w->negf || !w->rowbuf || !w->klpart || !w->soa || (tree && !qt_init(&w->tree, n))) {
    work_free(w);
    return unmix_error_set(UNMIX_ERR_NOMEM, "t-SNE: out of memory for the %d-point embedding", n);
  }
  return UNMIX_OK;
}

/* Final KL(P||Q) at y: exact Z unless a sparse P has n > TSNE_EXACT_Z_MAX_N. */
static double final_kl(const struct affinities *A, const double *y, int n, int dims, double theta, struct work *w,
                       int *exact_z_out) {
  double z;
  if (A->dense) {
    z = exact_pass(NULL, y, n, dims, 1.0, NULL, w->soa, w->rowbuf);
    exact_klpart(A->dense, y, n, dims, w->klpart);
    *exact_z_out = 1;
  } else {
    if (n <= TSNE_EXACT_Z_MAX_N) {
      z = exact_pass(NULL, y, n, 2, 1.0, NULL, w->soa, w->rowbuf);
      *exact_z_out = 1;
    } else {
      qt_build(&w->tree, y, n);
      z = qt_repulsion_all(&w->tree, y, n, theta, w->negf, w->rowbuf);
      *exact_z_out = 0;
    }
    attract_sparse(&A->sparse, y, 1.0, w->grad, w->klpart);
  }
  return sum_fixed(w->klpart, n) + log(z);
}

unmix_status unmix_tsne_run(const float *x, int n, int d, const struct unmix_tsne_params *p, float *y_out,
                            struct unmix_tsne_stats *stats) {
  if (!x || !p || !y_out) return unmix_error_set(UNMIX_ERR_ARG, "t-SNE: missing input, parameters or output");
  struct unmix_tsne_stats st_local;
  struct unmix_tsne_stats *S = stats ? stats : &st_local;
  memset(S, 0, sizeof *S);
  double t_start = unmix_now();
  struct affinities A;
  UNMIX_TRY(build_affinities(x, n, d, p, &A, S));
  S->dims_used = A.dims_used;
  S->neighbours = A.neighbours;
  S->p_nnz = A.nnz;
  const bool exact = A.dense != NULL;
  const int dims = p->dims_out;
  const double lr = p->learning_rate > 0 ? p->learning_rate : fmax(200.0, (double)n / p->exaggeration);
  S->learning_rate = lr;

  double t0 = unmix_now();
  size_t nd = (size_t)n * dims;
  struct work w;
  unmix_status st = work_init(&w, n, dims, !exact);
  double *y = malloc(nd * sizeof(double)), *upd = calloc(nd, sizeof(double)), *gains = malloc(nd * sizeof(double));
  if (st == UNMIX_OK && (!y || !upd || !gains))
    st = unmix_error_set(UNMIX_ERR_NOMEM, "t-SNE: out of memory for the %d-point embedding", n);
  if (st != UNMIX_OK) goto done;
  {
    struct unmix_rng r = unmix_rng_make(p->seed, UNMIX_RNG_TSNE, 0, 0, 0);
    for (size_t e = 0; e < nd; e++) {
      y[e] = 1e-4 * unmix_rng_normal(&r);
      gains[e] = 1.0;
    }
  }
  const int every = p->progress_every > 0 ? p->progress_every : 50;
  const bool report = p->verbose || p->progress;
  for (int it = 0; it < p->iterations; it++) {
    const bool exag = it < p->exaggeration_iters;
    const double ex = exag ? p->exaggeration : 1.0, mom = exag ? p->momentum : p->final_momentum;
    const bool want_kl = report && ((it + 1) % every == 0 || it + 1 == p->iterations);
    double z;
    if (exact) {
      z = exact_pass(A.dense, y, n, dims, ex, w.grad, w.soa, w.rowbuf);
      if (want_kl) exact_klpart(A.dense, y, n, dims, w.klpart);
    } else {
      qt_build(&w.tree, y, n);
      attract_sparse(&A.sparse, y, ex, w.grad, want_kl ? w.klpart : NULL);
      z = qt_repulsion_all(&w.tree, y, n, p->theta, w.negf, w.rowbuf);
      for (size_t e = 0; e < nd; e++) w.grad[e] -= w.negf[e] / z;
    }
    if (want_kl) {
      /* KL at the y the gradient was taken at, for the un-exaggerated P */
      double kl = sum_fixed(w.klpart, n) + log(z);
      if (p->verbose)
        unmix_log_info("t-SNE: iteration %d/%d, KL %.5f%s (%.1f s)", it + 1, p->iterations, kl,
                       exact ? "" : " (Barnes-Hut Z)", unmix_now() - t0);
      if (p->progress && p->progress(p->progress_user, it + 1, p->iterations, kl) != 0) {
        st = unmix_error_set(UNMIX_ERR_INTERRUPTED, "t-SNE: stopped by the progress callback at iteration %d",
                             it + 1);
        goto done;
      }
    }
    update_step(n, dims, y, w.grad, upd, gains, mom, lr);
  }
  S->seconds_optimise = unmix_now() - t0;

  t0 = unmix_now();
  S->kl = final_kl(&A, y, n, dims, p->theta, &w, &S->kl_exact_z);
  S->seconds_kl = unmix_now() - t0;
  for (size_t e = 0; e < nd; e++) y_out[e] = (float)y[e];
  S->seconds_total = unmix_now() - t_start;
  if (p->verbose)
    unmix_log_info("t-SNE: done, KL %.5f; PCA %.2f s, affinities %.2f s, optimisation %.2f s, KL %.2f s, total %.2f s",
                   S->kl, S->seconds_pca, S->seconds_affinity, S->seconds_optimise, S->seconds_kl,
                   S->seconds_total);
done:
  free(y);
  free(upd);
  free(gains);
  work_free(&w);
  affinities_free(&A);
  return st;
}

unmix_status unmix_tsne_kl_divergence(const float *x, int n, int d, const struct unmix_tsne_params *p,
                                      const float *y, double *kl) {
  if (!x || !p || !y || !kl) return unmix_error_set(UNMIX_ERR_ARG, "t-SNE KL: missing input, parameters or output");
  struct unmix_tsne_stats S;
  memset(&S, 0, sizeof S);
  struct affinities A;
  UNMIX_TRY(build_affinities(x, n, d, p, &A, &S));
  const int dims = p->dims_out;
  size_t nd = (size_t)n * dims;
  struct work w;
  double *yd = malloc(nd * sizeof(double));
  unmix_status st = work_init(&w, n, dims, !A.dense);
  if (st == UNMIX_OK && !yd) st = unmix_error_set(UNMIX_ERR_NOMEM, "t-SNE KL: out of memory for %d points", n);
  if (st == UNMIX_OK) {
    for (size_t e = 0; e < nd; e++) yd[e] = y[e];
    int exact_z;
    *kl = final_kl(&A, yd, n, dims, p->theta, &w, &exact_z);
  }
  free(yd);
  work_free(&w);
  affinities_free(&A);
  return st;
}

/* ======================================================================================
 * Trustworthiness
 * ====================================================================================== */

unmix_status unmix_tsne_trustworthiness(const float *x, int n, int dx, const float *y, int dy, int k, double *out) {
  if (!x || !y || !out) return unmix_error_set(UNMIX_ERR_ARG, "trustworthiness: missing input or output");
  if (n < 3 || dx < 1 || dy < 1 || k < 1 || 2 * k >= n)
    return unmix_error_set(UNMIX_ERR_ARG, "trustworthiness: k = %d for %d points: need 1 <= k < n/2", k, n);
  double *pen = calloc((size_t)n, sizeof(double));
  if (!pen) return unmix_error_set(UNMIX_ERR_NOMEM, "trustworthiness: out of memory");
  bool oom = false;
#pragma omp parallel
  {
    struct nb_pair *px = malloc((size_t)n * sizeof *px), *py = malloc((size_t)n * sizeof *py);
    int32_t *rank = malloc((size_t)n * sizeof(int32_t));
    if (!px || !py || !rank) {
#pragma omp atomic write
      oom = true;
    }
#pragma omp for schedule(dynamic, 8)
    for (int i = 0; i < n; i++) {
      if (!px || !py || !rank) continue;
      for (int j = 0; j < n; j++) {
        double sx = 0, sy = 0;
        for (int e = 0; e < dx; e++) {
          double t = (double)x[(size_t)i * dx + e] - x[(size_t)j * dx + e];
          sx += t * t;
        }
        for (int e = 0; e < dy; e++) {
          double t = (double)y[(size_t)i * dy + e] - y[(size_t)j * dy + e];
          sy += t * t;
        }
        /* self first: distance -1 */
        px[j].d = j == i ? -1.0 : sx;
        px[j].j = j;
        py[j].d = j == i ? -1.0 : sy;
        py[j].j = j;
      }
      qsort(px, (size_t)n, sizeof *px, nb_cmp);
      qsort(py, (size_t)n, sizeof *py, nb_cmp);
      for (int r = 0; r < n; r++) rank[px[r].j] = r; /* self has rank 0 */
      double s = 0.0;
      for (int r = 1; r <= k; r++) {
        int rr = rank[py[r].j];
        if (rr > k) s += rr - k;
      }
      pen[i] = s;
    }
    free(px);
    free(py);
    free(rank);
  }
  if (oom) {
    free(pen);
    return unmix_error_set(UNMIX_ERR_NOMEM, "trustworthiness: out of memory for %d points", n);
  }
  double tot = sum_fixed(pen, n);
  free(pen);
  *out = 1.0 - 2.0 / ((double)n * k * (2.0 * n - 3.0 * k - 1.0)) * tot;
  return UNMIX_OK;
}
