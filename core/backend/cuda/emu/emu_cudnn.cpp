// Emulated CUDA device (TEST INFRASTRUCTURE): cuDNN 9's legacy 2-D convolution API as the CUDA
// backend uses it, implemented from cuDNN's documentation on the CPU. Tensor layouts come from
// the descriptor (format or explicit strides), filters are KCRS (format NCHW) or KRSC (NHWC);
// padding, stride, dilation, groups, CUDNN_CONVOLUTION (flipped filter) vs CROSS_CORRELATION,
// alpha/beta blending (beta == 0: the output is not read), math types (fp32 operands rounded to
// tf32 on tensor-op algorithms, bf16 results stored round-to-nearest-even), per-algorithm
// workspace sizes that the compute calls check and scribble over. Misuse returns cuDNN's status
// and leaves a message for cudnnGetLastErrorString.
#include <cblas.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <vector>

#include "cudnn.h"
#include "emu.h"
#include "emu_libs.h"

namespace {
const uint32_t kHandleMagic = 0xd44d0001u, kTensorMagic = 0xd44d0002u, kFilterMagic = 0xd44d0003u,
               kConvMagic = 0xd44d0004u;
thread_local char t_last_error[512];

cudnnStatus_t fail(cudnnStatus_t s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
cudnnStatus_t fail(cudnnStatus_t s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(t_last_error, sizeof t_last_error, fmt, ap);
  va_end(ap);
  return s;
}
} // namespace

struct cudnnContext {
  uint32_t magic;
  cudaStream_t stream;
};
struct cudnnTensorStruct {
  uint32_t magic;
  bool set;
  cudnnDataType_t dt;
  int n, c, h, w;
  int64_t sn, sc, sh, sw;
};
struct cudnnFilterStruct {
  uint32_t magic;
  bool set;
  cudnnDataType_t dt;
  cudnnTensorFormat_t fmt;
  int k, c, r, s;
};
struct cudnnConvolutionStruct {
  uint32_t magic;
  bool set;
  int pad_h, pad_w, u, v, dil_h, dil_w;
  cudnnConvolutionMode_t mode;
  cudnnDataType_t compute;
  cudnnMathType_t math;
  int groups;
};

namespace {

bool ok(cudnnHandle_t h) { return h && h->magic == kHandleMagic; }
bool ok(const cudnnTensorStruct *t) { return t && t->magic == kTensorMagic; }
bool ok(const cudnnFilterStruct *f) { return f && f->magic == kFilterMagic; }
bool ok(const cudnnConvolutionStruct *c) { return c && c->magic == kConvMagic; }

bool known_type(cudnnDataType_t t) {
  return t == CUDNN_DATA_FLOAT || t == CUDNN_DATA_DOUBLE || t == CUDNN_DATA_HALF || t == CUDNN_DATA_BFLOAT16;
}
size_t el_size(cudnnDataType_t t) { return t == CUDNN_DATA_DOUBLE ? 8 : t == CUDNN_DATA_FLOAT ? 4 : 2; }
size_t align256(size_t b) { return (b + 255) / 256 * 256; }

/* ---- geometry: one validated view of (x, w, conv, y) ---------------------------------------- */
enum Pass { FWD = 0, BWD_DATA = 1, BWD_FILTER = 2 };
const char *const kPassName[3] = {"cudnnConvolutionForward", "cudnnConvolutionBackwardData",
                                  "cudnnConvolutionBackwardFilter"};

struct Geom {
  cudnnTensorStruct x, y;
  cudnnFilterStruct w;
  cudnnConvolutionStruct cv;
  int N, C, H, W, K, R, S, P, Q, G, Cg, Kg;
};

/* Output size of one spatial dimension, or -1 when the dilated filter does not fit. */
int out_dim(int in, int pad, int filt, int dil, int stride) {
  const int span = (filt - 1) * dil + 1;
  if (in + 2 * pad < span) return -1;
  return (in + 2 * pad - span) / stride + 1;
}

/* The documented checks that every convolution entry point makes; only the output-dim query
 * has no y (with_y false). */
cudnnStatus_t check_geom(const char *fn, const cudnnTensorStruct *x, const cudnnFilterStruct *w,
                         const cudnnConvolutionStruct *cv, const cudnnTensorStruct *y, Geom *g, bool with_y = true) {
  if (!ok(x) || !ok(w) || !ok(cv) || (with_y && !ok(y)))
    return fail(CUDNN_STATUS_BAD_PARAM, "%s: a descriptor is NULL or was not created by cudnnCreate*Descriptor", fn);
  if (!x->set || !w->set || !cv->set || (y && !y->set))
    return fail(CUDNN_STATUS_BAD_PARAM, "%s: a descriptor was created but never set", fn);
  if (x->c != w->c * cv->groups)
    return fail(CUDNN_STATUS_BAD_PARAM, "%s: input has %d channels, the filter %d per group x %d groups", fn, x->c,
                w->c, cv->groups);
  if (w->k % cv->groups)
    return fail(CUDNN_STATUS_BAD_PARAM, "%s: %d output channels are not a multiple of the group count %d", fn, w->k,
                cv->groups);
  const int P = out_dim(x->h, cv->pad_h, w->r, cv->dil_h, cv->u), Q = out_dim(x->w, cv->pad_w, w->s, cv->dil_w, cv->v);
  if (P < 1 || Q < 1)
    return fail(CUDNN_STATUS_BAD_PARAM, "%s: the dilated %dx%d filter is larger than the padded %dx%d input", fn,
                w->r, w->s, x->h + 2 * cv->pad_h, x->w + 2 * cv->pad_w);
  if (y) {
    if (x->dt != w->dt || x->dt != y->dt)
      return fail(CUDNN_STATUS_BAD_PARAM, "%s: x, w and y have different data types (%d, %d, %d)", fn, (int)x->dt,
                  (int)w->dt, (int)y->dt);
    if (y->n != x->n || y->c != w->k || y->h != P || y->w != Q)
      return fail(CUDNN_STATUS_BAD_PARAM, "%s: y is %dx%dx%dx%d (n, c, h, w) but the convolution gives %dx%dx%dx%d", fn,
                  y->n, y->c, y->h, y->w, x->n, w->k, P, Q);
    const bool cfg = (x->dt == CUDNN_DATA_FLOAT && cv->compute == CUDNN_DATA_FLOAT) ||
                     (x->dt == CUDNN_DATA_DOUBLE && cv->compute == CUDNN_DATA_DOUBLE) ||
                     (x->dt == CUDNN_DATA_BFLOAT16 && cv->compute == CUDNN_DATA_FLOAT) ||
                     (x->dt == CUDNN_DATA_HALF && cv->compute == CUDNN_DATA_FLOAT);
    if (!cfg)
      return fail(CUDNN_STATUS_NOT_SUPPORTED, "%s: data type %d with compute type %d is not a supported configuration",
                  fn, (int)x->dt, (int)cv->compute);
    if (x->sn < 0 || x->sc < 0 || x->sh < 0 || x->sw < 0 || y->sn < 0 || y->sc < 0 || y->sh < 0 || y->sw < 0)
      return fail(CUDNN_STATUS_NOT_SUPPORTED, "%s: negative tensor strides", fn);
    // A KRSC (NHWC) filter is accepted only with channels-last activations (the documented
    // supported configurations list NHWC filters with NHWC x and y only).
    if (w->fmt == CUDNN_TENSOR_NHWC && (x->sc != 1 || y->sc != 1))
      return fail(CUDNN_STATUS_NOT_SUPPORTED, "%s: an NHWC (KRSC) filter needs NHWC x and y (channel stride 1)", fn);
  }
  if (g) {
    g->x = *x;
    g->w = *w;
    g->cv = *cv;
    if (y) g->y = *y;
    g->N = x->n, g->C = x->c, g->H = x->h, g->W = x->w, g->K = w->k, g->R = w->r, g->S = w->s, g->P = P, g->Q = Q;
    g->G = cv->groups, g->Cg = w->c, g->Kg = w->k / cv->groups;
  }
  return CUDNN_STATUS_SUCCESS;
}

bool nchw(const cudnnTensorStruct &t) { return t.sw == 1 && t.sc != 1; }
bool unit_conv(const Geom &g) { return g.cv.u == 1 && g.cv.v == 1 && g.cv.dil_h == 1 && g.cv.dil_w == 1; }

/* Whether an algorithm runs on tensor cores (then fp32 operands are rounded to tf32 under a
 * math type that allows it). */
bool tensor_op_algo(Pass p, int algo) {
  if (p == FWD) return algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM || algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
  if (p == BWD_DATA) return algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0 || algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
  return algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 || algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1 ||
         algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3;
}

int algo_count(Pass p) {
  if (p == FWD) return (int)CUDNN_CONVOLUTION_FWD_ALGO_COUNT;
  return p == BWD_DATA ? (int)CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT : (int)CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT;
}

bool deterministic(Pass p, int algo) {
  if (p == BWD_DATA) return algo != CUDNN_CONVOLUTION_BWD_DATA_ALGO_0;
  if (p == BWD_FILTER) return algo != CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 && algo != CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3;
  return true;
}

/* Whether `algo` supports this configuration, and the workspace it needs. The rules follow the
 * shape of cuDNN's supported-algorithm tables (FFT: unit stride/dilation, NCHW, bounded size;
 * Winograd: 3x3 unit stride; reduced precision: implicit-GEMM family only); the byte counts are
 * plausible formulas of the buffers each method needs, deterministic in the geometry. */
bool algo_support(Pass p, int algo, const Geom &g, size_t *ws) {
  const size_t el = el_size(g.x.dt);
  const bool fp = g.x.dt == CUDNN_DATA_FLOAT || g.x.dt == CUDNN_DATA_DOUBLE;
  const size_t crs = (size_t)g.Cg * g.R * g.S, pq = (size_t)g.P * g.Q;
  const bool fft_ok = fp && g.x.dt == CUDNN_DATA_FLOAT && unit_conv(g) && nchw(g.x) && g.w.fmt == CUDNN_TENSOR_NCHW &&
                      g.G == 1 && g.H + 2 * g.cv.pad_h <= 256 && g.W + 2 * g.cv.pad_w <= 256;
  const bool wino_ok = fp && unit_conv(g) && g.R == 3 && g.S == 3 && g.G == 1 && g.w.fmt == CUDNN_TENSOR_NCHW;
  const size_t tiles = (size_t)((g.P + 3) / 4) * ((g.Q + 3) / 4);
  const size_t fft_full = 8 * ((size_t)g.N * g.C + (size_t)g.K * g.C + (size_t)g.N * g.K) *
                          (size_t)(g.H + 2 * g.cv.pad_h) * (size_t)((g.W + 2 * g.cv.pad_w) / 2 + 1);
  const size_t fft_tile = 8 * ((size_t)g.N * g.C + (size_t)g.K * g.C + (size_t)g.N * g.K) * 32 * 17;
  const size_t wino_nf = 4 * 36 * ((size_t)g.N * g.C * tiles + (size_t)g.K * g.C + (size_t)g.N * g.K * tiles);
  *ws = 0;
  if (p == FWD) {
    switch (algo) {
      case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM: return true;
      case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM: *ws = align256(2 * sizeof(int) * crs); return true;
      case CUDNN_CONVOLUTION_FWD_ALGO_GEMM: *ws = align256(el * crs * pq); return fp && nchw(g.x);
      case CUDNN_CONVOLUTION_FWD_ALGO_DIRECT: return false; // cuDNN has no kernel behind it
      case CUDNN_CONVOLUTION_FWD_ALGO_FFT: *ws = align256(fft_full); return fft_ok;
      case CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING: *ws = align256(fft_tile); return fft_ok;
      case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD: *ws = 0; return wino_ok;
      case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED: *ws = align256(wino_nf); return wino_ok;
    }
    return false;
  }
  if (p == BWD_DATA) {
    switch (algo) {
      case CUDNN_CONVOLUTION_BWD_DATA_ALGO_0: return fp;
      case CUDNN_CONVOLUTION_BWD_DATA_ALGO_1: *ws = align256(2 * sizeof(int) * crs); return true;
      case CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT: *ws = align256(fft_full); return fft_ok;
      case CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING: *ws = align256(fft_tile); return fft_ok;
      case CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD: *ws = 0; return wino_ok;
      case CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED: *ws = align256(wino_nf); return wino_ok;
    }
    return false;
  }
  switch (algo) {
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0: return fp;
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1: *ws = align256(el * crs * pq); return true;
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT: *ws = align256(fft_full); return fft_ok;
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3: *ws = align256(4 * (size_t)g.K * crs); return fp;
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD: return false; // documented as not implemented
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED: *ws = align256(wino_nf); return wino_ok;
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING: *ws = align256(fft_tile); return fft_ok;
  }
  return false;
}

/* The math type an algorithm reports (and runs with) under the descriptor's math type. */
cudnnMathType_t row_math(Pass p, int algo, const Geom &g) {
  if (g.cv.math == CUDNN_FMA_MATH || g.x.dt == CUDNN_DATA_DOUBLE) return CUDNN_FMA_MATH;
  if (!tensor_op_algo(p, algo)) return CUDNN_FMA_MATH;
  return g.cv.math;
}

/* A modelled run time (ms) for ordering Find results: work over a per-algorithm efficiency,
 * plus a cost for workspace traffic. Only the order matters. */
float model_time(Pass p, int algo, const Geom &g, size_t ws) {
  const double flops = 2.0 * g.N * g.K * g.P * g.Q * (double)g.Cg * g.R * g.S;
  static const double eff[3][8] = {{1.0, 1.6, 0.7, 0.1, 1.2, 1.1, 1.9, 1.4},
                                   {1.3, 1.0, 1.1, 1.0, 1.7, 1.2, 1.0, 1.0},
                                   {1.4, 0.9, 1.0, 1.2, 0.1, 1.1, 0.9, 1.0}};
  double e = eff[p][algo];
  if (row_math(p, algo, g) != CUDNN_FMA_MATH) e *= 4; // tensor cores
  return (float)(flops / (e * 1e9) + (double)ws / 1e9 + 1e-3 * (algo + 1));
}

template <class Perf> cudnnStatus_t list_algos(const char *fn, Pass p, const Geom &g, bool timed, int requested,
                                               int *returned, Perf *perf) {
  if (requested <= 0 || !returned || !perf)
    return fail(CUDNN_STATUS_BAD_PARAM, "%s: requestedAlgoCount %d, returnedAlgoCount or perfResults NULL", fn,
                requested);
  std::vector<Perf> rows;
  for (int a = 0; a < algo_count(p); a++) {
    if (p == BWD_FILTER && a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD) continue; // not listed by cuDNN
    Perf r;
    memset(&r, 0, sizeof r);
    size_t ws = 0;
    const bool sup = algo_support(p, a, g, &ws);
    r.algo = (decltype(r.algo))a;
    r.status = sup ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_NOT_SUPPORTED;
    r.memory = sup ? ws : 0;
    r.determinism = deterministic(p, a) ? CUDNN_DETERMINISTIC : CUDNN_NON_DETERMINISTIC;
    r.mathType = row_math(p, a, g);
    r.time = sup ? (timed ? model_time(p, a, g, ws) : -1.0f) : -1.0f;
    rows.push_back(r);
  }
  // Find: fastest first; heuristics (_v7): cuDNN's preference, which here favours the
  // implicit-GEMM family (lowest algorithm number); unsupported rows last in both.
  auto before = [&](const Perf &a, const Perf &b) {
    if ((a.status == CUDNN_STATUS_SUCCESS) != (b.status == CUDNN_STATUS_SUCCESS)) return a.status == CUDNN_STATUS_SUCCESS;
    if (timed && a.status == CUDNN_STATUS_SUCCESS) return a.time < b.time;
    return (int)a.algo < (int)b.algo;
  };
  for (size_t i = 1; i < rows.size(); i++) // insertion sort: stable, tiny
    for (size_t j = i; j > 0 && before(rows[j], rows[j - 1]); j--) std::swap(rows[j], rows[j - 1]);
  int n = (int)rows.size() < requested ? (int)rows.size() : requested;
  for (int i = 0; i < n; i++) perf[i] = rows[i];
  *returned = n;
  return CUDNN_STATUS_SUCCESS;
}

/* ---- the arithmetic ---------------------------------------------------------------------- */
enum class Round { none, tf32, fp16 };

Round operand_rounding(Pass p, int algo, const Geom &g) {
  if (g.x.dt != CUDNN_DATA_FLOAT) return Round::none; // bf16/half operands are exact in fp32
  const cudnnMathType_t m = row_math(p, algo, g);
  if (m == CUDNN_FMA_MATH) return Round::none;
  // DEFAULT and TENSOR_OP math permit TF32 tensor cores on sm80+ (the emulated device is sm90);
  // ALLOW_CONVERSION also lets cuDNN down-convert fp32 operands to fp16.
  return m == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION ? Round::fp16 : Round::tf32;
}

double load(cudnnDataType_t t, const void *p, int64_t i, Round r) {
  switch (t) {
    case CUDNN_DATA_FLOAT: {
      float f = ((const float *)p)[i];
      if (r == Round::tf32) f = emu_round_tf32(f);
      else if (r == Round::fp16) f = (float)(_Float16)f;
      return f;
    }
    case CUDNN_DATA_DOUBLE: return ((const double *)p)[i];
    case CUDNN_DATA_BFLOAT16: return emulib_bf16_to_float(((const uint16_t *)p)[i]);
    case CUDNN_DATA_HALF: { _Float16 h; memcpy(&h, (const uint16_t *)p + i, 2); return (double)h; }
  }
  emu_fail("cuDNN emulation: data type %d is not emulated", (int)t);
}

void store(cudnnDataType_t t, void *p, int64_t i, double v) {
  switch (t) {
    case CUDNN_DATA_FLOAT: ((float *)p)[i] = (float)v; return;
    case CUDNN_DATA_DOUBLE: ((double *)p)[i] = v; return;
    case CUDNN_DATA_BFLOAT16: ((uint16_t *)p)[i] = emulib_float_to_bf16((float)v); return;
    case CUDNN_DATA_HALF: { _Float16 h = (_Float16)(float)v; memcpy((uint16_t *)p + i, &h, 2); return; }
  }
  emu_fail("cuDNN emulation: data type %d is not emulated", (int)t);
}

int64_t toff(const cudnnTensorStruct &t, int n, int c, int h, int w) {
  return (int64_t)n * t.sn + (int64_t)c * t.sc + (int64_t)h * t.sh + (int64_t)w * t.sw;
}
/* Element (k, c, r, s) of a filter: KCRS for format NCHW, KRSC for NHWC. */
int64_t foff(const cudnnFilterStruct &f, int k, int c, int r, int s) {
  if (f.fmt == CUDNN_TENSOR_NHWC) return (((int64_t)k * f.r + r) * f.s + s) * f.c + c;
  return (((int64_t)k * f.c + c) * f.r + r) * f.s + s;
}
size_t tensor_bytes(const cudnnTensorStruct &t) {
  return (size_t)(toff(t, t.n - 1, t.c - 1, t.h - 1, t.w - 1) + 1) * el_size(t.dt);
}
size_t filter_bytes(const cudnnFilterStruct &f) { return (size_t)f.k * f.c * f.r * f.s * el_size(f.dt); }

/* Dense double copies in canonical order: x as [N][C][H][W], w as [K][Cg][R][S] with the filter
 * already flipped for CUDNN_CONVOLUTION, y-shaped as [N][K][P][Q]. */
std::vector<double> read_x(const Geom &g, const void *x, Round r) {
  std::vector<double> v((size_t)g.N * g.C * g.H * g.W);
  size_t i = 0;
  for (int n = 0; n < g.N; n++)
    for (int c = 0; c < g.C; c++)
      for (int h = 0; h < g.H; h++)
        for (int w = 0; w < g.W; w++) v[i++] = load(g.x.dt, x, toff(g.x, n, c, h, w), r);
  return v;
}
std::vector<double> read_y(const Geom &g, const void *y, Round r) {
  std::vector<double> v((size_t)g.N * g.K * g.P * g.Q);
  size_t i = 0;
  for (int n = 0; n < g.N; n++)
    for (int k = 0; k < g.K; k++)
      for (int p = 0; p < g.P; p++)
        for (int q = 0; q < g.Q; q++) v[i++] = load(g.y.dt, y, toff(g.y, n, k, p, q), r);
  return v;
}
bool flipped(const Geom &g) { return g.cv.mode == CUDNN_CONVOLUTION; }
std::vector<double> read_w(const Geom &g, const void *w, Round r) {
  std::vector<double> v((size_t)g.K * g.Cg * g.R * g.S);
  size_t i = 0;
  const bool f = flipped(g);
  for (int k = 0; k < g.K; k++)
    for (int c = 0; c < g.Cg; c++)
      for (int rr = 0; rr < g.R; rr++)
        for (int ss = 0; ss < g.S; ss++)
          v[i++] = load(g.w.dt, w, foff(g.w, k, c, f ? g.R - 1 - rr : rr, f ? g.S - 1 - ss : ss), r);
  return v;
}

/* Unfolds image n, group grp of x (canonical) into col[(c, r, s)][(p, q)], zero where the tap falls
 * into the padding: the one place the padding/stride/dilation/group arithmetic lives. The three
 * passes are then double-precision GEMMs with it (cblas_dgemm), so that emulated training runs
 * at a usable speed while staying a plain reference. */
void im2col(const Geom &g, const double *xv, int n, int grp, double *col) {
  const size_t pq = (size_t)g.P * g.Q;
  for (int c = 0; c < g.Cg; c++) {
    const double *xc = xv + (((size_t)n * g.C + (size_t)grp * g.Cg + c) * g.H) * g.W;
    for (int r = 0; r < g.R; r++)
      for (int s = 0; s < g.S; s++) {
        double *out = col + (((size_t)c * g.R + r) * g.S + s) * pq;
        for (int p = 0; p < g.P; p++) {
          const int h = p * g.cv.u - g.cv.pad_h + r * g.cv.dil_h;
          for (int q = 0; q < g.Q; q++) {
            const int w = q * g.cv.v - g.cv.pad_w + s * g.cv.dil_w;
            out[(size_t)p * g.Q + q] = (h < 0 || h >= g.H || w < 0 || w >= g.W) ? 0.0 : xc[(size_t)h * g.W + w];
          }
        }
      }
  }
}
/* The adjoint of im2col: dx (canonical) += the taps of col. */
void col2im(const Geom &g, const double *col, int n, int grp, double *dxv) {
  const size_t pq = (size_t)g.P * g.Q;
  for (int c = 0; c < g.Cg; c++) {
    double *xc = dxv + (((size_t)n * g.C + (size_t)grp * g.Cg + c) * g.H) * g.W;
    for (int r = 0; r < g.R; r++)
      for (int s = 0; s < g.S; s++) {
        const double *in = col + (((size_t)c * g.R + r) * g.S + s) * pq;
        for (int p = 0; p < g.P; p++) {
          const int h = p * g.cv.u - g.cv.pad_h + r * g.cv.dil_h;
          if (h < 0 || h >= g.H) continue;
          for (int q = 0; q < g.Q; q++) {
            const int w = q * g.cv.v - g.cv.pad_w + s * g.cv.dil_w;
            if (w >= 0 && w < g.W) xc[(size_t)h * g.W + w] += in[(size_t)p * g.Q + q];
          }
        }
      }
  }
}
size_t col_len(const Geom &g) { return (size_t)g.Cg * g.R * g.S * (size_t)g.P * g.Q; }
/* Canonical y block of image n, group grp: rows k in the group, (p, q) contiguous. */
size_t yblock(const Geom &g, int n, int grp) { return ((size_t)n * g.K + (size_t)grp * g.Kg) * g.P * g.Q; }
size_t wblock(const Geom &g, int grp) { return (size_t)grp * g.Kg * g.Cg * g.R * g.S; }


/* Shared by the three compute calls: argument, algorithm and workspace checks, then the work on
 * the handle's stream. `acc` computes the unscaled result in canonical order; `emit` blends it. */
struct Blend {
  double alpha, beta;
};

cudnnStatus_t read_scalars(const char *fn, const Geom &g, const void *alpha, const void *beta, Blend *b) {
  if (!alpha || !beta) return fail(CUDNN_STATUS_BAD_PARAM, "%s: alpha or beta is NULL", fn);
  // Scaling factors live in host memory; double for double data, float otherwise.
  if (g.x.dt == CUDNN_DATA_DOUBLE) b->alpha = *(const double *)alpha, b->beta = *(const double *)beta;
  else b->alpha = *(const float *)alpha, b->beta = *(const float *)beta;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t check_algo_ws(const char *fn, Pass p, int algo, const Geom &g, void *ws, size_t ws_bytes,
                            size_t *need) {
  if (algo < 0 || algo >= algo_count(p)) return fail(CUDNN_STATUS_BAD_PARAM, "%s: algorithm %d is out of range", fn, algo);
  if (!algo_support(p, algo, g, need))
    return fail(CUDNN_STATUS_NOT_SUPPORTED, "%s: algorithm %d does not support this configuration", fn, algo);
  if (ws_bytes < *need)
    return fail(CUDNN_STATUS_BAD_PARAM, "%s: algorithm %d needs %zu bytes of workspace, %zu were given", fn, algo, *need,
                ws_bytes);
  if (*need > 0 && !ws)
    return fail(CUDNN_STATUS_BAD_PARAM, "%s: algorithm %d needs a workspace, workSpace is NULL", fn, algo);
  if (*need > 0) emu_check_device_range(ws, *need, fn);
  return CUDNN_STATUS_SUCCESS;
}

/* cuDNN owns the workspace for the duration of the call: scribbling over it makes an op that
 * shares it concurrently (or expects it preserved) compute garbage. */
void scribble(void *ws, size_t need) {
  if (need) memset(ws, 0xa5, need);
}

} // namespace

/* ---- the C API ----------------------------------------------------------------------------- */
extern "C" {

size_t cudnnGetVersion(void) { return CUDNN_VERSION; }

const char *cudnnGetErrorString(cudnnStatus_t s) {
  switch (s) {
    case CUDNN_STATUS_SUCCESS: return "CUDNN_STATUS_SUCCESS";
    case CUDNN_STATUS_NOT_INITIALIZED: return "CUDNN_STATUS_NOT_INITIALIZED";
    case CUDNN_STATUS_BAD_PARAM: return "CUDNN_STATUS_BAD_PARAM";
    case CUDNN_STATUS_BAD_PARAM_NULL_POINTER: return "CUDNN_STATUS_BAD_PARAM_NULL_POINTER";
    case CUDNN_STATUS_NOT_SUPPORTED: return "CUDNN_STATUS_NOT_SUPPORTED";
    case CUDNN_STATUS_INTERNAL_ERROR: return "CUDNN_STATUS_INTERNAL_ERROR";
    case CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED: return "CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED";
    case CUDNN_STATUS_EXECUTION_FAILED: return "CUDNN_STATUS_EXECUTION_FAILED";
  }
  return "CUDNN_STATUS_UNKNOWN";
}

void cudnnGetLastErrorString(char *message, size_t max_size) {
  if (!message || !max_size) return;
  snprintf(message, max_size, "%s", t_last_error);
  t_last_error[0] = 0;
}

cudnnStatus_t cudnnCreate(cudnnHandle_t *handle) {
  if (!handle) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnCreate: handle is NULL");
  *handle = new cudnnContext{kHandleMagic, nullptr};
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroy(cudnnHandle_t handle) {
  if (!ok(handle)) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnDestroy: not a cuDNN handle");
  emu_stream_drain(handle->stream);
  handle->magic = 0;
  delete handle;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetStream(cudnnHandle_t handle, cudaStream_t stream) {
  if (!ok(handle)) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnSetStream: not a cuDNN handle");
  handle->stream = stream;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetStream(cudnnHandle_t handle, cudaStream_t *stream) {
  if (!ok(handle) || !stream) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnGetStream: bad handle or NULL stream");
  *stream = handle->stream;
  return CUDNN_STATUS_SUCCESS;
}

/* ---- descriptors ---- */
cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t *d) {
  if (!d) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnCreateTensorDescriptor: NULL");
  *d = new cudnnTensorStruct();
  (*d)->magic = kTensorMagic;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t d) {
  if (!d) return CUDNN_STATUS_SUCCESS; // destroying NULL is allowed
  if (!ok(d)) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnDestroyTensorDescriptor: not a tensor descriptor");
  d->magic = 0;
  delete d;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetTensor4dDescriptorEx(cudnnTensorDescriptor_t d, cudnnDataType_t dt, int n, int c, int h, int w,
                                           int ns, int cs, int hs, int ws) {
  if (!ok(d)) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnSetTensor4dDescriptorEx: not a tensor descriptor");
  if (!known_type(dt)) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnSetTensor4dDescriptorEx: data type %d", (int)dt);
  if (n <= 0 || c <= 0 || h <= 0 || w <= 0)
    return fail(CUDNN_STATUS_BAD_PARAM, "cudnnSetTensor4dDescriptorEx: dimensions %dx%dx%dx%d", n, c, h, w);
  if ((int64_t)n * c * h * w > INT32_MAX)
    return fail(CUDNN_STATUS_NOT_SUPPORTED, "cudnnSetTensor4dDescriptorEx: more than 2^31 elements");
  d->set = true;
  d->dt = dt;
  d->n = n, d->c = c, d->h = h, d->w = w;
  d->sn = ns, d->sc = cs, d->sh = hs, d->sw = ws;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d, cudnnTensorFormat_t fmt, cudnnDataType_t dt, int n,
                                         int c, int h, int w) {
  if (fmt == CUDNN_TENSOR_NCHW) return cudnnSetTensor4dDescriptorEx(d, dt, n, c, h, w, c * h * w, h * w, w, 1);
  if (fmt == CUDNN_TENSOR_NHWC) return cudnnSetTensor4dDescriptorEx(d, dt, n, c, h, w, h * w * c, 1, w * c, c);
  return fail(CUDNN_STATUS_BAD_PARAM, "cudnnSetTensor4dDescriptor: format %d (NCHW_VECT_C needs int8 data)", (int)fmt);
}

cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t *d) {
  if (!d) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnCreateFilterDescriptor: NULL");
  *d = new cudnnFilterStruct();
  (*d)->magic = kFilterMagic;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t d) {
  if (!d) return CUDNN_STATUS_SUCCESS;
  if (!ok(d)) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnDestroyFilterDescriptor: not a filter descriptor");
  d->magic = 0;
  delete d;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t dt, cudnnTensorFormat_t fmt, int k,
                                         int c, int h, int w) {
  if (!ok(d)) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnSetFilter4dDescriptor: not a filter descriptor");
  if (!known_type(dt)) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnSetFilter4dDescriptor: data type %d", (int)dt);
  if (fmt != CUDNN_TENSOR_NCHW && fmt != CUDNN_TENSOR_NHWC)
    return fail(CUDNN_STATUS_BAD_PARAM, "cudnnSetFilter4dDescriptor: format %d", (int)fmt);
  if (k <= 0 || c <= 0 || h <= 0 || w <= 0)
    return fail(CUDNN_STATUS_BAD_PARAM, "cudnnSetFilter4dDescriptor: dimensions %dx%dx%dx%d", k, c, h, w);
  d->set = true;
  d->dt = dt;
  d->fmt = fmt;
  d->k = k, d->c = c, d->r = h, d->s = w;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t *d) {
  if (!d) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnCreateConvolutionDescriptor: NULL");
  *d = new cudnnConvolutionStruct();
  (*d)->magic = kConvMagic;
  (*d)->math = CUDNN_DEFAULT_MATH;
  (*d)->groups = 1;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t d) {
  if (!d) return CUDNN_STATUS_SUCCESS;
  if (!ok(d)) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnDestroyConvolutionDescriptor: not a convolution descriptor");
  d->magic = 0;
  delete d;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int pad_h, int pad_w, int u, int v,
                                              int dil_h, int dil_w, cudnnConvolutionMode_t mode,
                                              cudnnDataType_t compute) {
  if (!ok(d)) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnSetConvolution2dDescriptor: not a convolution descriptor");
  if (pad_h < 0 || pad_w < 0 || u <= 0 || v <= 0 || dil_h <= 0 || dil_w <= 0)
    return fail(CUDNN_STATUS_BAD_PARAM, "cudnnSetConvolution2dDescriptor: pad %d,%d stride %d,%d dilation %d,%d", pad_h,
                pad_w, u, v, dil_h, dil_w);
  if (mode != CUDNN_CONVOLUTION && mode != CUDNN_CROSS_CORRELATION)
    return fail(CUDNN_STATUS_BAD_PARAM, "cudnnSetConvolution2dDescriptor: mode %d", (int)mode);
  if (!known_type(compute))
    return fail(CUDNN_STATUS_BAD_PARAM, "cudnnSetConvolution2dDescriptor: compute type %d", (int)compute);
  d->set = true;
  d->pad_h = pad_h, d->pad_w = pad_w, d->u = u, d->v = v, d->dil_h = dil_h, d->dil_w = dil_w;
  d->mode = mode;
  d->compute = compute;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t m) {
  if (!ok(d)) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnSetConvolutionMathType: not a convolution descriptor");
  if (m != CUDNN_DEFAULT_MATH && m != CUDNN_TENSOR_OP_MATH && m != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION &&
      m != CUDNN_FMA_MATH)
    return fail(CUDNN_STATUS_BAD_PARAM, "cudnnSetConvolutionMathType: math type %d", (int)m);
  d->math = m;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t *m) {
  if (!ok(d) || !m) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnGetConvolutionMathType: bad arguments");
  *m = d->math;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t d, int groups) {
  if (!ok(d)) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnSetConvolutionGroupCount: not a convolution descriptor");
  if (groups < 1) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnSetConvolutionGroupCount: %d groups", groups);
  d->groups = groups;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionGroupCount(cudnnConvolutionDescriptor_t d, int *groups) {
  if (!ok(d) || !groups) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnGetConvolutionGroupCount: bad arguments");
  *groups = d->groups;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolution2dForwardOutputDim(const cudnnConvolutionDescriptor_t cv,
                                                    const cudnnTensorDescriptor_t x, const cudnnFilterDescriptor_t w,
                                                    int *n, int *c, int *h, int *wo) {
  const char *fn = "cudnnGetConvolution2dForwardOutputDim";
  if (!n || !c || !h || !wo) return fail(CUDNN_STATUS_BAD_PARAM, "%s: an output pointer is NULL", fn);
  Geom g{};
  cudnnStatus_t s = check_geom(fn, x, w, cv, nullptr, &g, false);
  if (s != CUDNN_STATUS_SUCCESS) return s;
  *n = g.N, *c = g.K, *h = g.P, *wo = g.Q;
  return CUDNN_STATUS_SUCCESS;
}

/* ---- forward ---- */
cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t h, const cudnnTensorDescriptor_t x,
                                                     const cudnnFilterDescriptor_t w,
                                                     const cudnnConvolutionDescriptor_t cv,
                                                     const cudnnTensorDescriptor_t y, const int req, int *ret,
                                                     cudnnConvolutionFwdAlgoPerf_t *perf) {
  const char *fn = "cudnnGetConvolutionForwardAlgorithm_v7";
  if (!ok(h)) return fail(CUDNN_STATUS_BAD_PARAM, "%s: not a cuDNN handle", fn);
  Geom g{};
  cudnnStatus_t s = check_geom(fn, x, w, cv, y, &g);
  return s != CUDNN_STATUS_SUCCESS ? s : list_algos(fn, FWD, g, false, req, ret, perf);
}
cudnnStatus_t cudnnFindConvolutionForwardAlgorithm(cudnnHandle_t h, const cudnnTensorDescriptor_t x,
                                                   const cudnnFilterDescriptor_t w,
                                                   const cudnnConvolutionDescriptor_t cv,
                                                   const cudnnTensorDescriptor_t y, const int req, int *ret,
                                                   cudnnConvolutionFwdAlgoPerf_t *perf) {
  const char *fn = "cudnnFindConvolutionForwardAlgorithm";
  if (!ok(h)) return fail(CUDNN_STATUS_BAD_PARAM, "%s: not a cuDNN handle", fn);
  Geom g{};
  cudnnStatus_t s = check_geom(fn, x, w, cv, y, &g);
  if (s != CUDNN_STATUS_SUCCESS) return s;
  emu_stream_drain(h->stream); // Find synchronises the device while it times the algorithms
  return list_algos(fn, FWD, g, true, req, ret, perf);
}
cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t h, const cudnnTensorDescriptor_t x,
                                                      const cudnnFilterDescriptor_t w,
                                                      const cudnnConvolutionDescriptor_t cv,
                                                      const cudnnTensorDescriptor_t y, cudnnConvolutionFwdAlgo_t algo,
                                                      size_t *bytes) {
  const char *fn = "cudnnGetConvolutionForwardWorkspaceSize";
  if (!ok(h) || !bytes) return fail(CUDNN_STATUS_BAD_PARAM, "%s: bad handle or NULL size", fn);
  Geom g{};
  cudnnStatus_t s = check_geom(fn, x, w, cv, y, &g);
  if (s != CUDNN_STATUS_SUCCESS) return s;
  if ((int)algo < 0 || (int)algo >= algo_count(FWD)) return fail(CUDNN_STATUS_BAD_PARAM, "%s: algorithm %d", fn, (int)algo);
  if (!algo_support(FWD, algo, g, bytes))
    return fail(CUDNN_STATUS_NOT_SUPPORTED, "%s: algorithm %d does not support this configuration", fn, (int)algo);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t h, const void *alpha, const cudnnTensorDescriptor_t xd,
                                      const void *x, const cudnnFilterDescriptor_t wd, const void *w,
                                      const cudnnConvolutionDescriptor_t cv, cudnnConvolutionFwdAlgo_t algo,
                                      void *ws, size_t ws_bytes, const void *beta,
                                      const cudnnTensorDescriptor_t yd, void *y) {
  const char *fn = kPassName[FWD];
  if (!ok(h)) return fail(CUDNN_STATUS_BAD_PARAM, "%s: not a cuDNN handle", fn);
  if (!x || !w || !y) return fail(CUDNN_STATUS_BAD_PARAM, "%s: x, w or y is NULL", fn);
  Geom g{};
  Blend b{0.0, 0.0};
  size_t need = 0;
  cudnnStatus_t s = check_geom(fn, xd, wd, cv, yd, &g);
  if (s == CUDNN_STATUS_SUCCESS) s = read_scalars(fn, g, alpha, beta, &b);
  if (s == CUDNN_STATUS_SUCCESS) s = check_algo_ws(fn, FWD, algo, g, ws, ws_bytes, &need);
  if (s != CUDNN_STATUS_SUCCESS) return s;
  emu_check_device_range(x, tensor_bytes(g.x), "cudnnConvolutionForward x");
  emu_check_device_range(w, filter_bytes(g.w), "cudnnConvolutionForward w");
  emu_check_device_range(y, tensor_bytes(g.y), "cudnnConvolutionForward y");
  const Round rnd = operand_rounding(FWD, algo, g);
  emu_stream_enqueue(h->stream, [=] {
    emu_device_access access;
    emu_set_current_call(fn);
    scribble(ws, need);
    const std::vector<double> xv = read_x(g, x, rnd), wv = read_w(g, w, rnd);
    std::vector<double> acc((size_t)g.N * g.K * g.P * g.Q, 0.0), col(col_len(g));
    const int crs = g.Cg * g.R * g.S, pq = g.P * g.Q;
    for (int n = 0; n < g.N; n++)
      for (int grp = 0; grp < g.G; grp++) { // y_block (Kg x PQ) = W_g (Kg x CRS) . col (CRS x PQ)
        im2col(g, xv.data(), n, grp, col.data());
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g.Kg, pq, crs, 1.0, wv.data() + wblock(g, grp), crs,
                    col.data(), pq, 0.0, acc.data() + yblock(g, n, grp), pq);
      }
    size_t i = 0;
    for (int n = 0; n < g.N; n++)
      for (int k = 0; k < g.K; k++)
        for (int p = 0; p < g.P; p++)
          for (int q = 0; q < g.Q; q++, i++) {
            const int64_t o = toff(g.y, n, k, p, q);
            const double old = b.beta == 0.0 ? 0.0 : b.beta * load(g.y.dt, y, o, Round::none);
            store(g.y.dt, y, o, b.alpha * acc[i] + old);
          }
    emu_set_current_call(nullptr);
  });
  return CUDNN_STATUS_SUCCESS;
}

/* ---- backward data ---- */
cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnnHandle_t h, const cudnnFilterDescriptor_t w,
                                                          const cudnnTensorDescriptor_t dy,
                                                          const cudnnConvolutionDescriptor_t cv,
                                                          const cudnnTensorDescriptor_t dx, const int req, int *ret,
                                                          cudnnConvolutionBwdDataAlgoPerf_t *perf) {
  const char *fn = "cudnnGetConvolutionBackwardDataAlgorithm_v7";
  if (!ok(h)) return fail(CUDNN_STATUS_BAD_PARAM, "%s: not a cuDNN handle", fn);
  Geom g{};
  cudnnStatus_t s = check_geom(fn, dx, w, cv, dy, &g);
  return s != CUDNN_STATUS_SUCCESS ? s : list_algos(fn, BWD_DATA, g, false, req, ret, perf);
}
cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithm(cudnnHandle_t h, const cudnnFilterDescriptor_t w,
                                                        const cudnnTensorDescriptor_t dy,
                                                        const cudnnConvolutionDescriptor_t cv,
                                                        const cudnnTensorDescriptor_t dx, const int req, int *ret,
                                                        cudnnConvolutionBwdDataAlgoPerf_t *perf) {
  const char *fn = "cudnnFindConvolutionBackwardDataAlgorithm";
  if (!ok(h)) return fail(CUDNN_STATUS_BAD_PARAM, "%s: not a cuDNN handle", fn);
  Geom g{};
  cudnnStatus_t s = check_geom(fn, dx, w, cv, dy, &g);
  if (s != CUDNN_STATUS_SUCCESS) return s;
  emu_stream_drain(h->stream);
  return list_algos(fn, BWD_DATA, g, true, req, ret, perf);
}
cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(cudnnHandle_t h, const cudnnFilterDescriptor_t w,
                                                           const cudnnTensorDescriptor_t dy,
                                                           const cudnnConvolutionDescriptor_t cv,
                                                           const cudnnTensorDescriptor_t dx,
                                                           cudnnConvolutionBwdDataAlgo_t algo, size_t *bytes) {
  const char *fn = "cudnnGetConvolutionBackwardDataWorkspaceSize";
  if (!ok(h) || !bytes) return fail(CUDNN_STATUS_BAD_PARAM, "%s: bad handle or NULL size", fn);
  Geom g{};
  cudnnStatus_t s = check_geom(fn, dx, w, cv, dy, &g);
  if (s != CUDNN_STATUS_SUCCESS) return s;
  if ((int)algo < 0 || (int)algo >= algo_count(BWD_DATA)) return fail(CUDNN_STATUS_BAD_PARAM, "%s: algorithm %d", fn, (int)algo);
  if (!algo_support(BWD_DATA, algo, g, bytes))
    return fail(CUDNN_STATUS_NOT_SUPPORTED, "%s: algorithm %d does not support this configuration", fn, (int)algo);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t h, const void *alpha, const cudnnFilterDescriptor_t wd,
                                           const void *w, const cudnnTensorDescriptor_t dyd, const void *dy,
                                           const cudnnConvolutionDescriptor_t cv, cudnnConvolutionBwdDataAlgo_t algo,
                                           void *ws, size_t ws_bytes, const void *beta,
                                           const cudnnTensorDescriptor_t dxd, void *dx) {
  const char *fn = kPassName[BWD_DATA];
  if (!ok(h)) return fail(CUDNN_STATUS_BAD_PARAM, "%s: not a cuDNN handle", fn);
  if (!w || !dy || !dx) return fail(CUDNN_STATUS_BAD_PARAM, "%s: w, dy or dx is NULL", fn);
  Geom g{};
  Blend b{0.0, 0.0};
  size_t need = 0;
  cudnnStatus_t s = check_geom(fn, dxd, wd, cv, dyd, &g);
  if (s == CUDNN_STATUS_SUCCESS) s = read_scalars(fn, g, alpha, beta, &b);
  if (s == CUDNN_STATUS_SUCCESS) s = check_algo_ws(fn, BWD_DATA, algo, g, ws, ws_bytes, &need);
  if (s != CUDNN_STATUS_SUCCESS) return s;
  emu_check_device_range(w, filter_bytes(g.w), "cudnnConvolutionBackwardData w");
  emu_check_device_range(dy, tensor_bytes(g.y), "cudnnConvolutionBackwardData dy");
  emu_check_device_range(dx, tensor_bytes(g.x), "cudnnConvolutionBackwardData dx");
  const Round rnd = operand_rounding(BWD_DATA, algo, g);
  emu_stream_enqueue(h->stream, [=] {
    emu_device_access access;
    emu_set_current_call(fn);
    scribble(ws, need);
    const std::vector<double> dyv = read_y(g, dy, rnd), wv = read_w(g, w, rnd);
    std::vector<double> acc((size_t)g.N * g.C * g.H * g.W, 0.0), col(col_len(g));
    const int crs = g.Cg * g.R * g.S, pq = g.P * g.Q;
    for (int n = 0; n < g.N; n++)
      for (int grp = 0; grp < g.G; grp++) { // col (CRS x PQ) = W_g^T . dy_block, then scattered back
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, crs, pq, g.Kg, 1.0, wv.data() + wblock(g, grp), crs,
                    dyv.data() + yblock(g, n, grp), pq, 0.0, col.data(), pq);
        col2im(g, col.data(), n, grp, acc.data());
      }
    size_t i = 0;
    for (int n = 0; n < g.N; n++)
      for (int c = 0; c < g.C; c++)
        for (int hh = 0; hh < g.H; hh++)
          for (int ww = 0; ww < g.W; ww++, i++) {
            const int64_t o = toff(g.x, n, c, hh, ww);
            const double old = b.beta == 0.0 ? 0.0 : b.beta * load(g.x.dt, dx, o, Round::none);
            store(g.x.dt, dx, o, b.alpha * acc[i] + old);
          }
    emu_set_current_call(nullptr);
  });
  return CUDNN_STATUS_SUCCESS;
}

/* ---- backward filter ---- */
cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnnHandle_t h, const cudnnTensorDescriptor_t x,
                                                            const cudnnTensorDescriptor_t dy,
                                                            const cudnnConvolutionDescriptor_t cv,
                                                            const cudnnFilterDescriptor_t dw, const int req, int *ret,
                                                            cudnnConvolutionBwdFilterAlgoPerf_t *perf) {
  const char *fn = "cudnnGetConvolutionBackwardFilterAlgorithm_v7";
  if (!ok(h)) return fail(CUDNN_STATUS_BAD_PARAM, "%s: not a cuDNN handle", fn);
  Geom g{};
  cudnnStatus_t s = check_geom(fn, x, dw, cv, dy, &g);
  return s != CUDNN_STATUS_SUCCESS ? s : list_algos(fn, BWD_FILTER, g, false, req, ret, perf);
}
cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithm(cudnnHandle_t h, const cudnnTensorDescriptor_t x,
                                                          const cudnnTensorDescriptor_t dy,
                                                          const cudnnConvolutionDescriptor_t cv,
                                                          const cudnnFilterDescriptor_t dw, const int req, int *ret,
                                                          cudnnConvolutionBwdFilterAlgoPerf_t *perf) {
  const char *fn = "cudnnFindConvolutionBackwardFilterAlgorithm";
  if (!ok(h)) return fail(CUDNN_STATUS_BAD_PARAM, "%s: not a cuDNN handle", fn);
  Geom g{};
  cudnnStatus_t s = check_geom(fn, x, dw, cv, dy, &g);
  if (s != CUDNN_STATUS_SUCCESS) return s;
  emu_stream_drain(h->stream);
  return list_algos(fn, BWD_FILTER, g, true, req, ret, perf);
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnnHandle_t h, const cudnnTensorDescriptor_t x,
                                                             const cudnnTensorDescriptor_t dy,
                                                             const cudnnConvolutionDescriptor_t cv,
                                                             const cudnnFilterDescriptor_t dw,
                                                             cudnnConvolutionBwdFilterAlgo_t algo, size_t *bytes) {
  const char *fn = "cudnnGetConvolutionBackwardFilterWorkspaceSize";
  if (!ok(h) || !bytes) return fail(CUDNN_STATUS_BAD_PARAM, "%s: bad handle or NULL size", fn);
  Geom g{};
  cudnnStatus_t s = check_geom(fn, x, dw, cv, dy, &g);
  if (s != CUDNN_STATUS_SUCCESS) return s;
  if ((int)algo < 0 || (int)algo >= algo_count(BWD_FILTER)) return fail(CUDNN_STATUS_BAD_PARAM, "%s: algorithm %d", fn, (int)algo);
  if (!algo_support(BWD_FILTER, algo, g, bytes))
    return fail(CUDNN_STATUS_NOT_SUPPORTED, "%s: algorithm %d does not support this configuration", fn, (int)algo);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t h, const void *alpha, const cudnnTensorDescriptor_t xd,
                                             const void *x, const cudnnTensorDescriptor_t dyd, const void *dy,
                                             const cudnnConvolutionDescriptor_t cv,
                                             cudnnConvolutionBwdFilterAlgo_t algo, void *ws, size_t ws_bytes,
                                             const void *beta, const cudnnFilterDescriptor_t dwd, void *dw) {
  const char *fn = kPassName[BWD_FILTER];
  if (!ok(h)) return fail(CUDNN_STATUS_BAD_PARAM, "%s: not a cuDNN handle", fn);
  if (!x || !dy || !dw) return fail(CUDNN_STATUS_BAD_PARAM, "%s: x, dy or dw is NULL", fn);
  Geom g{};
  Blend b{0.0, 0.0};
  size_t need = 0;
  cudnnStatus_t s = check_geom(fn, xd, dwd, cv, dyd, &g);
  if (s == CUDNN_STATUS_SUCCESS) s = read_scalars(fn, g, alpha, beta, &b);
  if (s == CUDNN_STATUS_SUCCESS) s = check_algo_ws(fn, BWD_FILTER, algo, g, ws, ws_bytes, &need);
  if (s != CUDNN_STATUS_SUCCESS) return s;
  emu_check_device_range(x, tensor_bytes(g.x), "cudnnConvolutionBackwardFilter x");
  emu_check_device_range(dy, tensor_bytes(g.y), "cudnnConvolutionBackwardFilter dy");
  emu_check_device_range(dw, filter_bytes(g.w), "cudnnConvolutionBackwardFilter dw");
  const Round rnd = operand_rounding(BWD_FILTER, algo, g);
  emu_stream_enqueue(h->stream, [=] {
    emu_device_access access;
    emu_set_current_call(fn);
    scribble(ws, need);
    const std::vector<double> xv = read_x(g, x, rnd), dyv = read_y(g, dy, rnd);
    std::vector<double> acc((size_t)g.K * g.Cg * g.R * g.S, 0.0), col(col_len(g)); // canonical (flipped)
    const int crs = g.Cg * g.R * g.S, pq = g.P * g.Q;
    for (int n = 0; n < g.N; n++)
      for (int grp = 0; grp < g.G; grp++) { // dW_g (Kg x CRS) += dy_block (Kg x PQ) . col^T
        im2col(g, xv.data(), n, grp, col.data());
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g.Kg, crs, pq, 1.0, dyv.data() + yblock(g, n, grp), pq,
                    col.data(), pq, 1.0, acc.data() + wblock(g, grp), crs);
      }
    const bool f = flipped(g);
    size_t i = 0;
    for (int k = 0; k < g.K; k++)
      for (int c = 0; c < g.Cg; c++)
        for (int r = 0; r < g.R; r++)
          for (int ss = 0; ss < g.S; ss++, i++) {
            const int64_t o = foff(g.w, k, c, f ? g.R - 1 - r : r, f ? g.S - 1 - ss : ss);
            const double old = b.beta == 0.0 ? 0.0 : b.beta * load(g.w.dt, dw, o, Round::none);
            store(g.w.dt, dw, o, b.alpha * acc[i] + old);
          }
    emu_set_current_call(nullptr);
  });
  return CUDNN_STATUS_SUCCESS;
}

} // extern "C"
