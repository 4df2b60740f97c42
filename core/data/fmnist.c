/* Fashion-MNIST (IDX, gzipped or not, read through zlib) -> in-memory uint8, optionally
 * replicated to 3 channels and zero-padded (centred) so CIFAR recipes run unchanged. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/data/dataset_impl.h"

static const char *const FMNIST_NAMES[] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                           "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

/* Finds <root>/<base>.gz or <root>/<base>. */
static unmix_status find_idx(const char *root, const char *base, char *path, size_t len) {
  char name[256];
  snprintf(name, sizeof name, "%s.gz", base);
  UNMIX_TRY(unmix_path_join(path, len, root, name));
  if (unmix_is_file(path)) return UNMIX_OK;
  UNMIX_TRY(unmix_path_join(path, len, root, base));
  if (unmix_is_file(path)) return UNMIX_OK;
  return UNMIX_FAIL(UNMIX_ERR_IO, "%s/%s.gz: missing (Fashion-MNIST IDX files expected in %s)", root, base, root);
}

/* Reads n bytes into buf; the message counts from `before` bytes already read of `whole`. */
static unmix_status gz_read_at(gzFile g, const char *path, void *buf, size_t n, const char *what, size_t before,
                               size_t whole) {
  size_t done = 0;
  while (done < n) {
    unsigned chunk = n - done > (1u << 30) ? (1u << 30) : (unsigned)(n - done);
    int r = gzread(g, (uint8_t *)buf + done, chunk);
    if (r <= 0) {
      int err;
      const char *msg = gzerror(g, &err);
      return UNMIX_FAIL(UNMIX_ERR_FORMAT, "%s: truncated while reading %s (%zu of %zu bytes%s%s)", path, what,
                        before + done, whole,
                        err != Z_OK ? ": " : "", err != Z_OK ? msg : "");
    }
    done += (size_t)r;
  }
  return UNMIX_OK;
}

static unmix_status gz_read_exact(gzFile g, const char *path, void *buf, size_t n, const char *what) {
  return gz_read_at(g, path, buf, n, what, 0, n);
}

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

/* Reads an IDX file with `ndims` dimensions of unsigned bytes; *data gets prod(dims) bytes. */
static unmix_status read_idx(const char *path, int ndims, uint32_t *dims, uint8_t **data) {
  *data = NULL;
  gzFile g = gzopen(path, "rb");
  if (!g) return UNMIX_FAIL(UNMIX_ERR_IO, "%s: cannot open", path);
  uint8_t hdr[16];
  unmix_status s = gz_read_exact(g, path, hdr, 4 + 4 * (size_t)ndims, "the IDX header");
  if (s != UNMIX_OK) goto done;
  uint32_t magic = be32(hdr);
  if (magic != (0x0800u | (uint32_t)ndims)) {
    s = UNMIX_FAIL(UNMIX_ERR_FORMAT, "%s: bad IDX magic number 0x%08x (want 0x%08x: unsigned bytes, %d dimensions)", path,
                   magic, 0x0800u | (uint32_t)ndims, ndims);
    goto done;
  }
  size_t total = 1;
  for (int d = 0; d < ndims; d++) {
    dims[d] = be32(hdr + 4 + 4 * d);
    if (dims[d] == 0 || dims[d] > (1u << 24) || total > ((size_t)1 << 40) / dims[d]) {
      s = UNMIX_FAIL(UNMIX_ERR_FORMAT, "%s: implausible IDX dimension %d = %u", path, d, dims[d]);
      goto done;
    }
    total *= dims[d];
  }
  /* The header's size is only a claim: grow the buffer as the data arrives (doubling from
   * 1 MiB), so a small file announcing gigabytes fails as truncated instead of first
   * allocating what it announces. */
  size_t cap = total < ((size_t)1 << 20) ? total : ((size_t)1 << 20), done_bytes = 0;
  *data = malloc(cap);
  if (!*data) {
    s = UNMIX_FAIL(UNMIX_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, cap);
    goto done;
  }
  while (done_bytes < total) {
    if (done_bytes == cap) {
      size_t ncap = cap > total / 2 ? total : 2 * cap;
      uint8_t *grown = realloc(*data, ncap);
      if (!grown) {
        s = UNMIX_FAIL(UNMIX_ERR_NOMEM, "%s: cannot allocate %zu bytes for the %zu its header announces", path, ncap,
                       total);
        goto done;
      }
      *data = grown;
      cap = ncap;
    }
    s = gz_read_at(g, path, *data + done_bytes, cap - done_bytes, "the IDX data", done_bytes, total);
    if (s != UNMIX_OK) goto done;
    done_bytes = cap;
  }
  uint8_t extra;
  int more = gzread(g, &extra, 1), err;
  const char *msg = gzerror(g, &err);
  /* zlib reports a stream cut inside its 8-byte trailer (CRC-32, size) only as Z_BUF_ERROR
   * at the end, with all the data delivered: that is a truncated file too */
  if (more != 0 || err != Z_OK)
    s = err == Z_BUF_ERROR ? UNMIX_FAIL(UNMIX_ERR_FORMAT, "%s: the gzip stream is truncated (%s; its CRC cannot be "
                                        "checked): download it again", path, msg)
        : err != Z_OK      ? UNMIX_FAIL(UNMIX_ERR_FORMAT, "%s: %s", path, msg)
                           : UNMIX_FAIL(UNMIX_ERR_FORMAT, "%s: data after the %zu bytes its header announces", path, total);
done:;
  int cr = gzclose(g);
  if (s == UNMIX_OK && cr != Z_OK)
    s = UNMIX_FAIL(UNMIX_ERR_FORMAT, "%s: the gzip stream is truncated or corrupt (zlib error %d at close)", path, cr);
  if (s != UNMIX_OK) {
    free(*data);
    *data = NULL;
  }
  return s;
}

unmix_status unmix_fmnist_open(const struct unmix_dataset_options *o, struct unmix_dataset *ds) {
  const char *pre = o->split == UNMIX_SPLIT_TRAIN ? "train" : "t10k";
  int channels = o->channels ? o->channels : 1;
  if (channels != 1 && channels != 3)
    return UNMIX_FAIL(UNMIX_ERR_CONFIG, "data.channels = %d: Fashion-MNIST gives 1 or 3 (grey replicated)", o->channels);
  char ipath[UNMIX_PATH_MAX], lpath[UNMIX_PATH_MAX], base[64];
  snprintf(base, sizeof base, "%s-images-idx3-ubyte", pre);
  UNMIX_TRY(find_idx(ds->root, base, ipath, sizeof ipath));
  snprintf(base, sizeof base, "%s-labels-idx1-ubyte", pre);
  UNMIX_TRY(find_idx(ds->root, base, lpath, sizeof lpath));
  uint32_t idims[3] = {0, 0, 0}, ldims[1] = {0};
  uint8_t *img = NULL, *lab = NULL;
  UNMIX_TRY(read_idx(ipath, 3, idims, &img));
  unmix_status s = read_idx(lpath, 1, ldims, &lab);
  if (s != UNMIX_OK) goto fail;
  if (idims[0] != ldims[0]) {
    s = UNMIX_FAIL(UNMIX_ERR_FORMAT, "%s has %u images but %s has %u labels", ipath, idims[0], lpath, ldims[0]);
    goto fail;
  }
  const int rows = (int)idims[1], cols = (int)idims[2];
  int side_h = rows, side_w = cols;
  if (o->pad_to) {
    if (o->pad_to < rows || o->pad_to < cols || o->pad_to > 4096) {
      s = UNMIX_FAIL(UNMIX_ERR_CONFIG, "data.pad_to = %d: must be >= the %dx%d image size (and <= 4096)", o->pad_to,
                     rows, cols);
      goto fail;
    }
    side_h = side_w = o->pad_to;
  }
  const size_t n = idims[0], out_sz = (size_t)side_h * side_w * channels;
  ds->n = (int64_t)n;
  ds->c = channels;
  ds->h = side_h;
  ds->w = side_w;
  ds->num_classes = 10;
  ds->labels = unmix_xmalloc(sizeof(int32_t) * n);
  for (size_t i = 0; i < n; i++) {
    if (lab[i] >= 10) {
      s = UNMIX_FAIL(UNMIX_ERR_FORMAT, "%s: label %zu is %d (Fashion-MNIST labels are 0..9)", lpath, i, lab[i]);
      goto fail;
    }
    ds->labels[i] = lab[i];
  }
  ds->impl->pixels = calloc(n, out_sz);
  if (!ds->impl->pixels) {
    s = UNMIX_FAIL(UNMIX_ERR_NOMEM, "Fashion-MNIST: cannot allocate %zu bytes", n * out_sz);
    goto fail;
  }
  const int top = (side_h - rows) / 2, left = (side_w - cols) / 2;
  for (size_t i = 0; i < n; i++) {
    const uint8_t *src = img + i * rows * cols;
    uint8_t *dst = ds->impl->pixels + i * out_sz;
    for (int y = 0; y < rows; y++)
      for (int x = 0; x < cols; x++)
        for (int c = 0; c < channels; c++) dst[((size_t)(y + top) * side_w + x + left) * channels + c] = src[y * cols + x];
  }
  free(img);
  free(lab);
  unmix_dataset_set_class_names(ds, NULL, FMNIST_NAMES);
  return UNMIX_OK;
fail:
  free(img);
  free(lab);
  return s;
}
