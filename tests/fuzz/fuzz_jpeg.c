/* Fuzzes JPEG decoding (size probe, then decode at 1/1, 1/2, 1/4 or 1/8 per byte 0) and the
 * ImageFolder scan over a tree holding the input under a few class folders and extensions
 * (byte 0 also picks skip_corrupt); every sample found is then loaded. */
#include "core/data/dataset.h"
#include "core/data/jpeg.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > 1 << 18) return 0;
  const uint8_t mode = data[0];
  data++, size--;
  int h = 0, w = 0;
  if (unmix_jpeg_size(data, size, "fuzz.jpg", &h, &w) == UNMIX_OK) {
    if (h <= 0 || w <= 0) abort();
    if ((int64_t)h * w <= 4096 * 4096) {
      uint8_t *pix = NULL;
      size_t cap = 0;
      int oh = 0, ow = 0;
      if (unmix_jpeg_decode(data, size, "fuzz.jpg", 1 << (mode & 3), &pix, &cap, &oh, &ow) == UNMIX_OK &&
          (size_t)oh * ow * 3 > cap)
        abort();
      free(pix);
    }
  }
  /* the scan: train/<class>/... with the input under a few names */
  static const char *const names[] = {"train/a/1.jpg", "train/a/sub/2.JPEG", "train/b/3.jpeg", "train/b/4.txt",
                                      "train/c/5.png"};
  char d[600];
  snprintf(d, sizeof d, "%s/train/a/sub", fuzz_dir());
  mkdir(d, 0755);
  for (int i = 0; i < 5; i++)
    if (mode & (8 << (i % 4))) fuzz_file(names[i], data, size);
    else {
      snprintf(d, sizeof d, "%s/%s", fuzz_dir(), names[i]);
      unlink(d);
    }
  struct unmix_dataset_options o = {.name = "imagefolder", .root = fuzz_dir(), .split = UNMIX_SPLIT_TRAIN,
                                    .skip_corrupt = mode & 4};
  struct unmix_dataset *ds = NULL;
  if (unmix_dataset_open(&o, &ds) == UNMIX_OK) {
    struct unmix_sample_reader rd = {0};
    struct unmix_image img;
    if (h > 0 && (int64_t)h * w <= 4096 * 4096)
      for (int64_t i = 0; i < ds->n; i++) unmix_dataset_load(ds, i, &rd, NULL, NULL, &img);
    unmix_sample_reader_free(&rd);
    unmix_dataset_free(ds);
  }
  return 0;
}
