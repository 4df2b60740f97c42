/* oneDNN convolutions and GEMMs for the CPU backend (see onednn.h). Activations stay NHWC
 * in our buffers (Winograd's blocked copies are made and read back at each call); oneDNN
 * picks the weight layout its fastest kernel wants, reordered from our OHWI once per pin of
 * the parameter store (the fp32 master weights change every step) or, for a filter in no
 * pinned store, at each call. One primitive per geometry and pass, built
 * on first use and kept. Without oneDNN every entry says no. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/backend/cpu/onednn.h"

/* fp32 -> bf16 with round-to-nearest-even; NaN stays NaN (quietened). */
static inline uint16_t to_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

void unmix_dnn_round_bf16(size_t n, const float *x, float *y) {
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; i++) {
    uint32_t u = (uint32_t)to_bf16(x[i]) << 16;
    memcpy(&y[i], &u, sizeof u);
  }
}

#ifndef UNMIX_WITH_ONEDNN

bool unmix_dnn_compiled(void) { return false; }
bool unmix_dnn_bf16_units(void) { return false; }
const char *unmix_dnn_describe(void) {
  return "oneDNN not compiled in (install libdnnl-dev and rebuild): no bf16 kernels, fp32 only";
}
bool unmix_dnn_conv(enum unmix_dnn_pass pass, enum unmix_dnn_type t, const struct unmix_conv_geom *g, const float *a,
                    const float *b, float *out) {
  return false;
}
bool unmix_dnn_conv_ok(enum unmix_dnn_pass pass, enum unmix_dnn_type t, const struct unmix_conv_geom *g,
                       const char **impl) {
  if (impl) *impl = "none";
  return false;
}
bool unmix_dnn_gemm_bf16(bool ta, bool tb, int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                         int ldb, float beta, float *c, int ldc) {
  return false;
}
const char *unmix_dnn_sample_impls(enum unmix_dnn_type t) { return ""; }
void unmix_dnn_weights_pin(const float *base, int64_t n) {}
void unmix_dnn_weights_unpin(const float *base) {}
void unmix_dnn_weights_forget(const float *base) {}
void unmix_dnn_weight_pinning(bool on) {}
void unmix_dnn_weight_pin_stats(long *hits, long *reorders) { *hits = *reorders = 0; }

#else

#include <oneapi/dnnl/dnnl.h>
#include <stdlib.h>

#define DNN_OK(call) ((call) == dnnl_success)
#define DNN_MUST(call)                                                                     \
  do {                                                                                     \
    dnnl_status_t st_ = (call);                                                            \
    UNMIX_REQUIRE(st_ == dnnl_success, "oneDNN call failed (status %d): %s", (int)st_, #call); \
  } while (0)

static dnnl_engine_t g_engine;
static dnnl_stream_t g_stream;
static int g_ready; /* 0 untried, 1 ready, -1 failed */

static bool ready(void) {
  if (g_ready == 0) {
    g_ready = DNN_OK(dnnl_engine_create(&g_engine, dnnl_cpu, 0)) &&
                      DNN_OK(dnnl_stream_create(&g_stream, g_engine, dnnl_stream_default_flags))
                  ? 1
                  : -1;
  }
  return g_ready == 1;
}

bool unmix_dnn_compiled(void) { return true; }

bool unmix_dnn_bf16_units(void) {
  const unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
  return ready() && (isa & (unsigned)dnnl_cpu_isa_avx512_core_bf16) == (unsigned)dnnl_cpu_isa_avx512_core_bf16;
}

static const char *isa_name(dnnl_cpu_isa_t isa) {
  switch (isa) {
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx (AMX-BF16 tiles + AVX512-BF16)";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16 (AVX512-BF16, no AMX)";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni (no bf16 units)";
    case dnnl_cpu_isa_avx512_core: return "avx512_core (no bf16 units)";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni (no bf16 units)";
    case dnnl_cpu_isa_avx2: return "avx2 (no bf16 units)";
    default: return "pre-AVX2 (no bf16 units)";
  }
}

const char *unmix_dnn_describe(void) {
  static char buf[256];
  const dnnl_version_t *v = dnnl_version();
  snprintf(buf, sizeof buf, "oneDNN %d.%d.%d (%s), ISA %s", v->major, v->minor, v->patch, v->hash ? v->hash : "?",
           isa_name(dnnl_get_effective_cpu_isa()));
  return buf;
}

/* ---- buffers ----------------------------------------------------------------------------- */
/* Growing buffers kept across calls (ops run on one caller thread at a time). */
enum { BUF_A, BUF_B, BUF_C, NBUF };
static void *g_buf[NBUF];
static size_t g_cap[NBUF];
static void *buf(int slot, size_t bytes) {
  if (bytes > g_cap[slot]) {
    free(g_buf[slot]);
    g_buf[slot] = NULL;
    UNMIX_REQUIRE(posix_memalign(&g_buf[slot], 64, bytes) == 0, "out of host memory for %zu bytes", bytes);
    g_cap[slot] = bytes;
  }
  return g_buf[slot];
}

/* n values of x as bf16 into dst. */
static void to_bf16_n(size_t n, const float *x, uint16_t *dst) {
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; i++) dst[i] = to_bf16(x[i]);
}
/* rows x cols of x (leading dimension ld) as a compact bf16 matrix. */
static void to_bf16_mat(int64_t rows, int64_t cols, int64_t ld, const float *x, uint16_t *dst) {
  if (ld == cols) {
    to_bf16_n((size_t)(rows * cols), x, dst);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = 0; j < cols; j++) dst[i * cols + j] = to_bf16(x[i * ld + j]);
}

static dnnl_memory_t mem(const dnnl_memory_desc_t *md, const void *p) {
  dnnl_memory_t m;
  DNN_MUST(dnnl_memory_create(&m, md, g_engine, (void *)p));
  return m;
}

static void run(dnnl_primitive_t prim, int nargs, const dnnl_exec_arg_t *args) {
  DNN_MUST(dnnl_primitive_execute(prim, g_stream, nargs, args));
  DNN_MUST(dnnl_stream_wait(g_stream));
}

/* A reorder src -> dst (with dst += when accumulate); NULL when it cannot be built. */
static dnnl_primitive_t make_reorder(const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *dst, bool accumulate) {
  dnnl_primitive_attr_t attr = NULL;
  dnnl_post_ops_t po = NULL;
  dnnl_primitive_desc_t pd = NULL;
  dnnl_primitive_t prim = NULL;
  if (accumulate) {
    DNN_MUST(dnnl_primitive_attr_create(&attr));
    DNN_MUST(dnnl_post_ops_create(&po));
    DNN_MUST(dnnl_post_ops_append_sum(po, 1.0f));
    DNN_MUST(dnnl_primitive_attr_set_post_ops(attr, po));
  }
  if (DNN_OK(dnnl_reorder_primitive_desc_create(&pd, src, g_engine, dst, g_engine, attr))) {
    if (!DNN_OK(dnnl_primitive_create(&prim, pd))) prim = NULL;
    dnnl_primitive_desc_destroy(pd);
  }
  if (po) dnnl_post_ops_destroy(po);
  if (attr) dnnl_primitive_attr_destroy(attr);
  return prim;
}

static void reorder(dnnl_primitive_t prim, const dnnl_memory_desc_t *smd, const void *src,
                    const dnnl_memory_desc_t *dmd, void *dst) {
  dnnl_memory_t ms = mem(smd, src), md = mem(dmd, dst);
  const dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, ms}, {DNNL_ARG_TO, md}};
  run(prim, 2, args);
  dnnl_memory_destroy(ms);
  dnnl_memory_destroy(md);
}

/* ---- weight pinning ------------------------------------------------------------------------ */
/* A pinned store is read-only while pinned (the graph's contract: from a forward pass to the
 * end of its backward pass), so a filter's reordered copy made under a pin stays exact until
 * the store is pinned again (the optimiser may have changed it in between), unpinned or freed.
 * Each pin gets a fresh generation number; a copy records the generation it was made under
 * and is valid only while its filter lies in a pinned store of that same generation. Pins
 * are counted (two contexts may hold one model). A missing pin costs a reorder per call; a
 * stale one would be wrong, hence the generations. */
#define MAX_PINS 16
struct dnn_pin {
  const float *base;
  int64_t n;
  int refs;
  uint64_t gen;
};
static struct dnn_pin g_pins[MAX_PINS];
static int g_pin_next; /* round-robin victim when the table is full */
static uint64_t g_pin_gen;
static bool g_pin_enabled = true;
static long g_pin_hits, g_pin_reorders;

static struct dnn_pin *pin_find(const float *base) {
  for (int i = 0; i < MAX_PINS; i++)
    if (g_pins[i].base == base) return &g_pins[i];
  return NULL;
}

void unmix_dnn_weights_pin(const float *base, int64_t n) {
  if (!g_pin_enabled || !base || n <= 0) return;
  struct dnn_pin *p = pin_find(base);
  if (p && p->n != n) p->refs = 0; /* a different store at the same address: start over */
  if (!p) {
    for (int i = 0; i < MAX_PINS && !p; i++)
      if (!g_pins[i].base) p = &g_pins[i];
    if (!p) p = &g_pins[g_pin_next++ % MAX_PINS]; /* evicted: its copies go stale */
    p->refs = 0;
  }
  p->base = base;
  p->n = n;
  p->refs++;
  p->gen = ++g_pin_gen;
}

void unmix_dnn_weights_unpin(const float *base) {
  struct dnn_pin *p = base ? pin_find(base) : NULL;
  if (p && --p->refs <= 0) memset(p, 0, sizeof *p);
}

void unmix_dnn_weights_forget(const float *base) {
  struct dnn_pin *p = base ? pin_find(base) : NULL;
  if (p) memset(p, 0, sizeof *p);
}

void unmix_dnn_weight_pinning(bool on) {
  g_pin_enabled = on;
  if (!on) memset(g_pins, 0, sizeof g_pins);
}

void unmix_dnn_weight_pin_stats(long *hits, long *reorders) {
  *hits = g_pin_hits;
  *reorders = g_pin_reorders;
}

/* The generation of the pin whose store holds the nw floats at wt, or 0 (not pinned). */
static uint64_t pin_gen_of(const float *wt, int64_t nw) {
  for (int i = 0; i < MAX_PINS; i++) {
    const struct dnn_pin *p = &g_pins[i];
    if (p->base && wt >= p->base && wt + nw <= p->base + p->n) return p->gen;
  }
  return 0;
}

/* One filter's reordered copy for one pass of one plan. */
struct w_copy {
  const float *w;
  uint64_t gen;
  void *buf;
};

/* ---- convolution plans ------------------------------------------------------------------- */
struct gemm_plan;
static struct gemm_plan *gemm_plan_for(bool ta, bool tb, int m, int n, int k, int ldc, float alpha, float beta);
static bool gemm_run(const struct gemm_plan *p, const uint16_t *a16, const uint16_t *b16, float *c);

/* col[i, (r,s,c)] = x16[n, p*st-pad+r, q*st-pad+s, c] over all n*p*q output rows (0 outside
 * the image): the bf16 column matrix of the backward-weight GEMM. */
static void im2col_bf16(const struct unmix_conv_geom *g, const uint16_t *x, uint16_t *col) {
  const int64_t rsc = (int64_t)g->r * g->s * g->c, sc = (int64_t)g->s * g->c, pq = (int64_t)g->p * g->q;
  const int64_t total = (int64_t)g->n * pq;
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < total; row++) {
    const int n = (int)(row / pq), p = (int)(row % pq) / g->q, q = (int)(row % pq) % g->q;
    const uint16_t *xn = x + (int64_t)n * g->h * g->w * g->c;
    const int iw0 = q * g->stride - g->pad;
    const int s_lo = iw0 < 0 ? -iw0 : 0, s_hi = g->w - iw0 < g->s ? g->w - iw0 : g->s;
    uint16_t *dst = col + row * rsc;
    for (int r = 0; r < g->r; r++, dst += sc) {
      const int ih = p * g->stride - g->pad + r;
      if (ih < 0 || ih >= g->h || s_hi <= s_lo) {
        memset(dst, 0, sizeof(uint16_t) * sc);
        continue;
      }
      if (s_lo > 0) memset(dst, 0, sizeof(uint16_t) * s_lo * g->c);
      memcpy(dst + (int64_t)s_lo * g->c, xn + ((int64_t)ih * g->w + iw0 + s_lo) * g->c,
             sizeof(uint16_t) * (s_hi - s_lo) * g->c);
      if (s_hi < g->s) memset(dst + (int64_t)s_hi * g->c, 0, sizeof(uint16_t) * (g->s - s_hi) * g->c);
    }
  }
}

/* bf16 backward-weight as one GEMM on the AMX matmul: dW (k, rsc) += dy^T (k, npq) . col
 * (npq, rsc). oneDNN 2.6's direct AMX backward-weight kernel on NHWC runs at a fraction of
 * its forward speed on small maps (`unmix bench ops --precision bf16 --batch 32` on a loaded
 * 2-core Sapphire Rapids: 8x8 and 4x4 at 7-9% of the bf16 GEMM figure, forward 20-97%; the
 * GEMM form 5-20x faster than direct at 16x16 and below, slower at 32x32, in alternating
 * runs), where the column matrix is small: this path is used for output maps of <= 256
 * positions. UNMIX_DNN_BWDW=gemm|direct forces one form (for measuring). */
static int g_bwdw_gemm = -1; /* UNMIX_DNN_BWDW=gemm|direct (measurement switch); -1: by size */
static bool bwdw_by_gemm(const struct unmix_conv_geom *g) {
  if (g_bwdw_gemm < 0) {
    const char *e = getenv("UNMIX_DNN_BWDW");
    g_bwdw_gemm = !e ? 2 : !strcmp(e, "gemm") ? 1 : !strcmp(e, "direct") ? 0 : 2;
  }
  if (g_bwdw_gemm != 2) return g_bwdw_gemm == 1;
  return (int64_t)g->p * g->q <= 256; /* 16x16 and smaller output maps */
}
static bool bwdw_gemm(const struct unmix_conv_geom *g, const float *dy, const float *x, float *dwt) {
  const int64_t rsc = (int64_t)g->r * g->s * g->c, npq = (int64_t)g->n * g->p * g->q;
  const size_t nx = (size_t)g->n * g->h * g->w * g->c;
  if (npq > INT32_MAX || rsc > INT32_MAX) return false;
  struct gemm_plan *gp = gemm_plan_for(true, false, g->k, (int)rsc, (int)npq, (int)rsc, 1.0f, 1.0f);
  uint16_t *dy16 = buf(BUF_A, sizeof(uint16_t) * (size_t)npq * g->k);
  uint16_t *x16 = buf(BUF_B, sizeof(uint16_t) * nx);
  to_bf16_n((size_t)npq * g->k, dy, dy16);
  to_bf16_n(nx, x, x16);
  const bool pointwise = g->r == 1 && g->s == 1 && g->stride == 1 && g->pad == 0;
  const uint16_t *col = x16;
  if (!pointwise) {
    uint16_t *c16 = buf(BUF_C, sizeof(uint16_t) * (size_t)(npq * rsc));
    im2col_bf16(g, x16, c16);
    col = c16;
  }
  return gemm_run(gp, dy16, col, dwt);
}
struct conv_plan {
  struct unmix_conv_geom g;
  enum unmix_dnn_type t;
  dnnl_primitive_desc_t fwd_hint;    /* forward pd, the hint for the backward passes */
  bool tried[3], ok[3];
  char impl[3][96];
  dnnl_primitive_t prim[3];
  dnnl_memory_desc_t act_md, out_md;  /* per pass: the activation operand and the output (NHWC) */
  dnnl_memory_desc_t md_a[3], md_b[3], md_out[3]; /* what each pass's primitive takes */
  dnnl_memory_desc_t user_w;          /* our OHWI fp32 weights */
  dnnl_primitive_t w_reorder[3];      /* OHWI fp32 -> the pass's weight layout (FWD, BWD_DATA) */
  dnnl_primitive_t dw_reorder;        /* the pass's diff-weight layout -> OHWI fp32, += */
  /* backward-weights takes x and dy in the layouts it likes best (blocked, for AMX): our
   * fp32 NHWC is reordered (and rounded) into them. */
  dnnl_memory_desc_t user_x, user_dy;
  dnnl_primitive_t x_reorder, dy_reorder;
  /* forward and backward-data in a blocked activation layout (Winograd): the NHWC operand is
   * reordered in, the output out */
  dnnl_memory_desc_t user_a[2], user_out[2];
  dnnl_primitive_t a_reorder[2], out_reorder[2];
  void *w_buf[3];                     /* the reordered weights (FWD, BWD_DATA), or diff weights */
  struct w_copy *copies[2];           /* pinned filters' reordered copies (FWD, BWD_DATA) */
  int ncopies[2];
};

#define MAX_PLANS 128
static struct conv_plan *g_plans[MAX_PLANS];
static int g_nplans;

static bool same_geom(const struct unmix_conv_geom *a, const struct unmix_conv_geom *b) {
  return a->n == b->n && a->h == b->h && a->w == b->w && a->c == b->c && a->k == b->k && a->r == b->r &&
         a->s == b->s && a->stride == b->stride && a->pad == b->pad;
}

static void md_tag(dnnl_memory_desc_t *md, int64_t d0, int64_t d1, int64_t d2, int64_t d3, dnnl_data_type_t dt,
                   dnnl_format_tag_t tag) {
  const dnnl_dims_t dims = {d0, d1, d2, d3};
  DNN_MUST(dnnl_memory_desc_init_by_tag(md, 4, dims, dt, tag));
}

static dnnl_alg_kind_t alg_of(enum unmix_dnn_type t) {
  return t == UNMIX_DNN_WINO ? dnnl_convolution_winograd : dnnl_convolution_direct;
}
/* The activations' layout in a primitive's description: ours (NHWC), or the kernel's choice. */
static dnnl_format_tag_t act_tag(enum unmix_dnn_type t) {
  return t == UNMIX_DNN_WINO ? dnnl_format_tag_any : dnnl_nhwc;
}

static struct conv_plan *plan_for(const struct unmix_conv_geom *g, enum unmix_dnn_type t) {
  for (int i = 0; i < g_nplans; i++)
    if (g_plans[i]->t == t && same_geom(&g_plans[i]->g, g)) return g_plans[i];
  if (g_nplans == MAX_PLANS) return NULL; /* more shapes than any model has: use our path */
  struct conv_plan *p = calloc(1, sizeof *p);
  UNMIX_REQUIRE(p != NULL, "out of host memory");
  p->g = *g;
  p->t = t;
  const dnnl_data_type_t lo = t == UNMIX_DNN_BF16 ? dnnl_bf16 : dnnl_f32;
  dnnl_memory_desc_t src, wany, dst;
  md_tag(&src, g->n, g->c, g->h, g->w, lo, act_tag(t));
  md_tag(&wany, g->k, g->c, g->r, g->s, lo, dnnl_format_tag_any);
  md_tag(&dst, g->n, g->k, g->p, g->q, dnnl_f32, act_tag(t));
  md_tag(&p->user_w, g->k, g->c, g->r, g->s, dnnl_f32, dnnl_ohwi);
  const dnnl_dims_t st = {g->stride, g->stride}, pad_l = {g->pad, g->pad};
  /* right padding so that the output is exactly p x q (PyTorch's floor) */
  const dnnl_dims_t pad_r = {(int64_t)(g->p - 1) * g->stride + g->r - g->h - g->pad,
                             (int64_t)(g->q - 1) * g->stride + g->s - g->w - g->pad};
  dnnl_convolution_desc_t d;
  const bool wino_ok = g->r == 3 && g->s == 3 && g->stride == 1; /* Winograd F(4x4, 3x3) */
  if ((t != UNMIX_DNN_WINO || wino_ok) &&
      DNN_OK(dnnl_convolution_forward_desc_init(&d, dnnl_forward_training, alg_of(t), &src, &wany, NULL, &dst, st,
                                                pad_l, pad_r)))
    if (!DNN_OK(dnnl_primitive_desc_create(&p->fwd_hint, &d, NULL, g_engine, NULL))) p->fwd_hint = NULL;
  g_plans[g_nplans++] = p;
  return p;
}

static const dnnl_memory_desc_t *qmd(const_dnnl_primitive_desc_t pd, dnnl_query_t what) {
  return dnnl_primitive_desc_query_md(pd, what, 0);
}

/* Builds the pass's primitive (once); false when there is no fast kernel for it. */
static bool plan_pass(struct conv_plan *p, enum unmix_dnn_pass pass) {
  if (p->tried[pass]) return p->ok[pass];
  p->tried[pass] = true;
  snprintf(p->impl[pass], sizeof p->impl[pass], "none");
  if (!p->fwd_hint) return false;
  /* oneDNN 2.6's Winograd backward-weights crashed (SIGSEGV) on most geometries tried: never */
  if (p->t == UNMIX_DNN_WINO && pass == UNMIX_DNN_BWD_WEIGHT) return false;
  const struct unmix_conv_geom *g = &p->g;
  const dnnl_data_type_t lo = p->t == UNMIX_DNN_BF16 ? dnnl_bf16 : dnnl_f32;
  dnnl_memory_desc_t src, wany, dst, dsrc, ddst, dwany;
  md_tag(&src, g->n, g->c, g->h, g->w, lo, act_tag(p->t));
  md_tag(&wany, g->k, g->c, g->r, g->s, lo, dnnl_format_tag_any);
  md_tag(&dst, g->n, g->k, g->p, g->q, dnnl_f32, act_tag(p->t));
  md_tag(&dsrc, g->n, g->c, g->h, g->w, dnnl_f32, act_tag(p->t));
  md_tag(&ddst, g->n, g->k, g->p, g->q, lo, act_tag(p->t));
  md_tag(&dwany, g->k, g->c, g->r, g->s, dnnl_f32, dnnl_format_tag_any);
  const dnnl_dims_t st = {g->stride, g->stride}, pad_l = {g->pad, g->pad};
  const dnnl_dims_t pad_r = {(int64_t)(g->p - 1) * g->stride + g->r - g->h - g->pad,
                             (int64_t)(g->q - 1) * g->stride + g->s - g->w - g->pad};
  dnnl_primitive_desc_t pd = NULL;
  dnnl_convolution_desc_t d;
  if (pass == UNMIX_DNN_FWD) {
    if (DNN_OK(dnnl_convolution_forward_desc_init(&d, dnnl_forward_training, alg_of(p->t), &src, &wany, NULL, &dst,
                                                   st, pad_l, pad_r)))
      if (!DNN_OK(dnnl_primitive_desc_create(&pd, &d, NULL, g_engine, NULL))) pd = NULL;
  } else if (pass == UNMIX_DNN_BWD_DATA) {
    if (DNN_OK(dnnl_convolution_backward_data_desc_init(&d, alg_of(p->t), &dsrc, &wany, &ddst, st, pad_l, pad_r)))
      if (!DNN_OK(dnnl_primitive_desc_create(&pd, &d, NULL, g_engine, p->fwd_hint))) pd = NULL;
  } else {
    dnnl_memory_desc_t srcany, ddstany;
    md_tag(&srcany, g->n, g->c, g->h, g->w, lo, dnnl_format_tag_any);
    md_tag(&ddstany, g->n, g->k, g->p, g->q, lo, dnnl_format_tag_any);
    if (DNN_OK(dnnl_convolution_backward_weights_desc_init(&d, alg_of(p->t), &srcany, &dwany, NULL, &ddstany, st,
                                                            pad_l, pad_r)))
      if (!DNN_OK(dnnl_primitive_desc_create(&pd, &d, NULL, g_engine, p->fwd_hint))) pd = NULL;
  }
  if (!pd) return false;
  const char *impl = NULL;
  if (DNN_OK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl)) && impl)
    snprintf(p->impl[pass], sizeof p->impl[pass], "%s", impl);
  /* The reference loop is oneDNN's "this shape has no kernel" answer: orders of magnitude
   * slower than our fp32 path, so the caller is told no. */
  if (strncmp(p->impl[pass], "ref", 3) == 0) {
    dnnl_primitive_desc_destroy(pd);
    return false;
  }
  bool ok = DNN_OK(dnnl_primitive_create(&p->prim[pass], pd));
  if (ok && pass != UNMIX_DNN_BWD_WEIGHT) {
    const dnnl_memory_desc_t *wmd = qmd(pd, dnnl_query_weights_md);
    p->md_b[pass] = *wmd;
    if (!dnnl_memory_desc_equal(wmd, &p->user_w)) {
      p->w_reorder[pass] = make_reorder(&p->user_w, wmd, false);
      p->w_buf[pass] = malloc(dnnl_memory_desc_get_size(wmd));
      ok = p->w_reorder[pass] && p->w_buf[pass];
    }
    /* the operand and output layouts the kernel takes; reorders from / to NHWC where they differ */
    const bool f = pass == UNMIX_DNN_FWD;
    p->md_a[pass] = *qmd(pd, f ? dnnl_query_src_md : dnnl_query_diff_dst_md);
    p->md_out[pass] = *qmd(pd, f ? dnnl_query_dst_md : dnnl_query_diff_src_md);
    if (f) {
      md_tag(&p->user_a[pass], g->n, g->c, g->h, g->w, lo, dnnl_nhwc);
      md_tag(&p->user_out[pass], g->n, g->k, g->p, g->q, dnnl_f32, dnnl_nhwc);
    } else {
      md_tag(&p->user_a[pass], g->n, g->k, g->p, g->q, lo, dnnl_nhwc);
      md_tag(&p->user_out[pass], g->n, g->c, g->h, g->w, dnnl_f32, dnnl_nhwc);
    }
    if (ok && !dnnl_memory_desc_equal(&p->md_a[pass], &p->user_a[pass])) {
      p->a_reorder[pass] = make_reorder(&p->user_a[pass], &p->md_a[pass], false);
      ok = p->a_reorder[pass] != NULL;
    }
    if (ok && !dnnl_memory_desc_equal(&p->md_out[pass], &p->user_out[pass])) {
      p->out_reorder[pass] = make_reorder(&p->md_out[pass], &p->user_out[pass], false);
      ok = p->out_reorder[pass] != NULL;
    }
  } else if (ok) {
    const dnnl_memory_desc_t *dwmd = qmd(pd, dnnl_query_diff_weights_md);
    p->md_out[pass] = *dwmd;
    p->md_a[pass] = *qmd(pd, dnnl_query_diff_dst_md);
    p->md_b[pass] = *qmd(pd, dnnl_query_src_md);
    md_tag(&p->user_x, g->n, g->c, g->h, g->w, dnnl_f32, dnnl_nhwc);
    md_tag(&p->user_dy, g->n, g->k, g->p, g->q, dnnl_f32, dnnl_nhwc);
    p->x_reorder = make_reorder(&p->user_x, &p->md_b[pass], false);
    p->dy_reorder = make_reorder(&p->user_dy, &p->md_a[pass], false);
    p->dw_reorder = make_reorder(dwmd, &p->user_w, true);
    p->w_buf[pass] = malloc(dnnl_memory_desc_get_size(dwmd));
    ok = p->dw_reorder && p->x_reorder && p->dy_reorder && p->w_buf[pass];
  }
  dnnl_primitive_desc_destroy(pd);
  p->ok[pass] = ok;
  return ok;
}

bool unmix_dnn_conv_ok(enum unmix_dnn_pass pass, enum unmix_dnn_type t, const struct unmix_conv_geom *g,
                       const char **impl) {
  if (impl) *impl = "none";
  if (!ready()) return false;
  struct conv_plan *p = plan_for(g, t);
  if (!p) return false;
  bool ok = plan_pass(p, pass);
  if (impl) *impl = p->impl[pass];
  return ok;
}

/* The filter wt in the pass's weight layout: a pinned filter's copy (made on first use under
 * its pin), else a reorder into the plan's buffer. */
static const void *weights_for(struct conv_plan *p, enum unmix_dnn_pass pass, const float *wt) {
  const int64_t nw = (int64_t)p->g.k * p->g.r * p->g.s * p->g.c;
  const uint64_t gen = pin_gen_of(wt, nw);
  if (!gen) {
    reorder(p->w_reorder[pass], &p->user_w, wt, &p->md_b[pass], p->w_buf[pass]);
    return p->w_buf[pass];
  }
  /* this filter's copy, else a stale one to reuse (its pin is gone or renewed), else a new one */
  struct w_copy *c = NULL, *stale = NULL;
  for (int i = 0; i < p->ncopies[pass] && !c; i++) {
    struct w_copy *e = &p->copies[pass][i];
    if (e->w == wt) c = e;
    else if (!stale && pin_gen_of(e->w, nw) != e->gen) stale = e;
  }
  if (c && c->gen == gen) {
    g_pin_hits++;
    return c->buf;
  }
  if (!c) c = stale;
  if (!c) {
    struct w_copy *grown = realloc(p->copies[pass], sizeof *grown * (size_t)(p->ncopies[pass] + 1));
    UNMIX_REQUIRE(grown != NULL, "out of host memory");
    p->copies[pass] = grown;
    c = &grown[p->ncopies[pass]++];
    c->buf = NULL;
    UNMIX_REQUIRE(posix_memalign(&c->buf, 64, dnnl_memory_desc_get_size(&p->md_b[pass])) == 0,
                  "out of host memory for a pinned filter copy");
  }
  c->w = wt;
  c->gen = gen;
  reorder(p->w_reorder[pass], &p->user_w, wt, &p->md_b[pass], c->buf);
  g_pin_reorders++;
  return c->buf;
}

/* The activation operand in the plan's type: fp32 is used in place, bf16 is converted into
 * buffer slot. */
static const void *operand(const struct conv_plan *p, const float *x, size_t n, int slot) {
  if (p->t != UNMIX_DNN_BF16) return x;
  uint16_t *d = buf(slot, n * sizeof(uint16_t));
  to_bf16_n(n, x, d);
  return d;
}

bool unmix_dnn_conv(enum unmix_dnn_pass pass, enum unmix_dnn_type t, const struct unmix_conv_geom *g, const float *a,
                    const float *b, float *out) {
  if (!ready()) return false;
  struct conv_plan *p = plan_for(g, t);
  if (!p || !plan_pass(p, pass)) return false;
  const size_t nx = (size_t)g->n * g->h * g->w * g->c, ny = (size_t)g->n * g->p * g->q * g->k;
  if (pass == UNMIX_DNN_FWD || pass == UNMIX_DNN_BWD_DATA) {
    const void *w = b;
    if (p->w_reorder[pass]) w = weights_for(p, pass, b);
    const void *act = operand(p, a, pass == UNMIX_DNN_FWD ? nx : ny, BUF_A);
    if (p->a_reorder[pass]) { /* fp32 only: operand() used no buffer */
      void *blocked = buf(BUF_A, dnnl_memory_desc_get_size(&p->md_a[pass]));
      reorder(p->a_reorder[pass], &p->user_a[pass], act, &p->md_a[pass], blocked);
      act = blocked;
    }
    void *o = p->out_reorder[pass] ? buf(BUF_C, dnnl_memory_desc_get_size(&p->md_out[pass])) : out;
    dnnl_memory_t ma = mem(&p->md_a[pass], act), mw = mem(&p->md_b[pass], w), mo = mem(&p->md_out[pass], o);
    if (pass == UNMIX_DNN_FWD) {
      const dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, mo}};
      run(p->prim[pass], 3, args);
    } else {
      const dnnl_exec_arg_t args[] = {{DNNL_ARG_DIFF_DST, ma}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DIFF_SRC, mo}};
      run(p->prim[pass], 3, args);
    }
    dnnl_memory_destroy(ma);
    dnnl_memory_destroy(mw);
    dnnl_memory_destroy(mo);
    if (p->out_reorder[pass]) reorder(p->out_reorder[pass], &p->md_out[pass], o, &p->user_out[pass], out);
    return true;
  }
  if (t == UNMIX_DNN_BF16 && bwdw_by_gemm(g) && bwdw_gemm(g, a, b, out)) return true;
  void *dy = buf(BUF_A, dnnl_memory_desc_get_size(&p->md_a[pass]));
  void *x = buf(BUF_B, dnnl_memory_desc_get_size(&p->md_b[pass]));
  reorder(p->dy_reorder, &p->user_dy, a, &p->md_a[pass], dy);
  reorder(p->x_reorder, &p->user_x, b, &p->md_b[pass], x);
  dnnl_memory_t mdy = mem(&p->md_a[pass], dy), mx = mem(&p->md_b[pass], x),
                mdw = mem(&p->md_out[pass], p->w_buf[pass]);
  const dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, mx}, {DNNL_ARG_DIFF_DST, mdy}, {DNNL_ARG_DIFF_WEIGHTS, mdw}};
  run(p->prim[pass], 3, args);
  dnnl_memory_destroy(mdy);
  dnnl_memory_destroy(mx);
  dnnl_memory_destroy(mdw);
  reorder(p->dw_reorder, &p->md_out[pass], p->w_buf[pass], &p->user_w, out); /* dwt += */
  return true;
}

/* ---- GEMM --------------------------------------------------------------------------------- */
struct gemm_plan {
  char impl[96];
  bool ta, tb;
  int m, n, k, ldc;
  float alpha, beta;
  dnnl_primitive_t prim;
  dnnl_memory_desc_t a, b, c;
};
#define MAX_GEMMS 64
static struct gemm_plan g_gemms[MAX_GEMMS];
static int g_ngemms, g_gemm_next;

static struct gemm_plan *gemm_plan_for(bool ta, bool tb, int m, int n, int k, int ldc, float alpha, float beta) {
  for (int i = 0; i < g_ngemms; i++) {
    struct gemm_plan *p = &g_gemms[i];
    if (p->ta == ta && p->tb == tb && p->m == m && p->n == n && p->k == k && p->ldc == ldc && p->alpha == alpha &&
        p->beta == beta)
      return p;
  }
  /* a new shape: a free slot, else the oldest (round robin) */
  struct gemm_plan *p = &g_gemms[g_ngemms < MAX_GEMMS ? g_ngemms++ : g_gemm_next];
  if (g_ngemms == MAX_GEMMS) g_gemm_next = (g_gemm_next + 1) % MAX_GEMMS;
  if (p->prim) dnnl_primitive_destroy(p->prim);
  memset(p, 0, sizeof *p);
  p->ta = ta; p->tb = tb; p->m = m; p->n = n; p->k = k; p->ldc = ldc; p->alpha = alpha; p->beta = beta;
  /* A and B arrive as compact bf16 copies of the stored matrices; a transpose is a stride. */
  const dnnl_dims_t da = {m, k}, db = {k, n}, dc = {m, n};
  const dnnl_dims_t sa = {ta ? 1 : k, ta ? m : 1}, sb = {tb ? 1 : n, tb ? k : 1}, sc = {ldc, 1};
  DNN_MUST(dnnl_memory_desc_init_by_strides(&p->a, 2, da, dnnl_bf16, sa));
  DNN_MUST(dnnl_memory_desc_init_by_strides(&p->b, 2, db, dnnl_bf16, sb));
  DNN_MUST(dnnl_memory_desc_init_by_strides(&p->c, 2, dc, dnnl_f32, sc));
  dnnl_primitive_attr_t attr;
  dnnl_post_ops_t po = NULL;
  DNN_MUST(dnnl_primitive_attr_create(&attr));
  if (alpha != 1.0f) DNN_MUST(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &alpha));
  if (beta != 0.0f) {
    DNN_MUST(dnnl_post_ops_create(&po));
    DNN_MUST(dnnl_post_ops_append_sum(po, beta));
    DNN_MUST(dnnl_primitive_attr_set_post_ops(attr, po));
  }
  dnnl_matmul_desc_t d;
  dnnl_primitive_desc_t pd = NULL;
  if (DNN_OK(dnnl_matmul_desc_init(&d, &p->a, &p->b, NULL, &p->c)) &&
      DNN_OK(dnnl_primitive_desc_create(&pd, &d, attr, g_engine, NULL))) {
    const char *impl = NULL;
    if (DNN_OK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl)) && impl)
      snprintf(p->impl, sizeof p->impl, "%s", impl);
    if (!DNN_OK(dnnl_primitive_create(&p->prim, pd))) p->prim = NULL;
    dnnl_primitive_desc_destroy(pd);
  }
  if (po) dnnl_post_ops_destroy(po);
  dnnl_primitive_attr_destroy(attr);
  return p;
}

static bool gemm_run(const struct gemm_plan *p, const uint16_t *a16, const uint16_t *b16, float *c) {
  if (!p->prim) return false;
  dnnl_memory_t ma = mem(&p->a, a16), mb = mem(&p->b, b16), mc = mem(&p->c, c);
  const dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}};
  run(p->prim, 3, args);
  dnnl_memory_destroy(ma);
  dnnl_memory_destroy(mb);
  dnnl_memory_destroy(mc);
  return true;
}

bool unmix_dnn_gemm_bf16(bool ta, bool tb, int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                         int ldb, float beta, float *c, int ldc) {
  if (!ready() || m <= 0 || n <= 0 || k <= 0) return false;
  struct gemm_plan *p = gemm_plan_for(ta, tb, m, n, k, ldc, alpha, beta);
  if (!p->prim) return false;
  const int64_t arows = ta ? k : m, acols = ta ? m : k, brows = tb ? n : k, bcols = tb ? k : n;
  uint16_t *a16 = buf(BUF_A, sizeof(uint16_t) * (size_t)(arows * acols));
  uint16_t *b16 = buf(BUF_B, sizeof(uint16_t) * (size_t)(brows * bcols));
  to_bf16_mat(arows, acols, lda, a, a16);
  to_bf16_mat(brows, bcols, ldb, b, b16);
  return gemm_run(p, a16, b16, c);
}

const char *unmix_dnn_sample_impls(enum unmix_dnn_type t) {
  static char line[512];
  if (!ready()) return "oneDNN engine unavailable";
  struct unmix_conv_geom g3, g1;
  unmix_conv_geom_init(&g3, 64, 16, 16, 128, 128, 3, 3, 1, 1);
  unmix_conv_geom_init(&g1, 64, 16, 16, 128, 256, 1, 1, 2, 0);
  const char *i3[3], *i1[3];
  if (t == UNMIX_DNN_WINO) { /* 3x3 stride-1 forward and backward-data only */
    unmix_dnn_conv_ok(UNMIX_DNN_FWD, t, &g3, &i3[0]);
    unmix_dnn_conv_ok(UNMIX_DNN_BWD_DATA, t, &g3, &i3[1]);
    snprintf(line, sizeof line, "conv 3x3 fwd %s, bwd-data %s", i3[0], i3[1]);
    return line;
  }
  for (int pass = 0; pass < 3; pass++) {
    unmix_dnn_conv_ok((enum unmix_dnn_pass)pass, t, &g3, &i3[pass]);
    unmix_dnn_conv_ok((enum unmix_dnn_pass)pass, t, &g1, &i1[pass]);
  }
  /* what actually runs backward-weight in bf16 on these (small) maps */
  if (t == UNMIX_DNN_BF16 && bwdw_by_gemm(&g3)) i3[2] = "im2col + matmul";
  if (t == UNMIX_DNN_BF16 && bwdw_by_gemm(&g1)) i1[2] = "im2col + matmul";
  int len = snprintf(line, sizeof line, "conv 3x3 fwd %s, bwd-data %s, bwd-weights %s; conv 1x1/2 fwd %s, bwd-data %s, "
                     "bwd-weights %s", i3[0], i3[1], i3[2], i1[0], i1[1], i1[2]);
  if (t == UNMIX_DNN_BF16 && len > 0 && (size_t)len < sizeof line) {
    const struct gemm_plan *p = gemm_plan_for(false, true, 128, 2048, 512, 2048, 1.0f, 0.0f);
    snprintf(line + len, sizeof line - (size_t)len, "; matmul %s", p->prim ? p->impl : "none");
  }
  return line;
}

#endif
