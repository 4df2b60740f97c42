/* The CPU backend's op table (the reference oracle, generated from ops.def), its memory
 * functions and scratch buffers. */
#include <stdlib.h>
#include <string.h>

#include "core/backend/cpu/internal.h"
#include "core/util/blas.h"

static unmix_status cpu_init(void) {
  unmix_blas_init();
  return UNMIX_OK;
}
static void cpu_shutdown(void) {}
extern const struct unmix_backend unmix_backend_cpu;

/* Every op of the table, in fp32 only: the CPU has no tf32/bf16 arithmetic, so it says no
 * rather than silently computing something more exact than was asked for. */
static bool cpu_supports_op(enum unmix_op op, const struct unmix_op_query *q) {
  if (!unmix_backend_has_op(&unmix_backend_cpu, op)) return false;
  if (q && q->prec != UNMIX_PREC_FP32 && unmix_op_uses_precision(op)) return false;
  return true;
}
static void cpu_set_precision(enum unmix_precision p) { (void)p; }
static void cpu_set_deterministic(bool on) { (void)on; }

static void *cpu_alloc(size_t bytes) {
  void *p = NULL;
  size_t sz = (bytes + 63) / 64 * 64;
  if (posix_memalign(&p, 64, sz ? sz : 64) != 0) return NULL;
  return p;
}
static void cpu_free(void *p) { free(p); }
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
    .alloc = cpu_alloc,
    .free = cpu_free,
    .alloc_host = cpu_alloc,
    .free_host = cpu_free,
    .memcpy_h2d = cpu_memcpy,
    .memcpy_d2h = cpu_memcpy,
    .memcpy_d2d = cpu_memcpy,
    .synchronize = cpu_synchronize,
#define UNMIX_OP(NAME, name, family, params) .name = unmix_cpu_##name,
#include "core/backend/ops.def"
#undef UNMIX_OP
};
