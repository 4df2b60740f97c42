/* Recognises files that are not safetensors from their first bytes (PyTorch zip/pickle, NumPy,
 * HDF5, ...) so a reader can say what the file is and what to do instead of misreading it. */
#ifndef UNMIX_IO_SNIFF_H
#define UNMIX_IO_SNIFF_H

#include <stddef.h>

#include "core/util/error.h"

/* What the first bytes `head` (n of them, n >= 8 for a verdict) look like: a short description
 * ("a PyTorch checkpoint (torch.save zip archive)", ...) or NULL when nothing is recognised. */
const char *unmix_sniff_describe(const unsigned char *head, size_t n);

/* UNMIX_OK when head can start a safetensors file; otherwise an UNMIX_ERR_FORMAT error naming
 * `path`, what the file is, and how to convert it (tools/pth2safetensors.py). */
unmix_status unmix_sniff_expect_safetensors(const char *path, const unsigned char *head, size_t n);

#endif
