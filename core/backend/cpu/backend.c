/* The CPU backend's op table (the reference oracle, generated from ops.def), its memory
 * functions, scratch buffers and precision mode (fp32, or bf16 on the CPU's bf16 units
 * through oneDNN for the conv and dense families). */
#include <stdlib.h>
#include <string.h>

#include "core/backend/cpu/internal.h"
#include "core/backend/cpu/onednn.h"
#include "core/util/blas.h"
#include "core/util/log.h"

static enum unmix_cpu_conv g_conv = UNMIX_CPU_CONV_REFERENCE;

enum unmix_cpu_conv unmix_cpu_conv_mode(void) { return g_conv; }
void unmix_cpu_conv_set_mode(enum unmix_cpu_conv m) {
  g_conv = m != UNMIX_CPU_CONV_REFERENCE && !unmix_dnn_compiled() ? UNMIX_CPU_CONV_REFERENCE : m;
}

/* UNMIX_CPU_CONV selects the fp32 convolution kernels: `auto` (the default: oneDNN's Winograd
 * or direct kernels for the geometries and passes where they measured faster, conv.c;
 * reproducible run to run at a fixed thread count, not across counts), `reference` (im2col +
 * OpenBLAS SGEMM everywhere: bit-identical across thread counts, the oracle) or `onednn`
 * (oneDNN's direct kernels wherever it has a fast one). A build without oneDNN runs
 * `reference` under `auto`. */
static unmix_status cpu_init(void) {
  unmix_blas_init();
  const char *conv = getenv("UNMIX_CPU_CONV");
  if (!conv || !*conv || !strcmp(conv, "auto")) {
    unmix_cpu_conv_set_mode(UNMIX_CPU_CONV_AUTO);
  } else if (!strcmp(conv, "reference")) {
    unmix_cpu_conv_set_mode(UNMIX_CPU_CONV_REFERENCE);
  } else if (!strcmp(conv, "onednn")) {
    if (!unmix_dnn_compiled())
      return unmix_error_set(UNMIX_ERR_UNSUPPORTED,
                             "UNMIX_CPU_CONV=onednn, but this build has no oneDNN (install libdnnl-dev and rebuild, "
                             "or unset UNMIX_CPU_CONV)");
    unmix_cpu_conv_set_mode(UNMIX_CPU_CONV_ONEDNN);
  } else {
    return unmix_error_set(UNMIX_ERR_ARG, "UNMIX_CPU_CONV='%s': expected auto, reference or onednn", conv);
  }
  return UNMIX_OK;
}
static void cpu_shutdown(void) {}
extern const struct unmix_backend unmix_backend_cpu;

static enum unmix_precision g_prec = UNMIX_PREC_FP32;

bool unmix_cpu_bf16_active(void) { return g_prec == UNMIX_PREC_BF16 && unmix_dnn_bf16_units(); }

/* Every op of the table in fp32. bf16 for the conv and dense families where the CPU has
 * bf16 units and oneDNN a kernel for the geometry (the first conv of a network with 3 input
 * channels may have none: it then runs fp32, and says so here). No tf32: the CPU has no
 * such arithmetic, so it says no rather than computing something more exact than asked. */
static bool cpu_supports_op(enum unmix_op op, const struct unmix_op_query *q) {
  if (!unmix_backend_has_op(&unmix_backend_cpu, op)) return false;
  if (!q || q->prec == UNMIX_PREC_FP32 || !unmix_op_uses_precision(op)) return true;
  if (q->prec != UNMIX_PREC_BF16 || !unmix_dnn_bf16_units()) return false;
  if (q->conv) {
    const enum unmix_dnn_pass pass = op == UNMIX_OP_CONV2D_FORWARD       ? UNMIX_DNN_FWD
                                     : op == UNMIX_OP_CONV2D_BACKWARD_DATA ? UNMIX_DNN_BWD_DATA
                                                                           : UNMIX_DNN_BWD_WEIGHT;
    return unmix_dnn_conv_ok(pass, UNMIX_DNN_BF16, q->conv, NULL);
  }
  return true;
}

/* tf32 has no CPU arithmetic and runs fp32 (as the manifest's default, tf32, always did on
 * the CPU); bf16 without bf16 units runs fp32 too, with a warning saying why. */
static void cpu_set_precision(enum unmix_precision p) {
  g_prec = p;
  if (p == UNMIX_PREC_BF16 && !unmix_dnn_bf16_units())
    unmix_log_warn("cpu: precision bf16 asked for, but %s: running fp32", unmix_dnn_describe());
}
/* `unmix info`'s lines: the fp32 kernels, then what precision bf16 runs on. */
static const char *cpu_describe_kernels(void) {
  static char buf[1536];
  int len;
  if (g_conv == UNMIX_CPU_CONV_REFERENCE)
    len = snprintf(buf, sizeof buf,
                   "cpu fp32: conv im2col + OpenBLAS SGEMM (UNMIX_CPU_CONV=reference%s, bit-identical across "
                   "thread counts), dense OpenBLAS SGEMM\ncpu bf16: ",
                   unmix_dnn_compiled() ? "" : "; auto without oneDNN");
  else {
    char wino[192] = ""; /* the sample line lives in a static buffer: copied before the next call */
    if (g_conv == UNMIX_CPU_CONV_AUTO)
      snprintf(wino, sizeof wino, "Winograd %s; direct ", unmix_dnn_sample_impls(UNMIX_DNN_WINO));
    len = snprintf(buf, sizeof buf,
                   "cpu fp32: conv %s (UNMIX_CPU_CONV=%s; not bit-identical across thread counts: %s%s), dense "
                   "OpenBLAS SGEMM\ncpu bf16: ",
                   g_conv == UNMIX_CPU_CONV_AUTO
                       ? "oneDNN where it measured faster (Winograd F(4x4,3x3) for the forward and "
                         "backward-data of wide 3x3 stride-1 convs, else direct), else im2col + OpenBLAS SGEMM"
                       : "oneDNN",
                   g_conv == UNMIX_CPU_CONV_AUTO ? "auto, the default" : "onednn", wino,
                   unmix_dnn_sample_impls(UNMIX_DNN_F32));
  }
  if (len < 0 || (size_t)len >= sizeof buf) return buf;
  if (unmix_dnn_bf16_units())
    snprintf(buf + len, sizeof buf - (size_t)len, "%s; %s", unmix_dnn_describe(),
             unmix_dnn_sample_impls(UNMIX_DNN_BF16));
  else if (!unmix_dnn_compiled())
    snprintf(buf + len, sizeof buf - (size_t)len, "fp32 (%s)", unmix_dnn_describe());
  else
    snprintf(buf + len, sizeof buf - (size_t)len, "no bf16 units: fp32 (%s)", unmix_dnn_describe());
  return buf;
}
static void cpu_set_deterministic(bool on) { (void)on; }

static void *cpu_alloc(size_t bytes) {
  void *p = NULL;
  size_t sz = (bytes + 63) / 64 * 64;
  if (posix_memalign(&p, 64, sz ? sz : 64) != 0) return NULL;
  return p;
}
/* A freed store may be a pinned parameter store: its reordered filter copies must not
 * outlive it (the next store at this address would read them). */
static void cpu_free(void *p) {
  unmix_dnn_weights_forget(p);
  free(p);
}
static void cpu_memcpy(void *dst, const void *src, size_t bytes) {
  if (bytes) memcpy(dst, src, bytes);
}
static void cpu_synchronize(void) {}

/* One scratch buffer per slot, grown on demand and kept. */
#define SCRATCH_SLOTS 4
static float *g_scratch[SCRATCH_SLOTS];
static size_t g_scratch_cap[SCRATCH_SLOTS];
float *unmix_cpu_scratch(int slot, size_t floats) {
  UNMIX_REQUIRE(slot >= 0 && slot < SCRATCH_SLOTS, "bad scratch slot %d", slot);
  if (floats > g_scratch_cap[slot]) {
    free(g_scratch[slot]);
    g_scratch[slot] = cpu_alloc(floats * sizeof(float));
    UNMIX_REQUIRE(g_scratch[slot] != NULL, "out of host memory for %zu scratch floats", floats);
    g_scratch_cap[slot] = floats;
  }
  return g_scratch[slot];
}

const struct unmix_backend unmix_backend_cpu = {
    .name = "cpu",
    .device = UNMIX_DEVICE_CPU,
    .init = cpu_init,
    .shutdown = cpu_shutdown,
    .supports_op = cpu_supports_op,
    .set_precision = cpu_set_precision,
    .set_deterministic = cpu_set_deterministic,
    .describe_kernels = cpu_describe_kernels,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .alloc_host = cpu_alloc,
    .free_host = cpu_free,
    .memcpy_h2d = cpu_memcpy,
    .memcpy_d2h = cpu_memcpy,
    .memcpy_d2d = cpu_memcpy,
    .synchronize = cpu_synchronize,
    .weights_pin = unmix_dnn_weights_pin,
    .weights_unpin = unmix_dnn_weights_unpin,
#define UNMIX_OP(NAME, name, family, params) .name = unmix_cpu_##name,
#include "core/backend/ops.def"
#undef UNMIX_OP
};
