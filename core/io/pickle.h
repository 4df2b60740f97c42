/* A minimal Python pickle writer (protocol 3) for weight files other frameworks load: a dict of
 * named numpy arrays, as detectron2's DetectionCheckpointer reads a `.pkl` (the layout of the
 * official detection/convert-pretrain-to-detectron2.py). Writing only: we never unpickle. */
#pragma once
#include <stdbool.h>

#include "core/io/checkpoint.h"
#include "core/util/error.h"

/* Writes `path` atomically: {"model": {names[i]: numpy.ndarray of ck->tensors[i]},
 * "__author__": author, "matching_heuristics": matching_heuristics}. Each array keeps its
 * tensor's shape (0-d for scalars) and dtype (little-endian float32/float64/int32/int64/uint8),
 * C order, pickled as numpy itself does (numpy.core.multiarray._reconstruct + __setstate__),
 * so pickle.load needs numpy and nothing else. UNMIX_ERR_ARG for an empty name or a tensor over
 * 4 GiB (protocol 3 has no larger byte string), UNMIX_ERR_IO naming the path. */
unmix_status unmix_pickle_write_arrays(const char *path, const struct unmix_ckpt *ck, const char *const *names,
                                       const char *author, bool matching_heuristics);
