/* torchvision's CIFAR python release (cifar-10-batches-py / cifar-100-python): a minimal reader
 * for exactly its pickle format (a dict holding a uint8 numpy array and label lists, pickle
 * protocol 2 as written by Python 2), and the conversion to the official binary release. */
#ifndef UNMIX_DATA_CIFAR_PICKLE_H
#define UNMIX_DATA_CIFAR_PICKLE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/util/error.h"

struct unmix_cifar_batch {
  int64_t n;        /* images */
  uint8_t *pixels;  /* n x 3072: R plane, G plane, B plane of 32x32, as the binary release */
  uint8_t *labels;  /* n: CIFAR-10 label, or CIFAR-100 fine label */
  uint8_t *coarse;  /* n: CIFAR-100 coarse label; NULL for CIFAR-10 */
};

/* Reads one batch file (data_batch_1, test_batch, train, test). Errors name the file and what
 * is wrong (not a pickle, an unsupported opcode, a missing key, a label out of range, ...). */
unmix_status unmix_cifar_pickle_read(const char *path, bool c100, struct unmix_cifar_batch *out);
void unmix_cifar_batch_free(struct unmix_cifar_batch *b);

/* Converts the python release found in `src` (the cifar-10-batches-py / cifar-100-python
 * directory, or the directory holding it) into the binary release under
 * dst/cifar-10-batches-bin (or dst/cifar-100-binary); each file is written atomically.
 * *n_train / *n_test receive the image counts. */
unmix_status unmix_cifar_import_python(const char *src, const char *dst, bool c100, int64_t *n_train,
                                       int64_t *n_test);

/* The python release's directory under root (root itself or root/cifar-10-batches-py), written
 * into buf; false when there is none. */
bool unmix_cifar_find_python(const char *root, bool c100, char *buf, size_t len);

#endif
