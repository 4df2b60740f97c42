/* libjpeg-turbo decoding (Pillow-compatible) and encoding; errors longjmp back here and
 * become unmix_status values naming the file. */
#include "core/data/jpeg.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

struct err_mgr {
  struct jpeg_error_mgr pub;
  jmp_buf jb;
  char msg[JMSG_LENGTH_MAX];
};

static void on_error(j_common_ptr ci) {
  struct err_mgr *e = (struct err_mgr *)ci->err;
  ci->err->format_message(ci, e->msg);
  longjmp(e->jb, 1);
}

/* Warnings are ignored (as Pillow does) except a premature end of data: Pillow refuses
 * truncated files ("image file is truncated"), so do we. */
static void on_message(j_common_ptr ci, int level) {
  if (level < 0 && ci->err->msg_code == JWRN_JPEG_EOF) {
    struct err_mgr *e = (struct err_mgr *)ci->err;
    snprintf(e->msg, sizeof e->msg, "the file is truncated (premature end of JPEG data)");
    longjmp(e->jb, 1);
  }
  if (level < 0) ci->err->num_warnings++;
}

unmix_status unmix_jpeg_size(const uint8_t *buf, size_t len, const char *what, int *h, int *w) {
  struct jpeg_decompress_struct ci;
  struct err_mgr em;
  ci.err = jpeg_std_error(&em.pub);
  em.pub.error_exit = on_error;
  em.pub.emit_message = on_message;
  em.msg[0] = 0;
  if (setjmp(em.jb)) {
    jpeg_destroy_decompress(&ci);
    return UNMIX_FAIL(UNMIX_ERR_FORMAT, "%s: not a readable JPEG: %s", what, em.msg);
  }
  jpeg_create_decompress(&ci);
  jpeg_mem_src(&ci, buf, (unsigned long)len);
  jpeg_read_header(&ci, TRUE);
  *h = (int)ci.image_height;
  *w = (int)ci.image_width;
  jpeg_destroy_decompress(&ci);
  return UNMIX_OK;
}

/* Pillow's cmyk2rgb after the "CMYK;I" (Adobe, inverted) unpacker. */
static inline uint8_t muldiv255(int a, int b) {
  int t = a * b + 128;
  return (uint8_t)(((t >> 8) + t) >> 8);
}
static void cmyk_to_rgb_inplace(uint8_t *p, size_t npix) {
  for (size_t i = 0; i < npix; i++) {
    int c = 255 - p[4 * i], m = 255 - p[4 * i + 1], y = 255 - p[4 * i + 2], k = 255 - p[4 * i + 3];
    int nk = 255 - k;
    int r = nk - muldiv255(c, nk), g = nk - muldiv255(m, nk), b = nk - muldiv255(y, nk);
    p[3 * i] = (uint8_t)(r < 0 ? 0 : r);
    p[3 * i + 1] = (uint8_t)(g < 0 ? 0 : g);
    p[3 * i + 2] = (uint8_t)(b < 0 ? 0 : b);
  }
}

unmix_status unmix_jpeg_decode(const uint8_t *buf, size_t len, const char *what, int denom, uint8_t **pix,
                               size_t *cap, int *h, int *w) {
  UNMIX_REQUIRE(denom == 1 || denom == 2 || denom == 4 || denom == 8, "JPEG scale 1/%d", denom);
  struct jpeg_decompress_struct ci;
  struct err_mgr em;
  ci.err = jpeg_std_error(&em.pub);
  em.pub.error_exit = on_error;
  em.pub.emit_message = on_message;
  em.msg[0] = 0;
  if (setjmp(em.jb)) {
    jpeg_destroy_decompress(&ci);
    return UNMIX_FAIL(UNMIX_ERR_FORMAT, "%s: not a readable JPEG: %s", what, em.msg);
  }
  jpeg_create_decompress(&ci);
  jpeg_mem_src(&ci, buf, (unsigned long)len);
  jpeg_read_header(&ci, TRUE);
  if (ci.data_precision != 8 || (ci.num_components != 1 && ci.num_components != 3 && ci.num_components != 4)) {
    int prec = ci.data_precision, comps = ci.num_components;
    jpeg_destroy_decompress(&ci);
    return UNMIX_FAIL(UNMIX_ERR_FORMAT, "%s: unsupported JPEG (%d-bit, %d components)", what, prec, comps);
  }
  if ((int64_t)ci.image_width * ci.image_height > UNMIX_JPEG_MAX_PIXELS) {
    unsigned iw = ci.image_width, ih = ci.image_height;
    jpeg_destroy_decompress(&ci);
    return UNMIX_FAIL(UNMIX_ERR_FORMAT, "%s: %ux%u pixels is larger than the %lld-pixel limit", what, iw, ih,
                      (long long)UNMIX_JPEG_MAX_PIXELS);
  }
  const int cmyk = ci.jpeg_color_space == JCS_CMYK || ci.jpeg_color_space == JCS_YCCK;
  ci.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
  if (denom > 1) {
    ci.scale_num = 1;
    ci.scale_denom = (unsigned)denom;
  }
  jpeg_start_decompress(&ci);
  const size_t ow = ci.output_width, oh = ci.output_height, stride = ow * (size_t)ci.output_components;
  size_t need = stride * oh + 1;
  if (need > *cap) {
    /* *pix and *cap belong to the caller, so they stay valid across a longjmp */
    free(*pix);
    *pix = malloc(need);
    *cap = *pix ? need : 0;
    if (!*pix) {
      jpeg_destroy_decompress(&ci);
      return UNMIX_FAIL(UNMIX_ERR_NOMEM, "%s: cannot allocate %zu bytes to decode it", what, need);
    }
  }
  while (ci.output_scanline < ci.output_height) {
    JSAMPROW row = *pix + (size_t)ci.output_scanline * stride;
    jpeg_read_scanlines(&ci, &row, 1);
  }
  jpeg_finish_decompress(&ci);
  jpeg_destroy_decompress(&ci);
  if (cmyk) cmyk_to_rgb_inplace(*pix, ow * oh);
  *h = (int)oh;
  *w = (int)ow;
  return UNMIX_OK;
}

struct enc_state {
  unsigned char *buf;
  unsigned long len;
};

static unmix_status encode_inner(const uint8_t *img, int h, int w, int c, int quality, struct enc_state *st) {
  struct jpeg_compress_struct ci;
  struct err_mgr em;
  ci.err = jpeg_std_error(&em.pub);
  em.pub.error_exit = on_error;
  em.msg[0] = 0;
  if (setjmp(em.jb)) {
    jpeg_destroy_compress(&ci);
    return UNMIX_FAIL(UNMIX_ERR_FORMAT, "JPEG encoding failed: %s", em.msg);
  }
  jpeg_create_compress(&ci);
  jpeg_mem_dest(&ci, &st->buf, &st->len);
  ci.image_width = (JDIMENSION)w;
  ci.image_height = (JDIMENSION)h;
  ci.input_components = c;
  ci.in_color_space = c == 3 ? JCS_RGB : JCS_GRAYSCALE;
  jpeg_set_defaults(&ci);
  jpeg_set_quality(&ci, quality, TRUE);
  jpeg_start_compress(&ci, TRUE);
  while (ci.next_scanline < ci.image_height) {
    JSAMPROW row = (JSAMPROW)(img + (size_t)ci.next_scanline * w * c);
    jpeg_write_scanlines(&ci, &row, 1);
  }
  jpeg_finish_compress(&ci);
  jpeg_destroy_compress(&ci);
  return UNMIX_OK;
}

unmix_status unmix_jpeg_encode(const uint8_t *img, int h, int w, int c, int quality, uint8_t **out, size_t *len) {
  UNMIX_REQUIRE(c == 1 || c == 3, "JPEG encode of %d channels", c);
  struct enc_state st = {NULL, 0};
  unmix_status s = encode_inner(img, h, w, c, quality, &st);
  if (s != UNMIX_OK) {
    free(st.buf);
    return s;
  }
  *out = st.buf;
  *len = st.len;
  return UNMIX_OK;
}
