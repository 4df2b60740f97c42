/* Datasets: images as uint8 HWC (c = 1 or 3) with int32 labels, in memory or streamed.
 *
 *   cifar10        <root>/cifar-10-batches-bin/{data_batch_1..5,test_batch}.bin (or the .bin
 *                  files directly in <root>): records of 1 label byte + 3072 bytes CHW 32x32
 *   cifar100       <root>/cifar-100-binary/{train,test}.bin (or directly in <root>): coarse
 *                  label byte, fine label byte, 3072 bytes; labels = fine, coarse_labels = coarse
 *   fashion-mnist  <root>/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]: IDX, 28x28 grey;
 *                  options: channels 3 (grey replicated) and pad_to (zero padding, centred)
 *   imagefolder    <root>/{train,val}/<class>/[sub/]*.JPEG (torchvision.datasets.ImageFolder order:
 *                  classes = sorted folder names, files sorted within each folder, sub-folders
 *                  walked in sorted path order); decoded with libjpeg-turbo exactly as Pillow
 *                  decodes (RGB; grey and CMYK converted as Image.convert("RGB")).
 * Default roots: $UNMIX_DATA_DIR/<name> when UNMIX_DATA_DIR is set, else data/cifar10,
 * data/cifar100, /usr/share/datasets/fashion-mnist, data/imagenet (relative to the working
 * directory). Every error names the file and, where it applies, the record or sample index. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/data/options.h"
#include "core/util/error.h"

enum unmix_split { UNMIX_SPLIT_TRAIN = 0, UNMIX_SPLIT_TEST };  /* ImageFolder: train/ and val/ */

enum unmix_cache_mode {
  UNMIX_CACHE_AUTO = 0,  /* ImageFolder: decode into memory when <= 20000 files and <= 64 MiB of JPEG */
  UNMIX_CACHE_MEMORY,    /* decode every image at open */
  UNMIX_CACHE_STREAM     /* read and decode each sample when it is loaded (ImageNet size) */
};

struct unmix_dataset_options {
  const char *name;            /* cifar10 | cifar100 | fashion-mnist | imagefolder */
  const char *root;            /* NULL or "" = the default root */
  enum unmix_split split;
  int64_t subset;              /* keep the first N samples (0 = all) */
  int channels;                /* fashion-mnist: 1 or 3 (0 = 1) */
  int pad_to;                  /* fashion-mnist: zero-pad to pad_to x pad_to (0 = keep 28) */
  bool skip_corrupt;           /* ImageFolder: skip and count unreadable images instead of failing */
  enum unmix_cache_mode cache;
  bool dct_scale;              /* ImageFolder streaming: decode at 1/2, 1/4, 1/8 when every view
                                  still downsamples (like PIL's Image.draft); not bit-exact vs the
                                  reference, which decodes at full size. Off by default. */
};

/* Options from a manifest's data section (dataset, root, subset/test_subset, channels, pad_to,
 * skip_corrupt) for one split. */
void unmix_dataset_options_from_config(const struct unmix_data_config *cfg, enum unmix_split split,
                                       struct unmix_dataset_options *o);

struct unmix_dataset_impl;
struct unmix_dataset {
  char name[32];
  char root[UNMIX_PATH_MAX];   /* the directory actually read */
  enum unmix_split split;
  int64_t n;                   /* samples */
  int num_classes;
  int32_t *labels;             /* n */
  int32_t *coarse_labels;      /* cifar100: n coarse labels (20 classes); NULL otherwise */
  int num_coarse_classes;
  char **class_names;          /* num_classes names (ImageFolder folders, CIFAR/FMNIST names) */
  int c;                       /* channels of every image: 1 or 3 */
  int h, w;                    /* every image's size, or 0 when sizes vary (ImageFolder) */
  bool streaming;              /* samples are read from disk when loaded */
  int64_t n_skipped;           /* ImageFolder: corrupt images skipped at open (skip_corrupt) */
  struct unmix_dataset_impl *impl;
};

unmix_status unmix_dataset_open(const struct unmix_dataset_options *o, struct unmix_dataset **out);
void unmix_dataset_free(struct unmix_dataset *ds);
/* The default root of a dataset name (see above) into buf. */
const char *unmix_dataset_default_root(const char *name, char *buf, size_t len);
/* The file a sample comes from (ImageFolder) or the dataset file, for messages. */
const char *unmix_dataset_sample_path(const struct unmix_dataset *ds, int64_t i);

/* An image: HWC uint8. */
struct unmix_image {
  const uint8_t *data;
  int h, w, c;
  int full_h, full_w;          /* size before DCT scaling (= h, w unless scaled) */
  int64_t index;               /* the sample actually loaded (differs from the one asked for only
                                  when a streamed, unreadable sample was replaced: skip_corrupt) */
};

/* Per-thread buffers for loading samples (file bytes, decoded pixels). Zero-initialise. */
struct unmix_sample_reader {
  uint8_t *file;
  size_t file_cap;
  uint8_t *pixels;
  size_t pixels_cap;
};
void unmix_sample_reader_free(struct unmix_sample_reader *rd);

/* Called with a sample's full size before it is decoded; returns the DCT scale denominator
 * (1, 2, 4 or 8) to decode at (only used for streamed JPEGs with dct_scale). */
typedef int (*unmix_decode_scale_fn)(void *arg, int h, int w);

/* Loads sample i into *img (pointing into the dataset for in-memory data, into rd otherwise).
 * Streamed images that cannot be read give UNMIX_ERR_IO / UNMIX_ERR_FORMAT naming the file. */
unmix_status unmix_dataset_load(const struct unmix_dataset *ds, int64_t i, struct unmix_sample_reader *rd,
                                unmix_decode_scale_fn scale_fn, void *scale_arg, struct unmix_image *img);

/* Reads and decodes sample i exactly as stored, never replacing it (for `unmix data check`). */
unmix_status unmix_dataset_check_sample(const struct unmix_dataset *ds, int64_t i, struct unmix_sample_reader *rd);
/* Streamed samples replaced so far because their file was unreadable (skip_corrupt). */
int64_t unmix_dataset_stream_skipped(const struct unmix_dataset *ds);
/* Samples per class (num_classes entries) into counts. */
void unmix_dataset_class_counts(const struct unmix_dataset *ds, int64_t *counts);
