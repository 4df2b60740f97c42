/* MD5 (RFC 1321), used only to verify downloaded dataset archives against their published
 * checksums (`unmix data fetch`); not for anything security related. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/util/error.h"

struct unmix_md5 {
  uint32_t a, b, c, d;
  uint64_t len;
  uint8_t buf[64];
};
void unmix_md5_init(struct unmix_md5 *m);
void unmix_md5_update(struct unmix_md5 *m, const void *data, size_t n);
/* Writes the 32-character lowercase hex digest and a NUL into hex. */
void unmix_md5_final(struct unmix_md5 *m, char hex[33]);
/* MD5 of a whole file. */
unmix_status unmix_md5_file(const char *path, char hex[33]);
