/* `unmix data fetch|check|synth`: download and verify the CIFAR archives, validate a dataset
 * and print its class counts, write small synthetic datasets in the real on-disk formats. */
#include <errno.h>
#include <getopt.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/data/dataset.h"
#include "core/data/jpeg.h"
#include "core/data/md5.h"
#include "core/data/cifar_pickle.h"
#include "core/data/synth.h"
#include "experiments/commands.h"

extern char **environ;

/* ---- argument helpers ------------------------------------------------------------------- */

static int parse_i64(const char *cmd, const char *flag, const char *s, int64_t lo, int64_t hi, int64_t *out) {
  char *end = NULL;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || !end || end == s || *end || v < lo || v > hi) {
    fprintf(stderr, "unmix data %s: %s must be an integer in %lld..%lld, got '%s'\n", cmd, flag, (long long)lo,
            (long long)hi, s);
    return 0;
  }
  *out = v;
  return 1;
}

static int parse_u64(const char *cmd, const char *flag, const char *s, uint64_t *out) {
  char *end = NULL;
  errno = 0;
  if (s[0] == '-') goto bad;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || !end || end == s || *end) goto bad;
  *out = v;
  return 1;
bad:
  fprintf(stderr, "unmix data %s: %s must be a non-negative integer, got '%s'\n", cmd, flag, s);
  return 0;
}

/* Runs argv[0] (looked up in PATH) and returns its exit status, 127 if it could not start. */
static int run_program(char *const argv[]) {
  pid_t pid;
  if (posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ) != 0) return 127;
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) return 127;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* ---- fetch --------------------------------------------------------------------------------- */

struct archive {
  const char *name, *file, *url, *md5, *check_file;
};
static const struct archive g_archives[] = {
    {"cifar10", "cifar-10-binary.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
     "c32a1d4ab5d03f1284b67883e8d87530", "cifar-10-batches-bin/data_batch_1.bin"},
    {"cifar100", "cifar-100-binary.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
     "03b5dce01913d631647c71ecec9e9cb8", "cifar-100-binary/train.bin"},
};

static void fetch_usage(FILE *f) {
  fprintf(f,
          "usage: unmix data fetch cifar10|cifar100 [--root DIR] [--url URL] [--md5 HEX]\n\n"
          "Downloads the official binary archive with curl, checks its MD5, extracts it into DIR\n"
          "(default: $UNMIX_DATA_DIR/<name>, else data/<name>) and validates the result:\n"
          "  cifar10   %s  md5 %s\n  cifar100  %s  md5 %s\n"
          "An archive already in DIR is verified and used without downloading. Offline, download\n"
          "it elsewhere, copy it into DIR and rerun; or extract it so that DIR/<batches dir> exists.\n"
          "--url and --md5 point at a mirror (any URL curl accepts, file:// included).\n\n"
          "example: unmix data fetch cifar10 --root data/cifar10\n",
          g_archives[0].url, g_archives[0].md5, g_archives[1].url, g_archives[1].md5);
}

/* Opens train and test and prints a one-line summary of each. */
static int validate(const char *name, const char *root, int quiet) {
  for (int split = 0; split < 2; split++) {
    struct unmix_dataset_options o = {.name = name, .root = root, .split = (enum unmix_split)split};
    struct unmix_dataset *ds;
    if (unmix_dataset_open(&o, &ds) != UNMIX_OK) return 0;
    if (!quiet)
      printf("%s %s: %lld images of %dx%dx%d, %d classes\n", name, split ? "test" : "train", (long long)ds->n, ds->h,
             ds->w, ds->c, ds->num_classes);
    unmix_dataset_free(ds);
  }
  return 1;
}

static int cmd_fetch(int argc, char **argv) {
  const char *root = NULL, *url = NULL, *md5 = NULL;
  static const struct option opts[] = {{"root", required_argument, 0, 'r'},
                                       {"url", required_argument, 0, 'u'},
                                       {"md5", required_argument, 0, 'm'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
      case 'r': root = optarg; break;
      case 'u': url = optarg; break;
      case 'm': md5 = optarg; break;
      case 'h': fetch_usage(stdout); return 0;
      default: fetch_usage(stderr); return 2;
    }
  }
  if (optind != argc - 1) {
    fetch_usage(stderr);
    return 2;
  }
  const struct archive *a = NULL;
  for (size_t i = 0; i < sizeof g_archives / sizeof g_archives[0]; i++)
    if (!strcmp(argv[optind], g_archives[i].name)) a = &g_archives[i];
  if (!a) {
    fprintf(stderr, "unmix data fetch: unknown dataset '%s' (cifar10 or cifar100; Fashion-MNIST is installed at "
                    "/usr/share/datasets/fashion-mnist, ImageNet must be placed by hand)\n", argv[optind]);
    return 2;
  }
  if (md5 && (strlen(md5) != 32 || strspn(md5, "0123456789abcdef") != 32)) {
    fprintf(stderr, "unmix data fetch: --md5 must be 32 lowercase hex digits, got '%s'\n", md5);
    return 2;
  }
  char rootbuf[1024], archive[1200], part[1300], check[1300], got[33];
  if (!root) root = unmix_dataset_default_root(a->name, rootbuf, sizeof rootbuf);
  if (!url) url = a->url;
  if (!md5) md5 = a->md5;
  snprintf(check, sizeof check, "%s/%s", root, a->check_file);
  if (access(check, F_OK) == 0 && validate(a->name, root, 1)) {
    printf("%s is already in %s\n", a->name, root);
    validate(a->name, root, 0);
    return 0;
  }
  char *mk[] = {"mkdir", "-p", "--", (char *)root, NULL};
  if (run_program(mk) != 0) {
    fprintf(stderr, "unmix data fetch: cannot create %s\n", root);
    return 1;
  }
  snprintf(archive, sizeof archive, "%s/%s", root, a->file);
  snprintf(part, sizeof part, "%s.part", archive);
  if (access(archive, F_OK) == 0) {
    if (unmix_md5_file(archive, got) != UNMIX_OK) return unmix_cmd_fail("data fetch");
    if (strcmp(got, md5) != 0) {
      fprintf(stderr,
              "unmix data fetch: %s has md5 %s, expected %s: the file is damaged or not the official archive; "
              "delete it and rerun\n",
              archive, got, md5);
      return 1;
    }
    printf("using %s (md5 ok)\n", archive);
  } else {
    printf("downloading %s\n", url);
    fflush(stdout);
    char *curl[] = {"curl", "-fL", "--retry", "2", "--connect-timeout", "20", "-sS", "-o", part, "--url", (char *)url, NULL};
    int st = run_program(curl);
    if (st != 0) {
      unlink(part);
      fprintf(stderr,
              "unmix data fetch: could not download %s (%s). If this machine is offline, download the file "
              "elsewhere and copy it to %s (md5 %s), then rerun `unmix data fetch %s --root %s`; or extract it "
              "yourself so that %s exists.\n",
              url, st == 127 ? "curl was not found" : "curl failed", archive, md5, a->name, root, check);
      return 1;
    }
    if (unmix_md5_file(part, got) != UNMIX_OK) return unmix_cmd_fail("data fetch");
    if (strcmp(got, md5) != 0) {
      unlink(part);
      fprintf(stderr, "unmix data fetch: downloaded %s has md5 %s, expected %s (corrupt download); nothing kept\n", url,
              got, md5);
      return 1;
    }
    if (rename(part, archive) != 0) {
      fprintf(stderr, "unmix data fetch: cannot rename %s to %s: %s\n", part, archive, strerror(errno));
      return 1;
    }
  }
  char *tar[] = {"tar", "-xzf", archive, "-C", (char *)root, NULL};
  if (run_program(tar) != 0) {
    fprintf(stderr, "unmix data fetch: extracting %s into %s failed (is `tar` installed? is there space?)\n", archive, root);
    return 1;
  }
  if (!validate(a->name, root, 0)) return unmix_cmd_fail("data fetch");
  printf("%s ready in %s\n", a->name, root);
  return 0;
}

/* ---- check ---------------------------------------------------------------------------------- */

static void check_usage(FILE *f) {
  fprintf(f,
          "usage: unmix data check NAME ROOT [--split train|test|both] [--channels 1|3] [--pad-to N]\n"
          "                         [--decode] [--skip-corrupt]\n\n"
          "Opens dataset NAME (cifar10, cifar100, fashion-mnist, imagefolder) at ROOT (\"\" = default),\n"
          "validates every file and label, and prints the image count, size and samples per class.\n"
          "--decode reads and decodes every image of a streamed ImageFolder (slow on ImageNet) and\n"
          "lists the unreadable ones; --skip-corrupt counts them instead of failing.\n\n"
          "example: unmix data check cifar10 data/cifar10\n");
}

static int check_split(const char *name, const char *root, enum unmix_split split, int channels, int pad_to,
                       int decode, int skip) {
  struct unmix_dataset_options o = {.name = name, .root = root, .split = split, .channels = channels,
                                    .pad_to = pad_to, .skip_corrupt = skip != 0};
  struct unmix_dataset *ds;
  if (unmix_dataset_open(&o, &ds) != UNMIX_OK) return unmix_cmd_fail("data check");
  printf("%s %s (%s): %lld images", name, split == UNMIX_SPLIT_TRAIN ? "train" : "test", ds->root, (long long)ds->n);
  if (ds->h) printf(" of %dx%dx%d", ds->h, ds->w, ds->c);
  else printf(" of varying size, %s", ds->streaming ? "streamed from disk" : "decoded into memory");
  printf(", %d classes", ds->num_classes);
  if (ds->n_skipped) printf(", %lld unreadable images skipped", (long long)ds->n_skipped);
  printf("\n");
  int64_t *counts = unmix_xcalloc((size_t)ds->num_classes, sizeof(int64_t));
  unmix_dataset_class_counts(ds, counts);
  for (int k = 0; k < ds->num_classes; k++) printf("  %4d %-24s %lld\n", k, ds->class_names[k], (long long)counts[k]);
  free(counts);
  if (ds->coarse_labels) {
    int64_t cc[20] = {0};
    for (int64_t i = 0; i < ds->n; i++) cc[ds->coarse_labels[i]]++;
    printf("  coarse classes:");
    for (int k = 0; k < 20; k++) printf(" %lld", (long long)cc[k]);
    printf("\n");
  }
  int rc = 0;
  if (decode && ds->streaming) {
    struct unmix_sample_reader rd = {0};
    int64_t bad = 0;
    for (int64_t i = 0; i < ds->n; i++) {
      unmix_status s = unmix_dataset_check_sample(ds, i, &rd);
      if (s != UNMIX_OK) {
        bad++;
        fprintf(skip ? stdout : stderr, "  unreadable: %s\n", unmix_error_message());
      }
    }
    unmix_sample_reader_free(&rd);
    printf("  decoded %lld images, %lld unreadable\n", (long long)ds->n, (long long)bad);
    if (bad && !skip) rc = 1;
  }
  unmix_dataset_free(ds);
  return rc;
}

static int cmd_check(int argc, char **argv) {
  const char *split = "both";
  int64_t channels = 0, pad_to = 0;
  int decode = 0, skip = 0;
  static const struct option opts[] = {{"split", required_argument, 0, 's'},   {"channels", required_argument, 0, 'c'},
                                       {"pad-to", required_argument, 0, 'p'},  {"decode", no_argument, 0, 'd'},
                                       {"skip-corrupt", no_argument, 0, 'k'}, {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
      case 's': split = optarg; break;
      case 'c':
        if (!parse_i64("check", "--channels", optarg, 1, 3, &channels)) return 2;
        break;
      case 'p':
        if (!parse_i64("check", "--pad-to", optarg, 1, 4096, &pad_to)) return 2;
        break;
      case 'd': decode = 1; break;
      case 'k': skip = 1; break;
      case 'h': check_usage(stdout); return 0;
      default: check_usage(stderr); return 2;
    }
  }
  if (optind != argc - 2) {
    check_usage(stderr);
    return 2;
  }
  if (strcmp(split, "train") && strcmp(split, "test") && strcmp(split, "both")) {
    fprintf(stderr, "unmix data check: --split must be train, test or both, got '%s'\n", split);
    return 2;
  }
  const char *name = argv[optind], *root = argv[optind + 1];
  int rc = 0;
  if (strcmp(split, "test")) rc |= check_split(name, root, UNMIX_SPLIT_TRAIN, (int)channels, (int)pad_to, decode, skip);
  if (!rc && strcmp(split, "train")) rc |= check_split(name, root, UNMIX_SPLIT_TEST, (int)channels, (int)pad_to, decode, skip);
  return rc;
}

/* ---- synth ---------------------------------------------------------------------------------- */

static void synth_usage(FILE *f) {
  fprintf(f,
          "usage: unmix data synth FORMAT DIR [--n N] [--n-test N] [--classes C] [--seed S]\n\n"
          "Writes a small synthetic dataset in the exact on-disk format, readable by every unmix\n"
          "command as the real one (use DIR as data.root):\n"
          "  cifar10        DIR/cifar-10-batches-bin/{data_batch_1..5,test_batch}.bin\n"
          "  cifar100       DIR/cifar-100-binary/{train,test}.bin\n"
          "  fashion-mnist  DIR/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz\n"
          "  imagefolder    DIR/{train,val}/class_NNN/img_NNNNNN.JPEG (40..96 px, varied aspect)\n"
          "Images have class-dependent structure (oriented colour gratings and blobs), so a small\n"
          "network can learn them. Defaults: --n 2000, --n-test N/5, --classes 10 (100 for cifar100),\n"
          "--seed 0. Labels are balanced (sample i has class i mod C).\n\n"
          "example: unmix data synth cifar10 /tmp/c10 --n 512 --n-test 256\n");
}

static int cmd_synth(int argc, char **argv) {
  int64_t n = 2000, n_test = 0, classes = 0;
  uint64_t seed = 0;
  static const struct option opts[] = {{"n", required_argument, 0, 'n'},       {"n-test", required_argument, 0, 't'},
                                       {"classes", required_argument, 0, 'c'}, {"seed", required_argument, 0, 's'},
                                       {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
      case 'n':
        if (!parse_i64("synth", "--n", optarg, 1, 10000000, &n)) return 2;
        break;
      case 't':
        if (!parse_i64("synth", "--n-test", optarg, 1, 10000000, &n_test)) return 2;
        break;
      case 'c':
        if (!parse_i64("synth", "--classes", optarg, 1, 1000, &classes)) return 2;
        break;
      case 's':
        if (!parse_u64("synth", "--seed", optarg, &seed)) return 2;
        break;
      case 'h': synth_usage(stdout); return 0;
      default: synth_usage(stderr); return 2;
    }
  }
  if (optind != argc - 2) {
    synth_usage(stderr);
    return 2;
  }
  struct unmix_synth_options o = {.format = argv[optind], .dir = argv[optind + 1], .n = n, .n_test = n_test,
                                  .classes = (int)classes, .seed = seed};
  if (unmix_synth_write(&o) != UNMIX_OK) {
    int rc = unmix_cmd_fail("data synth");
    return unmix_error_code() == UNMIX_ERR_ARG ? 2 : rc;
  }
  printf("wrote synthetic %s to %s\n", o.format, o.dir);
  return 0;
}

/* ---- import: torchvision's python release -> the binary release ---------------------------- */

static void import_usage(FILE *f) {
  fprintf(f,
          "usage: unmix data import cifar10|cifar100 SRC [--root DIR]\n\n"
          "Converts torchvision's download of CIFAR (SRC/cifar-10-batches-py or SRC/cifar-100-python,\n"
          "or that directory itself: the pickled python release) into the official binary release\n"
          "that unmix reads, under DIR/cifar-10-batches-bin or DIR/cifar-100-binary (default DIR: SRC),\n"
          "then checks it like `unmix data check`. Nothing is downloaded; no Python is needed.\n\n"
          "example: unmix data import cifar10 ~/torchvision-data --root data/cifar10\n");
}

static int cmd_import(int argc, char **argv) {
  const char *root = NULL;
  static const struct option opts[] = {{"root", required_argument, 0, 'r'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  optind = 1;
  int o;
  while ((o = getopt_long(argc, argv, "r:h", opts, NULL)) != -1) {
    switch (o) {
      case 'r': root = optarg; break;
      case 'h': import_usage(stdout); return 0;
      default: import_usage(stderr); return 2;
    }
  }
  if (optind != argc - 2 || (strcmp(argv[optind], "cifar10") != 0 && strcmp(argv[optind], "cifar100") != 0)) {
    import_usage(stderr);
    return 2;
  }
  const char *name = argv[optind], *src = argv[optind + 1];
  if (!root) root = src;
  int64_t ntr = 0, nte = 0;
  if (unmix_cifar_import_python(src, root, !strcmp(name, "cifar100"), &ntr, &nte) != UNMIX_OK)
    return unmix_cmd_fail("data import");
  printf("imported %s: %lld train + %lld test images into %s\n", name, (long long)ntr, (long long)nte, root);
  return validate(name, root, 0) ? 0 : unmix_cmd_fail("data import");
}

/* ---- dispatch ------------------------------------------------------------------------------- */

static void usage(FILE *f) {
  fprintf(f,
          "usage: unmix data SUBCOMMAND ...\n\n"
          "  fetch  cifar10|cifar100 [--root DIR]   download, verify (md5) and extract the official archive\n"
          "  check  NAME ROOT                       validate a dataset and print samples per class\n"
          "  synth  FORMAT DIR [--n N] ...          write a small synthetic dataset in a real format\n"
          "  import cifar10|cifar100 SRC [--root DIR]  convert torchvision's python release (pickles)\n\n"
          "`unmix data SUBCOMMAND --help` describes each.\n"
          "example: unmix data fetch cifar10 && unmix data check cifar10 data/cifar10\n");
}

int unmix_cmd_data(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(argv[1], "fetch")) return cmd_fetch(argc - 1, argv + 1);
  if (!strcmp(argv[1], "check")) return cmd_check(argc - 1, argv + 1);
  if (!strcmp(argv[1], "synth")) return cmd_synth(argc - 1, argv + 1);
  if (!strcmp(argv[1], "import")) return cmd_import(argc - 1, argv + 1);
  fprintf(stderr, "unmix data: unknown subcommand '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}
