/* Fuzzes the CIFAR-10/100 binary reader: byte 0 picks the release (bit 0: CIFAR-100), the
 * rest is its test batch file; every sample is then loaded and its label checked. */
#include "core/data/dataset.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > 1 << 20) return 0;
  const bool c100 = data[0] & 1;
  const char *rel = c100 ? "cifar-100-binary/test.bin" : "cifar-10-batches-bin/test_batch.bin";
  fuzz_file(rel, data + 1, size - 1);
  struct unmix_dataset_options o = {.name = c100 ? "cifar100" : "cifar10", .root = fuzz_dir(),
                                    .split = UNMIX_SPLIT_TEST};
  struct unmix_dataset *ds = NULL;
  if (unmix_dataset_open(&o, &ds) == UNMIX_OK) {
    struct unmix_sample_reader rd = {0};
    struct unmix_image img;
    for (int64_t i = 0; i < ds->n; i++) {
      if (ds->labels[i] < 0 || ds->labels[i] >= ds->num_classes) abort();
      if (unmix_dataset_load(ds, i, &rd, NULL, NULL, &img) != UNMIX_OK || img.h != 32 || img.w != 32) abort();
    }
    unmix_sample_reader_free(&rd);
    unmix_dataset_free(ds);
  }
  return 0;
}
