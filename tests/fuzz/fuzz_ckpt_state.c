/* Fuzzes the checkpoint-to-state validation of resume (unmix_train_restore_state): a valid
 * checkpoint of a tiny MoCo run is built once; each input is a list of 6-byte edits
 * [op, tensor, arg u32 LE] applied to a copy of it in memory (bytes, int64 scalars, special
 * floats, shapes, dropped tensors), past the CRC that would stop a file-level fuzzer. A
 * restore must either succeed or refuse with a message; it must never crash or write out
 * of bounds, and a restored MoCo state must be able to take a training step's enqueue. */
#include <math.h>

#include "core/backend/backend.h"
#include "core/io/checkpoint.h"
#include "core/io/manifest.h"
#include "core/methods/common.h"
#include "core/methods/method.h"
#include "core/nn/model_io.h"
#include "experiments/trainer.h"
#include "tests/fuzz/fuzz_common.h"

static const struct unmix_backend *g_be;
static struct unmix_method *g_m;
static struct unmix_ckpt *g_base;

static void init(void) {
  fuzz_dir();
  struct unmix_config cfg;
  const char *sets[] = {"model.width=4", "model.bn_splits=2", "model.dim=8", "moco.K=32", "optim.batch_size=16"};
  if (unmix_manifest_load_string("method: moco\n", "fuzz.yaml", sets, 5, &cfg) != UNMIX_OK) abort();
  if (unmix_backend_get("cpu", &g_be) != UNMIX_OK) abort();
  if (unmix_method_create(&cfg, g_be, 32, NULL, &g_m) != UNMIX_OK) abort();
  unmix_config_free(&cfg);
  /* the same entries the trainer saves */
  struct unmix_ckpt *ck = unmix_ckpt_new();
  if (unmix_model_to_ckpt(unmix_method_encoder(g_m), ck, "", false) != UNMIX_OK) abort();
  g_base = unmix_ckpt_new();
  for (size_t i = 0; i < ck->n; i++) {
    const struct unmix_ckpt_tensor *t = &ck->tensors[i];
    if (unmix_ckpt_add_copy(g_base, t->name, t->dtype, t->ndim, t->shape, t->data) != UNMIX_OK) abort();
  }
  unmix_ckpt_free(ck);
  struct unmix_state_entry ents[16];
  int ne = unmix_method_state(g_m, ents, 16);
  for (int i = 0; i < ne; i++) {
    char name[160];
    snprintf(name, sizeof name, "unmix.state.%s", ents[i].name);
    float *h = calloc((size_t)ents[i].numel + 1, sizeof(float));
    g_be->memcpy_d2h(h, ents[i].data, sizeof(float) * (size_t)ents[i].numel);
    int64_t shape[8];
    for (int d = 0; d < ents[i].ndim; d++) shape[d] = ents[i].shape[d];
    if (unmix_ckpt_add_copy(g_base, name, UNMIX_CKPT_F32, ents[i].ndim, shape, h) != UNMIX_OK) abort();
    free(h);
  }
  const char *sn[16];
  int64_t sv[16];
  int ns = unmix_method_scalars(g_m, sn, sv, 16);
  for (int i = 0; i < ns; i++) {
    char name[160];
    snprintf(name, sizeof name, "unmix.scalar.%s", sn[i]);
    if (unmix_ckpt_add_copy(g_base, name, UNMIX_CKPT_I64, 0, NULL, &sv[i]) != UNMIX_OK) abort();
  }
}

static struct unmix_ckpt *copy_base(void) {
  struct unmix_ckpt *ck = unmix_ckpt_new();
  for (size_t i = 0; i < g_base->n; i++) {
    const struct unmix_ckpt_tensor *t = &g_base->tensors[i];
    if (unmix_ckpt_add_copy(ck, t->name, t->dtype, t->ndim, t->shape, t->data) != UNMIX_OK) abort();
  }
  return ck;
}

static void edit(struct unmix_ckpt *ck, uint8_t op, uint8_t ti, uint32_t arg) {
  struct unmix_ckpt_tensor *t = &ck->tensors[ti % ck->n];
  static const float special[8] = {NAN, INFINITY, -INFINITY, -0.0f, 3.4e38f, 1e-45f, -1.0f, 1e6f};
  switch (op % 5) {
    case 0: /* one byte */
      if (t->nbytes) ((uint8_t *)t->data)[arg % t->nbytes] = (uint8_t)(arg >> 24);
      break;
    case 1: /* an int64 value (scalars: queue pointer, counters) */
      if (t->dtype == UNMIX_CKPT_I64 && t->numel) ((int64_t *)t->data)[0] = (int64_t)(int32_t)arg;
      break;
    case 2: /* a special float */
      if (t->dtype == UNMIX_CKPT_F32 && t->numel) ((float *)t->data)[arg % t->numel] = special[(arg >> 28) & 7];
      break;
    case 3: { /* a shape (the bytes follow, as a file's parser guarantees) */
      int nd = (int)(arg & 3);
      if (nd > UNMIX_CKPT_MAX_DIMS) nd = UNMIX_CKPT_MAX_DIMS;
      size_t numel = 1;
      for (int d = 0; d < nd; d++) {
        t->shape[d] = (int64_t)((arg >> (2 + 7 * d)) & 127);
        numel *= (size_t)t->shape[d];
      }
      t->ndim = nd;
      size_t nb = numel * unmix_ckpt_dtype_size(t->dtype);
      void *d = calloc(1, nb ? nb : 1);
      if (t->owned) free(t->data);
      t->data = d;
      t->owned = true;
      t->numel = numel;
      t->nbytes = nb;
      break;
    }
    case 4: /* the tensor goes missing */
      t->name[0] = '~';
      break;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!g_m) init();
  if (size > 6 * 64) return 0;
  struct unmix_ckpt *ck = copy_base();
  for (size_t i = 0; i + 6 <= size; i += 6)
    edit(ck, data[i], data[i + 1], (uint32_t)data[i + 2] | (uint32_t)data[i + 3] << 8 | (uint32_t)data[i + 4] << 16 |
                                       (uint32_t)data[i + 5] << 24);
  if (unmix_train_restore_state(g_m, g_be, ck, 0, 1) == UNMIX_OK) {
    /* what the next step's enqueue relies on */
    int K = 0, dim = 0, ptr = 0;
    unmix_moco_queue(g_m, &K, &dim, &ptr);
    if (ptr < 0 || ptr + 32 > K || ptr % 32) {
      fprintf(stderr, "restored a MoCo queue pointer %d that the enqueue cannot use (K %d)\n", ptr, K);
      abort();
    }
  }
  unmix_ckpt_free(ck);
  return 0;
}
