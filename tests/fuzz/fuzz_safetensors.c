/* Fuzzes the safetensors reader (header JSON, offsets, dtypes, CRC, finiteness) through
 * the file path every command uses, then the checkpoint-to-model path of the evaluation
 * commands (knn, lincls, export, tsne: unmix_eval_ckpt_open on the same file). */
#include "core/io/checkpoint.h"
#include "eval/ckpt_model.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 1 << 20) return 0;
  const char *p = fuzz_file("in.safetensors", data, size);
  struct unmix_ckpt *ck = NULL;
  if (unmix_ckpt_load(p, &ck) == UNMIX_OK) {
    for (size_t i = 0; i < ck->n; i++) /* every tensor's bytes are readable */
      if (ck->tensors[i].nbytes) {
        volatile uint8_t x = ((const uint8_t *)ck->tensors[i].data)[ck->tensors[i].nbytes - 1];
        (void)x;
      }
    unmix_ckpt_free(ck);
    struct unmix_eval_open_options o = {0};
    struct unmix_eval_ckpt *e = NULL;
    if (unmix_eval_ckpt_open(p, &o, &e) == UNMIX_OK) unmix_eval_ckpt_close(e);
  }
  return 0;
}
