/* Synthetic dataset writers (see synth.h). */
#include "core/data/synth.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "core/data/dataset_impl.h"
#include "core/data/jpeg.h"
#include "core/kernels/philox.h"

void unmix_synth_image(uint64_t seed, int split, int64_t index, int label, int classes, int h, int w, int c,
                       uint8_t *out) {
  struct unmix_rng r = unmix_rng_make(seed, UNMIX_RNG_DATA, (uint32_t)split, (uint32_t)index, 0);
  const double pi = 3.14159265358979323846;
  /* class-dependent: grating orientation and frequency, colour pair, blob colour */
  double theta = pi * label / (classes > 1 ? classes : 1) + 0.15 * (unmix_rng_uniform(&r) - 0.5);
  double freq = (0.35 + 0.25 * (label % 3)) * (0.9 + 0.2 * unmix_rng_uniform(&r)) * 32.0 / (w > h ? w : h);
  double phase = 2 * pi * unmix_rng_uniform(&r);
  double hue = (double)label / (classes > 1 ? classes : 1);
  double col[3], comp[3];
  for (int k = 0; k < 3; k++) {
    col[k] = 0.5 + 0.45 * cos(2 * pi * (hue + k / 3.0));
    comp[k] = 1.0 - col[k];
  }
  double bx = (0.2 + 0.6 * unmix_rng_uniform(&r)) * w, by = (0.2 + 0.6 * unmix_rng_uniform(&r)) * h;
  double br = (0.12 + 0.1 * ((label / 3) % 3)) * (w < h ? w : h);
  double gain = 0.75 + 0.25 * unmix_rng_uniform(&r);
  for (int y = 0; y < h; y++) {
    for (int x = 0; x < w; x++) {
      double g = 0.5 + 0.5 * sin(freq * (x * cos(theta) + y * sin(theta)) + phase);
      double d = hypot(x - bx, y - by) / br;
      double blob = d < 1.0 ? 1.0 - d * d : 0.0;
      double v[3];
      for (int k = 0; k < 3; k++) {
        v[k] = gain * (g * col[k] + (1 - g) * comp[k]);
        v[k] = v[k] * (1 - blob) + blob * ((label + k) % 2 ? 0.95 : 0.05);
        v[k] += 0.06 * (unmix_rng_uniform(&r) - 0.5);
      }
      uint8_t *o = out + ((size_t)y * w + x) * c;
      if (c == 1) {
        double l = 0.299 * v[0] + 0.587 * v[1] + 0.114 * v[2];
        o[0] = (uint8_t)(l <= 0 ? 0 : l >= 1 ? 255 : lrint(l * 255));
      } else {
        for (int k = 0; k < 3; k++) o[k] = (uint8_t)(v[k] <= 0 ? 0 : v[k] >= 1 ? 255 : lrint(v[k] * 255));
      }
    }
  }
}

static unmix_status write_file(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f) return UNMIX_FAIL(UNMIX_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
  size_t w = fwrite(data, 1, len, f);
  int bad = w != len || fflush(f) != 0;
  bad |= fclose(f) != 0;
  if (bad) return UNMIX_FAIL(UNMIX_ERR_IO, "%s: write failed: %s", path, strerror(errno));
  return UNMIX_OK;
}

static unmix_status write_names(const char *path, const char *prefix, int n) {
  FILE *f = fopen(path, "w");
  if (!f) return UNMIX_FAIL(UNMIX_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
  for (int i = 0; i < n; i++) fprintf(f, "%s%03d\n", prefix, i);
  if (fclose(f) != 0) return UNMIX_FAIL(UNMIX_ERR_IO, "%s: write failed", path);
  return UNMIX_OK;
}

/* label of sample i: balanced, deterministic */
static int label_of(int64_t i, int classes) { return (int)(i % classes); }

static unmix_status write_cifar_file(const char *path, const struct unmix_synth_options *o, int c100, int split,
                                     int64_t first, int64_t count) {
  const size_t rec = c100 ? 3074 : 3073;
  uint8_t *buf = malloc(rec * (size_t)count), img[3072];
  if (!buf) return UNMIX_FAIL(UNMIX_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, rec * (size_t)count);
  for (int64_t k = 0; k < count; k++) {
    int64_t i = first + k;
    int label = label_of(i, o->classes);
    uint8_t *p = buf + rec * (size_t)k;
    if (c100) {
      p[0] = (uint8_t)(label * 20 / (o->classes > 20 ? o->classes : 20));
      p[1] = (uint8_t)label;
    } else {
      p[0] = (uint8_t)label;
    }
    unmix_synth_image(o->seed, split, i, label, o->classes, 32, 32, 3, img);
    uint8_t *chw = p + (c100 ? 2 : 1);
    for (int j = 0; j < 1024; j++) {
      chw[j] = img[3 * j];
      chw[1024 + j] = img[3 * j + 1];
      chw[2048 + j] = img[3 * j + 2];
    }
  }
  unmix_status s = write_file(path, buf, rec * (size_t)count);
  free(buf);
  return s;
}

static unmix_status synth_cifar(const struct unmix_synth_options *o, int c100) {
  char dir[1024], path[1200];
  snprintf(dir, sizeof dir, "%s/%s", o->dir, c100 ? "cifar-100-binary" : "cifar-10-batches-bin");
  UNMIX_TRY(unmix_fs_mkdirs(dir, 0777));
  if (c100) {
    snprintf(path, sizeof path, "%s/train.bin", dir);
    UNMIX_TRY(write_cifar_file(path, o, 1, 0, 0, o->n));
    snprintf(path, sizeof path, "%s/test.bin", dir);
    UNMIX_TRY(write_cifar_file(path, o, 1, 1, 0, o->n_test));
    snprintf(path, sizeof path, "%s/fine_label_names.txt", dir);
    UNMIX_TRY(write_names(path, "synthetic_class_", 100));
    snprintf(path, sizeof path, "%s/coarse_label_names.txt", dir);
    return write_names(path, "synthetic_superclass_", 20);
  }
  int64_t done = 0;
  for (int b = 1; b <= 5; b++) {
    int64_t count = b < 5 ? o->n / 5 : o->n - done;
    snprintf(path, sizeof path, "%s/data_batch_%d.bin", dir, b);
    UNMIX_TRY(write_cifar_file(path, o, 0, 0, done, count));
    done += count;
  }
  snprintf(path, sizeof path, "%s/test_batch.bin", dir);
  UNMIX_TRY(write_cifar_file(path, o, 0, 1, 0, o->n_test));
  snprintf(path, sizeof path, "%s/batches.meta.txt", dir);
  return write_names(path, "synthetic_class_", 10);
}

static unmix_status gz_write_idx(const char *path, const uint8_t *hdr, size_t hlen, const uint8_t *data, size_t len) {
  gzFile g = gzopen(path, "wb");
  if (!g) return UNMIX_FAIL(UNMIX_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
  int ok = gzwrite(g, hdr, (unsigned)hlen) == (int)hlen && (len == 0 || gzwrite(g, data, (unsigned)len) == (int)len);
  ok &= gzclose(g) == Z_OK;
  if (!ok) return UNMIX_FAIL(UNMIX_ERR_IO, "%s: write failed", path);
  return UNMIX_OK;
}

static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static unmix_status synth_fmnist(const struct unmix_synth_options *o) {
  UNMIX_TRY(unmix_fs_mkdirs(o->dir, 0777));
  for (int split = 0; split < 2; split++) {
    int64_t n = split ? o->n_test : o->n;
    const char *pre = split ? "t10k" : "train";
    uint8_t *img = malloc((size_t)n * 784), *lab = malloc((size_t)n);
    if (!img || !lab) {
      free(img);
      free(lab);
      return UNMIX_FAIL(UNMIX_ERR_NOMEM, "synth fashion-mnist: cannot allocate %lld images", (long long)n);
    }
    for (int64_t i = 0; i < n; i++) {
      lab[i] = (uint8_t)label_of(i, o->classes);
      unmix_synth_image(o->seed, split, i, lab[i], o->classes, 28, 28, 1, img + (size_t)i * 784);
    }
    uint8_t hdr[16];
    char path[1200];
    put_be32(hdr, 0x803);
    put_be32(hdr + 4, (uint32_t)n);
    put_be32(hdr + 8, 28);
    put_be32(hdr + 12, 28);
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte.gz", o->dir, pre);
    unmix_status s = gz_write_idx(path, hdr, 16, img, (size_t)n * 784);
    if (s == UNMIX_OK) {
      put_be32(hdr, 0x801);
      snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte.gz", o->dir, pre);
      s = gz_write_idx(path, hdr, 8, lab, (size_t)n);
    }
    free(img);
    free(lab);
    UNMIX_TRY(s);
  }
  return UNMIX_OK;
}

static unmix_status synth_imagefolder(const struct unmix_synth_options *o) {
  for (int split = 0; split < 2; split++) {
    int64_t n = split ? o->n_test : o->n;
    for (int64_t i = 0; i < n; i++) {
      int label = label_of(i, o->classes);
      char dir[1024], path[1200];
      snprintf(dir, sizeof dir, "%s/%s/class_%03d", o->dir, split ? "val" : "train", label);
      if (i < o->classes) UNMIX_TRY(unmix_fs_mkdirs(dir, 0777));
      /* varied sizes (landscape and portrait) exercise Resize / RRC on non-square inputs */
      struct unmix_rng r = unmix_rng_make(o->seed, UNMIX_RNG_DATA, (uint32_t)(2 + split), (uint32_t)i, 0);
      int h = 40 + (int)unmix_rng_below(&r, 57), w = 40 + (int)unmix_rng_below(&r, 57);
      uint8_t *img = malloc((size_t)h * w * 3), *jpg = NULL;
      if (!img) return UNMIX_FAIL(UNMIX_ERR_NOMEM, "synth imagefolder: out of memory");
      unmix_synth_image(o->seed, split, i, label, o->classes, h, w, 3, img);
      size_t len = 0;
      unmix_status s = unmix_jpeg_encode(img, h, w, 3, 90, &jpg, &len);
      free(img);
      UNMIX_TRY(s);
      snprintf(path, sizeof path, "%s/img_%06lld.JPEG", dir, (long long)i);
      s = write_file(path, jpg, len);
      free(jpg);
      UNMIX_TRY(s);
    }
  }
  return UNMIX_OK;
}

unmix_status unmix_synth_write(const struct unmix_synth_options *oin) {
  struct unmix_synth_options o = *oin;
  if (!o.format || !o.dir || !*o.dir) return UNMIX_FAIL(UNMIX_ERR_ARG, "synth: FORMAT and DIR are required");
  int max_classes = !strcmp(o.format, "cifar100") ? 100 : 10;
  if (!strcmp(o.format, "imagefolder")) max_classes = 1000;
  if (o.classes == 0) o.classes = !strcmp(o.format, "cifar100") ? 100 : 10;
  if (o.classes < 1 || o.classes > max_classes)
    return UNMIX_FAIL(UNMIX_ERR_ARG, "synth %s: --classes %d out of range 1..%d", o.format, o.classes, max_classes);
  if (o.n < 1 || o.n > 10000000) return UNMIX_FAIL(UNMIX_ERR_ARG, "synth: --n %lld out of range 1..10000000", (long long)o.n);
  if (o.n_test == 0) o.n_test = o.n / 5 > 0 ? o.n / 5 : 1;
  if (o.n_test < 1 || o.n_test > 10000000)
    return UNMIX_FAIL(UNMIX_ERR_ARG, "synth: --n-test %lld out of range 1..10000000", (long long)o.n_test);
  if (!strcmp(o.format, "cifar10")) {
    if (o.n < 5) return UNMIX_FAIL(UNMIX_ERR_ARG, "synth cifar10: --n must be >= 5 (five data_batch files)");
    return synth_cifar(&o, 0);
  }
  if (!strcmp(o.format, "cifar100")) return synth_cifar(&o, 1);
  if (!strcmp(o.format, "fashion-mnist")) return synth_fmnist(&o);
  if (!strcmp(o.format, "imagefolder")) return synth_imagefolder(&o);
  return UNMIX_FAIL(UNMIX_ERR_ARG, "synth: unknown format '%s' (cifar10, cifar100, fashion-mnist, imagefolder)", o.format);
}

unmix_status unmix_synth_dataset(int64_t n, int h, int w, int c, int classes, uint64_t seed,
                                 struct unmix_dataset **out) {
  *out = NULL;
  if (n < 1 || h < 1 || w < 1 || (c != 1 && c != 3) || classes < 1)
    return UNMIX_FAIL(UNMIX_ERR_ARG, "synthetic dataset: n %lld, %dx%dx%d, %d classes", (long long)n, h, w, c, classes);
  size_t sz = (size_t)h * w * c;
  uint8_t *pix = malloc(sz * (size_t)n);
  if (!pix) return UNMIX_FAIL(UNMIX_ERR_NOMEM, "synthetic dataset: cannot allocate %zu bytes", sz * (size_t)n);
  struct unmix_dataset *ds = unmix_dataset_alloc("synthetic", "(memory)", UNMIX_SPLIT_TRAIN);
  ds->n = n;
  ds->h = h;
  ds->w = w;
  ds->c = c;
  ds->num_classes = classes;
  ds->labels = unmix_xmalloc(sizeof(int32_t) * (size_t)n);
  ds->impl->pixels = pix;
  for (int64_t i = 0; i < n; i++) {
    ds->labels[i] = label_of(i, classes);
    unmix_synth_image(seed, 0, i, ds->labels[i], classes, h, w, c, pix + (size_t)i * sz);
  }
  unmix_dataset_set_class_names(ds, NULL, NULL);
  *out = ds;
  return UNMIX_OK;
}
