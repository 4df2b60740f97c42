/* Fuzzes the Fashion-MNIST reader (IDX inside gzip, or plain): byte 0 picks the file under
 * test (labels or images) and its form (the input as gzip stream bytes, or the input's IDX
 * bytes gzip-compressed here so the fuzzer reaches the IDX parser); the other file of the
 * pair is a valid 2-sample IDX. Then every sample is loaded. */
#include <zlib.h>

#include "core/data/dataset.h"
#include "tests/fuzz/fuzz_common.h"

static void put_gz(const char *rel, const uint8_t *data, size_t size) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", fuzz_dir(), rel);
  gzFile g = gzopen(path, "wb1");
  if (!g) abort();
  if (size) gzwrite(g, data, (unsigned)size);
  gzclose(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > 1 << 18) return 0;
  const uint8_t mode = data[0];
  data++, size--;
  static uint8_t labels[8 + 2] = {0, 0, 8, 1, 0, 0, 0, 2, 1, 2};
  static uint8_t images[16 + 2 * 784] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28};
  const bool fuzz_labels = mode & 1, compress_here = mode & 2;
  const char *target = fuzz_labels ? "t10k-labels-idx1-ubyte" : "t10k-images-idx3-ubyte";
  char gz[128], plain[128];
  snprintf(gz, sizeof gz, "%s.gz", target);
  snprintf(plain, sizeof plain, "%s/%s", fuzz_dir(), target);
  unlink(plain);
  if (compress_here) put_gz(gz, data, size);
  else fuzz_file(gz, data, size);
  if (fuzz_labels) put_gz("t10k-images-idx3-ubyte.gz", images, sizeof images);
  else put_gz("t10k-labels-idx1-ubyte.gz", labels, sizeof labels);
  struct unmix_dataset_options o = {.name = "fashion-mnist", .root = fuzz_dir(), .split = UNMIX_SPLIT_TEST,
                                    .channels = (mode & 4) ? 3 : 1, .pad_to = (mode & 8) ? 32 : 0};
  struct unmix_dataset *ds = NULL;
  if (unmix_dataset_open(&o, &ds) == UNMIX_OK) {
    struct unmix_sample_reader rd = {0};
    struct unmix_image img;
    for (int64_t i = 0; i < ds->n && i < 64; i++)
      if (unmix_dataset_load(ds, i, &rd, NULL, NULL, &img) == UNMIX_OK && ds->labels[i] >= ds->num_classes) abort();
    unmix_sample_reader_free(&rd);
    unmix_dataset_free(ds);
  }
  return 0;
}
