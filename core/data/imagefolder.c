/* ImageFolder (torchvision.datasets.ImageFolder layout and order): scanning, and decoding
 * into memory for small sets; large sets are streamed (dataset.c decodes on load). */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/data/dataset_impl.h"
#include "core/data/jpeg.h"
#include "core/util/log.h"

#define AUTO_MEMORY_MAX_FILES 20000
#define AUTO_MEMORY_MAX_BYTES ((int64_t)64 << 20)

/* torchvision's IMG_EXTENSIONS, compared case-insensitively on the end of the name. */
static bool valid_image_name(const char *name) {
  static const char *const ext[] = {".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"};
  size_t n = strlen(name);
  for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
    size_t e = strlen(ext[i]);
    if (n >= e && !strcasecmp(name + n - e, ext[i])) return true;
  }
  return false;
}

struct strvec {
  char **v;
  size_t n, cap;
};
static void sv_push(struct strvec *s, const char *str) {
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 64;
    s->v = unmix_xrealloc(s->v, s->cap * sizeof(char *));
  }
  s->v[s->n++] = unmix_xstrdup(str);
}
static void sv_free(struct strvec *s) {
  for (size_t i = 0; i < s->n; i++) free(s->v[i]);
  free(s->v);
  memset(s, 0, sizeof *s);
}
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Entries of `dir` (excluding . and ..) that are directories (dirs) or files (files), sorted.
 * Symbolic links are followed, as os.walk(followlinks=True) and os.scandir().is_dir() do. */
static unmix_status list_dir(const char *dir, struct strvec *dirs, struct strvec *files) {
  DIR *d = opendir(dir);
  if (!d) return UNMIX_FAIL(UNMIX_ERR_IO, "%s: cannot list the directory", dir);
  struct dirent *e;
  char path[UNMIX_PATH_MAX];
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    if (unmix_path_join(path, sizeof path, dir, e->d_name) != UNMIX_OK) {
      closedir(d);
      return unmix_error_wrap(UNMIX_ERR_IO, "imagefolder");
    }
    bool is_dir = e->d_type == DT_DIR, is_file = e->d_type == DT_REG;
    if (e->d_type == DT_UNKNOWN || e->d_type == DT_LNK) {
      struct stat st;
      if (stat(path, &st) != 0) continue;
      is_dir = S_ISDIR(st.st_mode);
      is_file = S_ISREG(st.st_mode);
    }
    if (is_dir && dirs) sv_push(dirs, e->d_name);
    if (is_file && files) sv_push(files, e->d_name);
  }
  closedir(d);
  if (dirs && dirs->n > 1) qsort(dirs->v, dirs->n, sizeof(char *), cmp_str);
  if (files && files->n > 1) qsort(files->v, files->n, sizeof(char *), cmp_str);
  return UNMIX_OK;
}

/* All directories under `dir` (itself included), as full paths, recursively. */
static unmix_status walk_dirs(const char *dir, int depth, struct strvec *out) {
  if (depth > 32) return UNMIX_FAIL(UNMIX_ERR_IO, "%s: directories nested more than 32 deep (a symlink loop?)", dir);
  sv_push(out, dir);
  struct strvec sub = {0};
  UNMIX_TRY(list_dir(dir, &sub, NULL));
  char path[UNMIX_PATH_MAX];
  unmix_status s = UNMIX_OK;
  for (size_t i = 0; i < sub.n && s == UNMIX_OK; i++) {
    s = unmix_path_join(path, sizeof path, dir, sub.v[i]);
    if (s == UNMIX_OK) s = walk_dirs(path, depth + 1, out);
  }
  sv_free(&sub);
  return s;
}

/* Files of one class in torchvision's make_dataset order: sorted(os.walk(dir)) visits
 * directories in sorted full-path order; each directory's files are sorted by name. */
static unmix_status class_files(const char *class_dir, struct strvec *files) {
  struct strvec dirs = {0};
  unmix_status s = walk_dirs(class_dir, 0, &dirs);
  if (s == UNMIX_OK && dirs.n > 1) qsort(dirs.v, dirs.n, sizeof(char *), cmp_str);
  char path[UNMIX_PATH_MAX];
  for (size_t i = 0; i < dirs.n && s == UNMIX_OK; i++) {
    struct strvec names = {0};
    s = list_dir(dirs.v[i], NULL, &names);
    for (size_t j = 0; j < names.n && s == UNMIX_OK; j++) {
      if (!valid_image_name(names.v[j])) continue;
      s = unmix_path_join(path, sizeof path, dirs.v[i], names.v[j]);
      if (s == UNMIX_OK) sv_push(files, path);
    }
    sv_free(&names);
  }
  sv_free(&dirs);
  return s;
}

/* Decodes every image into one buffer; with skip_corrupt unreadable ones are dropped. */
static unmix_status decode_all(struct unmix_dataset *ds, bool skip_corrupt) {
  struct unmix_dataset_impl *im = ds->impl;
  uint8_t *file = NULL, *pix = NULL;
  size_t file_cap = 0, pix_cap = 0, used = 0, cap = 0;
  im->offsets = unmix_xmalloc(sizeof(int64_t) * ((size_t)ds->n + 1));
  im->dims = unmix_xmalloc(sizeof(int32_t) * 2 * (size_t)ds->n);
  int64_t kept = 0;
  unmix_status s = UNMIX_OK;
  for (int64_t i = 0; i < ds->n; i++) {
    size_t len;
    int h = 0, w = 0;
    s = unmix_fs_read_into(im->paths[i], 0, &file, &file_cap, &len);
    if (s == UNMIX_OK) s = unmix_jpeg_decode(file, len, im->paths[i], 1, &pix, &pix_cap, &h, &w);
    if (s != UNMIX_OK) {
      if (!skip_corrupt || s == UNMIX_ERR_NOMEM) {
        unmix_error_wrap(s, "imagefolder sample %lld", (long long)i);
        break;
      }
      unmix_log_warn("skipping unreadable image: %s", unmix_error_message());
      s = UNMIX_OK;
      ds->n_skipped++;
      continue;
    }
    size_t sz = (size_t)h * w * 3;
    if (used + sz > cap) {
      cap = (used + sz) * 2;
      uint8_t *nb = realloc(im->pixels, cap);
      if (!nb) {
        s = UNMIX_FAIL(UNMIX_ERR_NOMEM, "imagefolder %s: cannot hold %zu bytes of decoded images", ds->root, cap);
        break;
      }
      im->pixels = nb;
    }
    memcpy(im->pixels + used, pix, sz);
    im->offsets[kept] = (int64_t)used;
    im->dims[2 * kept] = h;
    im->dims[2 * kept + 1] = w;
    im->paths[kept] = im->paths[i];
    ds->labels[kept] = ds->labels[i];
    used += sz;
    kept++;
  }
  free(file);
  free(pix);
  if (s != UNMIX_OK) return s;
  im->offsets[kept] = (int64_t)used;
  ds->n = kept;
  if (kept == 0) return UNMIX_FAIL(UNMIX_ERR_FORMAT, "imagefolder %s: no readable image", ds->root);
  return UNMIX_OK;
}

unmix_status unmix_imagefolder_open(const struct unmix_dataset_options *o, struct unmix_dataset *ds) {
  char dir[UNMIX_PATH_MAX];
  const char *sub = o->split == UNMIX_SPLIT_TRAIN ? "train" : "val";
  UNMIX_TRY(unmix_path_join(dir, sizeof dir, ds->root, sub));
  if (!unmix_is_dir(dir))
    return UNMIX_FAIL(UNMIX_ERR_IO, "imagefolder: %s does not exist (expected %s/{train,val}/<class>/*.JPEG)", dir,
                      ds->root);
  snprintf(ds->root, sizeof ds->root, "%s", dir);
  struct strvec classes = {0}, files = {0};
  unmix_status s = list_dir(dir, &classes, NULL);
  if (s == UNMIX_OK && classes.n == 0)
    s = UNMIX_FAIL(UNMIX_ERR_FORMAT, "imagefolder: no class folders in %s", dir);
  int32_t *labels = NULL;
  size_t nlab = 0;
  for (size_t c = 0; c < classes.n && s == UNMIX_OK; c++) {
    char cdir[UNMIX_PATH_MAX];
    s = unmix_path_join(cdir, sizeof cdir, dir, classes.v[c]);
    size_t before = files.n;
    if (s == UNMIX_OK) s = class_files(cdir, &files);
    if (s == UNMIX_OK && files.n == before)
      s = UNMIX_FAIL(UNMIX_ERR_FORMAT,
                     "imagefolder: class folder %s has no image file (extensions .jpg .jpeg .png .ppm .bmp .pgm "
                     ".tif .tiff .webp)",
                     cdir);
    labels = unmix_xrealloc(labels, sizeof(int32_t) * files.n);
    for (; nlab < files.n; nlab++) labels[nlab] = (int32_t)c;
  }
  if (s != UNMIX_OK) {
    sv_free(&classes);
    sv_free(&files);
    free(labels);
    return s;
  }
  ds->num_classes = (int)classes.n;
  ds->class_names = classes.v; /* takes the strings */
  ds->n = (int64_t)files.n;
  ds->labels = labels;
  ds->c = 3;
  if (o->subset > 0 && o->subset < ds->n) ds->n = o->subset;
  /* one string pool for the paths */
  size_t pool = 0;
  for (size_t i = 0; i < files.n; i++) pool += strlen(files.v[i]) + 1;
  ds->impl->pool = unmix_xmalloc(pool);
  ds->impl->paths = unmix_xmalloc(sizeof(char *) * files.n);
  char *p = ds->impl->pool;
  for (size_t i = 0; i < files.n; i++) {
    size_t l = strlen(files.v[i]) + 1;
    memcpy(p, files.v[i], l);
    ds->impl->paths[i] = p;
    p += l;
  }
  sv_free(&files);
  ds->impl->skip_corrupt = o->skip_corrupt;
  ds->impl->dct_scale = o->dct_scale;

  bool memory = o->cache == UNMIX_CACHE_MEMORY;
  if (o->cache == UNMIX_CACHE_AUTO && ds->n <= AUTO_MEMORY_MAX_FILES) {
    int64_t bytes = 0;
    for (int64_t i = 0; i < ds->n; i++) {
      struct stat st;
      if (stat(ds->impl->paths[i], &st) == 0) bytes += st.st_size;
    }
    memory = bytes <= AUTO_MEMORY_MAX_BYTES;
  }
  if (memory) return decode_all(ds, o->skip_corrupt);
  ds->streaming = true;
  return UNMIX_OK;
}
