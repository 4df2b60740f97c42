/* CPU top-k per row with a bounded min-heap (ties broken by the lower index). */
#include "core/backend/cpu/internal.h"

/* Min-heap of (value, index) ordered so the root is the "worst" kept element:
 * smaller value, or equal value with larger index. */
static int worse(float va, int32_t ia, float vb, int32_t ib) { return va < vb || (va == vb && ia > ib); }

static void sift_down(float *v, int32_t *ix, int k, int i) {
  for (;;) {
    int l = 2 * i + 1, r = l + 1, m = i;
    if (l < k && worse(v[l], ix[l], v[m], ix[m])) m = l;
    if (r < k && worse(v[r], ix[r], v[m], ix[m])) m = r;
    if (m == i) return;
    float tv = v[i]; v[i] = v[m]; v[m] = tv;
    int32_t ti = ix[i]; ix[i] = ix[m]; ix[m] = ti;
    i = m;
  }
}

void unmix_cpu_topk(int n, int d, int k, const float *x, float *vals, int32_t *idx) {
  UNMIX_REQUIRE(k >= 1 && k <= d, "topk: k=%d outside 1..%d", k, d);
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++) {
    const float *xr = x + (int64_t)i * d;
    float *v = vals + (int64_t)i * k;
    int32_t *ix = idx + (int64_t)i * k;
    for (int j = 0; j < k; j++) { v[j] = xr[j]; ix[j] = j; }
    for (int j = k / 2 - 1; j >= 0; j--) sift_down(v, ix, k, j);
    for (int j = k; j < d; j++) {
      if (worse(v[0], ix[0], xr[j], j)) {
        v[0] = xr[j];
        ix[0] = j;
        sift_down(v, ix, k, 0);
      }
    }
    /* heap-sort so the best comes first */
    for (int end = k - 1; end > 0; end--) {
      float tv = v[0]; v[0] = v[end]; v[end] = tv;
      int32_t ti = ix[0]; ix[0] = ix[end]; ix[end] = ti;
      sift_down(v, ix, end, 0);
    }
  }
}
