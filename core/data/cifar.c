/* CIFAR-10 / CIFAR-100 official binary releases -> in-memory HWC uint8 + labels. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/data/cifar_pickle.h"
#include "core/data/dataset_impl.h"

static const char *const CIFAR10_NAMES[] = {"airplane", "automobile", "bird", "cat", "deer",
                                            "dog",      "frog",       "horse", "ship", "truck"};

unmix_status unmix_cifar_open(const struct unmix_dataset_options *o, struct unmix_dataset *ds) {
  const int c100 = !strcmp(o->name, "cifar100");
  const char *sub = c100 ? "cifar-100-binary" : "cifar-10-batches-bin";
  char dir[UNMIX_PATH_MAX];
  UNMIX_TRY(unmix_path_join(dir, sizeof dir, ds->root, sub));
  if (!unmix_is_dir(dir)) snprintf(dir, sizeof dir, "%s", ds->root);
  char given_root[UNMIX_PATH_MAX];
  snprintf(given_root, sizeof given_root, "%s", ds->root);
  snprintf(ds->root, sizeof ds->root, "%s", dir); /* the directory actually read */

  const char *files[5];
  int nfiles;
  if (c100) {
    files[0] = o->split == UNMIX_SPLIT_TRAIN ? "train.bin" : "test.bin";
    nfiles = 1;
  } else if (o->split == UNMIX_SPLIT_TRAIN) {
    static const char *const b[5] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                                     "data_batch_5.bin"};
    for (int i = 0; i < 5; i++) files[i] = b[i];
    nfiles = 5;
  } else {
    files[0] = "test_batch.bin";
    nfiles = 1;
  }
  const size_t rec = c100 ? 3074 : 3073, img = 3072;
  const int nclass = c100 ? 100 : 10;
  char paths[5][UNMIX_PATH_MAX];
  size_t sizes[5], total = 0;
  for (int f = 0; f < nfiles; f++) {
    UNMIX_TRY(unmix_path_join(paths[f], sizeof paths[f], dir, files[f]));
    struct stat sb;
    if (stat(paths[f], &sb) != 0) {
      if (errno != ENOENT)
        return UNMIX_FAIL(UNMIX_ERR_IO, "%s: cannot stat: %s", paths[f], strerror(errno));
      char py[UNMIX_PATH_MAX];
      if (unmix_cifar_find_python(given_root, c100, py, sizeof py)) /* torchvision's download is there */
        return UNMIX_FAIL(UNMIX_ERR_IO,
                          "%s: missing; %s holds torchvision's python release of %s instead: "
                          "`unmix data import %s %s` converts it (one command, no Python needed)",
                          paths[f], py, o->name, o->name, given_root);
      return UNMIX_FAIL(UNMIX_ERR_IO,
                        "%s: missing (dataset %s expects the official binary release in %s/%s or %s; "
                        "`unmix data fetch %s --root %s` downloads it)",
                        paths[f], o->name, given_root, sub, given_root, o->name, given_root);
    }
    /* fopen() succeeds on a directory and ftell() then reports LONG_MAX bytes */
    if (!S_ISREG(sb.st_mode))
      return UNMIX_FAIL(UNMIX_ERR_FORMAT, "%s: is %s, not the CIFAR batch file dataset %s needs", paths[f],
                        S_ISDIR(sb.st_mode) ? "a directory" : "not a regular file", o->name);
    long sz = (long)sb.st_size;
    if (sz <= 0 || (size_t)sz % rec != 0)
      return UNMIX_FAIL(UNMIX_ERR_FORMAT,
                        "%s: %ld bytes is not a whole number of %zu-byte records (truncated, or not the "
                        "binary version of %s?)",
                        paths[f], sz, rec, o->name);
    sizes[f] = (size_t)sz;
    total += (size_t)sz / rec;
  }
  ds->n = (int64_t)total;
  ds->c = 3;
  ds->h = ds->w = 32;
  ds->num_classes = nclass;
  ds->labels = unmix_xmalloc(sizeof(int32_t) * total);
  if (c100) {
    ds->coarse_labels = unmix_xmalloc(sizeof(int32_t) * total);
    ds->num_coarse_classes = 20;
  }
  ds->impl->pixels = malloc(total * img);
  if (!ds->impl->pixels)
    return UNMIX_FAIL(UNMIX_ERR_NOMEM, "dataset %s: cannot allocate %zu bytes for %zu images", o->name, total * img, total);
  size_t k = 0;
  for (int f = 0; f < nfiles; f++) {
    uint8_t *buf;
    size_t len;
    UNMIX_TRY(unmix_fs_read(paths[f], 0, &buf, &len));
    if (len != sizes[f]) {
      free(buf);
      return UNMIX_FAIL(UNMIX_ERR_IO, "%s: changed size while being read", paths[f]);
    }
    for (size_t r = 0; r < len / rec; r++, k++) {
      const uint8_t *p = buf + r * rec;
      int coarse = c100 ? p[0] : 0, fine = c100 ? p[1] : p[0];
      if (fine >= nclass || coarse >= 20) {
        free(buf);
        return UNMIX_FAIL(UNMIX_ERR_FORMAT, "%s: record %zu has %s label %d (%s labels are 0..%d)", paths[f], r,
                          fine >= nclass ? (c100 ? "fine" : "a") : "coarse", fine >= nclass ? fine : coarse,
                          o->name, fine >= nclass ? nclass - 1 : 19);
      }
      ds->labels[k] = fine;
      if (c100) ds->coarse_labels[k] = coarse;
      const uint8_t *chw = p + (c100 ? 2 : 1);
      uint8_t *hwc = ds->impl->pixels + k * img;
      for (int i = 0; i < 1024; i++) {
        hwc[3 * i] = chw[i];
        hwc[3 * i + 1] = chw[1024 + i];
        hwc[3 * i + 2] = chw[2048 + i];
      }
    }
    free(buf);
  }
  char names[UNMIX_PATH_MAX];
  if (unmix_path_join(names, sizeof names, dir, c100 ? "fine_label_names.txt" : "batches.meta.txt") != UNMIX_OK)
    names[0] = 0;
  unmix_dataset_set_class_names(ds, names[0] ? names : NULL, c100 ? NULL : CIFAR10_NAMES);
  unmix_error_clear();
  return UNMIX_OK;
}
