/* Dataset front end: option handling, default roots, the per-sample loader shared by every
 * format, and small file helpers used by the readers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/data/dataset_impl.h"
#include "core/data/jpeg.h"
#include "core/util/log.h"

struct unmix_dataset *unmix_dataset_alloc(const char *name, const char *root, enum unmix_split split) {
  struct unmix_dataset *ds = unmix_xcalloc(1, sizeof *ds);
  snprintf(ds->name, sizeof ds->name, "%s", name);
  snprintf(ds->root, sizeof ds->root, "%s", root);
  ds->split = split;
  ds->impl = unmix_xcalloc(1, sizeof *ds->impl);
  atomic_init(&ds->impl->stream_skipped, 0);
  return ds;
}

void unmix_dataset_free(struct unmix_dataset *ds) {
  if (!ds) return;
  if (ds->impl) {
    free(ds->impl->pixels);
    free(ds->impl->offsets);
    free(ds->impl->dims);
    free(ds->impl->paths);
    free(ds->impl->pool);
    free(ds->impl);
  }
  if (ds->class_names) {
    for (int i = 0; i < ds->num_classes; i++) free(ds->class_names[i]);
    free(ds->class_names);
  }
  free(ds->labels);
  free(ds->coarse_labels);
  free(ds);
}

const char *unmix_dataset_default_root(const char *name, char *buf, size_t len) {
  const char *env = getenv("UNMIX_DATA_DIR");
  if (env && *env) {
    snprintf(buf, len, "%s/%s", env, !strcmp(name, "imagefolder") ? "imagenet" : name);
  } else if (!strcmp(name, "fashion-mnist")) {
    snprintf(buf, len, "/usr/share/datasets/fashion-mnist");
  } else if (!strcmp(name, "imagefolder")) {
    snprintf(buf, len, "data/imagenet");
  } else {
    snprintf(buf, len, "data/%s", name);
  }
  return buf;
}

void unmix_dataset_options_from_config(const struct unmix_data_config *cfg, enum unmix_split split,
                                       struct unmix_dataset_options *o) {
  memset(o, 0, sizeof *o);
  o->name = cfg->dataset;
  o->root = cfg->root;
  o->split = split;
  o->subset = split == UNMIX_SPLIT_TRAIN ? cfg->subset : cfg->test_subset;
  o->channels = cfg->channels;
  o->pad_to = cfg->pad_to;
  o->skip_corrupt = cfg->skip_corrupt;
  o->cache = UNMIX_CACHE_AUTO;
}

unmix_status unmix_dataset_open(const struct unmix_dataset_options *o, struct unmix_dataset **out) {
  *out = NULL;
  if (!o->name || !*o->name)
    return UNMIX_FAIL(UNMIX_ERR_CONFIG, "data.dataset is empty (cifar10, cifar100, fashion-mnist or imagefolder)");
  if (o->subset < 0) return UNMIX_FAIL(UNMIX_ERR_CONFIG, "data.subset = %lld: must be >= 0", (long long)o->subset);
  char root[UNMIX_PATH_MAX];
  if (o->root && *o->root) snprintf(root, sizeof root, "%s", o->root);
  else unmix_dataset_default_root(o->name, root, sizeof root);
  if (!unmix_is_dir(root)) {
    if (!strncmp(o->name, "cifar", 5))
      return UNMIX_FAIL(UNMIX_ERR_IO, "dataset %s: root directory '%s' does not exist (get the data with `unmix data fetch %s --root %s`)",
                        o->name, root, o->name, root);
    return UNMIX_FAIL(UNMIX_ERR_IO, "dataset %s: root directory '%s' does not exist", o->name, root);
  }
  struct unmix_dataset *ds = unmix_dataset_alloc(o->name, root, o->split);
  unmix_status s;
  if (!strcmp(o->name, "cifar10") || !strcmp(o->name, "cifar100")) s = unmix_cifar_open(o, ds);
  else if (!strcmp(o->name, "fashion-mnist")) s = unmix_fmnist_open(o, ds);
  else if (!strcmp(o->name, "imagefolder")) s = unmix_imagefolder_open(o, ds);
  else s = UNMIX_FAIL(UNMIX_ERR_CONFIG, "unknown dataset '%s' (cifar10, cifar100, fashion-mnist or imagefolder)", o->name);
  if (s != UNMIX_OK) {
    unmix_dataset_free(ds);
    return s;
  }
  if (o->subset > 0 && o->subset < ds->n) ds->n = o->subset;
  *out = ds;
  return UNMIX_OK;
}

const char *unmix_dataset_sample_path(const struct unmix_dataset *ds, int64_t i) {
  if (ds->impl->paths && i >= 0 && i < ds->n) return ds->impl->paths[i];
  return ds->root;
}

void unmix_sample_reader_free(struct unmix_sample_reader *rd) {
  free(rd->file);
  free(rd->pixels);
  memset(rd, 0, sizeof *rd);
}

static unmix_status load_stream(const struct unmix_dataset *ds, int64_t i, struct unmix_sample_reader *rd,
                                unmix_decode_scale_fn scale_fn, void *scale_arg, struct unmix_image *img) {
  const char *path = ds->impl->paths[i];
  size_t len;
  UNMIX_TRY(unmix_fs_read_into(path, 0, &rd->file, &rd->file_cap, &len));
  int h, w, denom = 1;
  UNMIX_TRY(unmix_jpeg_size(rd->file, len, path, &h, &w));
  if (scale_fn) {
    denom = scale_fn(scale_arg, h, w);
    if (!ds->impl->dct_scale) denom = 1;
  }
  int oh, ow;
  UNMIX_TRY(unmix_jpeg_decode(rd->file, len, path, denom, &rd->pixels, &rd->pixels_cap, &oh, &ow));
  img->data = rd->pixels;
  img->h = oh;
  img->w = ow;
  img->c = 3;
  img->full_h = h;
  img->full_w = w;
  return UNMIX_OK;
}

unmix_status unmix_dataset_load(const struct unmix_dataset *ds, int64_t i, struct unmix_sample_reader *rd,
                                unmix_decode_scale_fn scale_fn, void *scale_arg, struct unmix_image *img) {
  UNMIX_REQUIRE(i >= 0 && i < ds->n, "sample %lld of %lld", (long long)i, (long long)ds->n);
  const struct unmix_dataset_impl *im = ds->impl;
  img->c = ds->c;
  img->index = i;
  if (ds->h > 0) {
    size_t sz = (size_t)ds->h * ds->w * ds->c;
    img->data = im->pixels + (size_t)i * sz;
    img->h = img->full_h = ds->h;
    img->w = img->full_w = ds->w;
    return UNMIX_OK;
  }
  if (!ds->streaming) {
    img->data = im->pixels + im->offsets[i];
    img->h = img->full_h = im->dims[2 * i];
    img->w = img->full_w = im->dims[2 * i + 1];
    return UNMIX_OK;
  }
  /* Streamed: an unreadable file fails the load, or with skip_corrupt is replaced by the next
   * readable sample (a pure function of the files, so still thread-count independent). */
  for (int attempt = 0; attempt < 64; attempt++) {
    int64_t j = (i + attempt) % ds->n;
    unmix_status s = load_stream(ds, j, rd, scale_fn, scale_arg, img);
    if (s == UNMIX_OK) {
      img->index = j;
      return UNMIX_OK;
    }
    if (!im->skip_corrupt || s == UNMIX_ERR_NOMEM) return unmix_error_wrap(s, "sample %lld", (long long)i);
    atomic_fetch_add(&ds->impl->stream_skipped, 1);
    unmix_log_debug("skipping unreadable sample %lld: %s", (long long)j, unmix_error_message());
  }
  return UNMIX_FAIL(UNMIX_ERR_FORMAT, "%s: 64 consecutive samples from %lld on could not be read (last: %s)", ds->root,
                    (long long)i, unmix_error_message());
}

unmix_status unmix_dataset_check_sample(const struct unmix_dataset *ds, int64_t i, struct unmix_sample_reader *rd) {
  struct unmix_image img;
  if (!ds->streaming) return unmix_dataset_load(ds, i, rd, NULL, NULL, &img);
  return load_stream(ds, i, rd, NULL, NULL, &img);
}

int64_t unmix_dataset_stream_skipped(const struct unmix_dataset *ds) {
  return atomic_load(&ds->impl->stream_skipped);
}

void unmix_dataset_class_counts(const struct unmix_dataset *ds, int64_t *counts) {
  memset(counts, 0, sizeof(int64_t) * ds->num_classes);
  for (int64_t i = 0; i < ds->n; i++) counts[ds->labels[i]]++;
}

/* ---- helpers --------------------------------------------------------------------------- */

bool unmix_is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}
bool unmix_is_file(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

unmix_status unmix_path_join(char *buf, size_t len, const char *dir, const char *name) {
  int n = snprintf(buf, len, "%s/%s", dir, name);
  if (n < 0 || (size_t)n >= len) return UNMIX_FAIL(UNMIX_ERR_ARG, "path too long: %s/%s", dir, name);
  return UNMIX_OK;
}

void unmix_dataset_set_class_names(struct unmix_dataset *ds, const char *names_file, const char *const *builtin) {
  ds->class_names = unmix_xcalloc((size_t)ds->num_classes, sizeof(char *));
  FILE *f = names_file ? fopen(names_file, "r") : NULL;
  char line[256];
  for (int i = 0; i < ds->num_classes; i++) {
    const char *name = NULL;
    if (f) {
      while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (line[0]) {
          name = line;
          break;
        }
      }
    }
    if (!name && builtin) name = builtin[i];
    char tmp[32];
    if (!name) {
      snprintf(tmp, sizeof tmp, "class_%d", i);
      name = tmp;
    }
    ds->class_names[i] = unmix_xstrdup(name);
  }
  if (f) fclose(f);
}
