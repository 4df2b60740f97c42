/* Synthetic datasets in the exact on-disk formats (CIFAR-10/100 binary, Fashion-MNIST IDX gz,
 * ImageFolder JPEG), for end-to-end tests and smoke runs without downloads. Images carry
 * class-dependent structure (an oriented colour grating and a blob whose frequency, colour
 * and orientation depend on the class) plus per-image randomness, so a small network can
 * learn to separate the classes. Every pixel is a pure function of (seed, split, index). */
#pragma once
#include <stdint.h>

#include "core/util/error.h"

/* Random-stream purpose of synthetic data generation; values: core/util/rng.h. */
enum unmix_synth_rng_purpose { UNMIX_RNG_DATA = 10 };

struct unmix_synth_options {
  const char *format;   /* cifar10 | cifar100 | fashion-mnist | imagefolder */
  const char *dir;      /* output root (created) */
  int64_t n;            /* training samples (cifar10: >= 5, one per data batch file at least) */
  int64_t n_test;       /* test samples (0 = n / 5, at least 1) */
  int classes;          /* <= 10 (cifar10, fashion-mnist), <= 100 (cifar100); >= 1 */
  uint64_t seed;
};
unmix_status unmix_synth_write(const struct unmix_synth_options *o);

/* One synthetic image (h, w, c) of class `label` out of `classes`; split 0 = train, 1 = test. */
void unmix_synth_image(uint64_t seed, int split, int64_t index, int label, int classes, int h, int w, int c,
                       uint8_t *out);

struct unmix_dataset;
/* An in-memory dataset of n synthetic (h, w, c) images with balanced labels (i mod classes),
 * named "synthetic": for benchmarks and tests that need no files. */
unmix_status unmix_synth_dataset(int64_t n, int h, int w, int c, int classes, uint64_t seed,
                                 struct unmix_dataset **out);
