/* JPEG decoding and encoding with libjpeg-turbo. Decoding reproduces Pillow's
 * `Image.open(f).convert("RGB")` (ISLOW IDCT, fancy upsampling; grey replicated; CMYK
 * read with Adobe polarity and converted with Pillow's cmyk2rgb) and, with a scale
 * denominator > 1, Pillow's draft mode (libjpeg DCT scaling 1/2, 1/4, 1/8). Corrupt or
 * truncated data is an error (Pillow raises "image file is truncated"), never a crash. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/util/error.h"

/* Largest image we decode (pixels); bigger ones are reported as errors, not allocated. */
#define UNMIX_JPEG_MAX_PIXELS ((int64_t)1 << 28)

/* Size of a JPEG from its header; `what` names the file in errors. */
unmix_status unmix_jpeg_size(const uint8_t *buf, size_t len, const char *what, int *h, int *w);
/* Decodes to RGB (h, w, 3) into *pix (grown as needed, *cap bytes). denom in {1, 2, 4, 8}. */
unmix_status unmix_jpeg_decode(const uint8_t *buf, size_t len, const char *what, int denom, uint8_t **pix,
                               size_t *cap, int *h, int *w);
/* Encodes (h, w, c) uint8, c = 1 or 3, at `quality` (4:2:0 for colour) into a malloc'd buffer. */
unmix_status unmix_jpeg_encode(const uint8_t *img, int h, int w, int c, int quality, uint8_t **out, size_t *len);
