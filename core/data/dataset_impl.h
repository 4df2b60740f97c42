/* Internals shared by the dataset readers (cifar.c, fmnist.c, imagefolder.c) and
 * dataset.c. Not part of the public API. */
#pragma once
#include <stdatomic.h>
#include <stdio.h>

#include "core/data/dataset.h"
#include "core/util/fs.h"

struct unmix_dataset_impl {
  uint8_t *pixels;             /* fixed size: n*h*w*c; variable, in memory: all images back to back */
  int64_t *offsets;            /* variable, in memory: byte offset of image i (n + 1 entries) */
  int32_t *dims;               /* variable, in memory: (h, w) of image i */
  char **paths;                /* ImageFolder: path of sample i (into pool) */
  char *pool;
  bool dct_scale;
  bool skip_corrupt;
  atomic_llong stream_skipped; /* streamed samples replaced because unreadable */
};

/* A new dataset with name/root/split set and an empty impl. */
struct unmix_dataset *unmix_dataset_alloc(const char *name, const char *root, enum unmix_split split);
/* Joins dir and name into buf; UNMIX_ERR_ARG when it does not fit. */
unmix_status unmix_path_join(char *buf, size_t len, const char *dir, const char *name);
bool unmix_is_dir(const char *path);
bool unmix_is_file(const char *path);
/* Sets class_names from a text file with one name per line, or "class_<i>" when absent. */
void unmix_dataset_set_class_names(struct unmix_dataset *ds, const char *names_file, const char *const *builtin);

unmix_status unmix_cifar_open(const struct unmix_dataset_options *o, struct unmix_dataset *ds);
unmix_status unmix_fmnist_open(const struct unmix_dataset_options *o, struct unmix_dataset *ds);
unmix_status unmix_imagefolder_open(const struct unmix_dataset_options *o, struct unmix_dataset *ds);
