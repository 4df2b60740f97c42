/* TensorBoard scalar event files, written without TensorFlow or protobuf: a TFRecord stream
 * (u64 length | u32 masked CRC-32C of the length | data | u32 masked CRC-32C of the data, all
 * little-endian) of `Event` protobufs: the first holds file_version "brain.Event:2", each other
 * one wall_time, step and a Summary of {tag, simple_value} values. `tensorboard --logdir DIR`
 * reads any file whose name contains "tfevents". A decoder for the same subset lets tests (and
 * users without TensorBoard) read them back. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/util/error.h"

/* CRC-32C (Castagnoli), and the TFRecord mask applied to it: ((c >> 15) | (c << 17)) + 0xa282ead8. */
uint32_t unmix_crc32c(const void *data, size_t n);
uint32_t unmix_tfrecord_mask(uint32_t crc);

struct unmix_tfevents;

/* Creates (replacing) `path` with the file_version event. UNMIX_ERR_IO names the path. */
unmix_status unmix_tfevents_create(const char *path, double wall_time, struct unmix_tfevents **out);
/* One event at `step` holding n scalars (tags[i] = values[i]); written and flushed at once. */
unmix_status unmix_tfevents_scalars(struct unmix_tfevents *w, double wall_time, int64_t step, const char *const *tags,
                                    const float *values, int n);
/* Flushes and closes (NULL is a no-op); returns the first write error. */
unmix_status unmix_tfevents_close(struct unmix_tfevents *w);

/* Reads `path` back: calls fn once per file_version event (tag NULL, version set) and once per
 * scalar value (version NULL); *n_events = the records read. UNMIX_ERR_FORMAT naming the file
 * and byte offset for a truncated record, a CRC mismatch or a malformed protobuf; fields other than ours are skipped (a file written by
 * TensorFlow's writer reads too, its non-scalar values ignored). */
typedef void (*unmix_tfevents_fn)(void *ctx, double wall_time, int64_t step, const char *tag, float value,
                                  const char *version);
unmix_status unmix_tfevents_read(const char *path, unmix_tfevents_fn fn, void *ctx, int64_t *n_events);
