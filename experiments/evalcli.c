/* Shared option handling and output helpers of the evaluation commands (see evalcli.h). */
#include "experiments/evalcli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/io/atomic.h"

void unmix_evalcli_init(struct unmix_evalcli *c, const char *cmd) {
  memset(c, 0, sizeof *c);
  c->cmd = cmd;
  c->workers = -1;
}

int unmix_evalcli_int(const char *cmd, const char *flag, const char *s, long long lo, long long hi, long long *out) {
  char *end = NULL;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || !end || end == s || *end || v < lo || v > hi) {
    fprintf(stderr, "unmix %s: %s must be an integer in %lld..%lld, got '%s'\n", cmd, flag, lo, hi, s);
    return 0;
  }
  *out = v;
  return 1;
}

int unmix_evalcli_float(const char *cmd, const char *flag, const char *s, double lo, double hi, double *out) {
  char *end = NULL;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || !end || end == s || *end || !isfinite(v) || v < lo || v > hi) {
    fprintf(stderr, "unmix %s: %s must be a number in [%g, %g], got '%s'\n", cmd, flag, lo, hi, s);
    return 0;
  }
  *out = v;
  return 1;
}

int unmix_evalcli_int_list(const char *cmd, const char *flag, const char *s, long long lo, long long hi, int *out,
                           int cap, int *n) {
  *n = 0;
  const char *p = s;
  if (!*p) goto bad;
  for (;;) {
    char *end = NULL;
    errno = 0;
    long long v = strtoll(p, &end, 10);
    if (errno || end == p || v < lo || v > hi || *n >= cap) goto bad;
    out[(*n)++] = (int)v;
    if (*end == 0) return 1;
    if (*end != ',') goto bad;
    p = end + 1;
  }
bad:
  fprintf(stderr, "unmix %s: %s must be a comma-separated list of at most %d integers in %lld..%lld, got '%s'\n", cmd,
          flag, cap, lo, hi, s);
  return 0;
}

int unmix_evalcli_option(struct unmix_evalcli *c, int opt, const char *arg) {
  long long v;
  switch (opt) {
    case EVALCLI_BACKEND:
      if (strcmp(arg, "cpu") != 0 && strcmp(arg, "cuda") != 0) {
        fprintf(stderr, "unmix %s: --backend must be cpu or cuda, got '%s'\n", c->cmd, arg);
        return -1;
      }
      c->backend = arg;
      return 1;
    case EVALCLI_ARCH: c->open.arch = arg; return 1;
    case EVALCLI_STEM: c->open.stem = arg; return 1;
    case EVALCLI_WIDTH:
      if (!unmix_evalcli_int(c->cmd, "--width", arg, 1, 4096, &v)) return -1;
      c->open.width = (int)v;
      return 1;
    case EVALCLI_PREFIX: c->open.prefix = arg; return 1;
    case EVALCLI_DATASET: c->open.dataset = arg; return 1;
    case EVALCLI_DATA_ROOT: c->open.data_root = arg; return 1;
    case EVALCLI_BATCH:
      if (!unmix_evalcli_int(c->cmd, "--batch", arg, 1, 1 << 20, &v)) return -1;
      c->batch = (int)v;
      return 1;
    case EVALCLI_WORKERS:
      if (!unmix_evalcli_int(c->cmd, "--workers", arg, 0, 1024, &v)) return -1;
      c->workers = (int)v;
      return 1;
    default: return 0;
  }
}

void unmix_evalcli_help(FILE *f) {
  fprintf(f,
          "common options:\n"
          "  --backend cpu|cuda  where to compute (default: the run's backend when usable here, else cpu)\n"
          "  --data-root DIR     where the checkpoint's dataset lives (default: the manifest's data.root)\n"
          "  --dataset NAME      evaluate on another dataset (cifar10, cifar100, fashion-mnist, imagefolder)\n"
          "  --batch N           forward batch (default: the run's optim.batch_size)\n"
          "  --workers N         loader threads (default: the manifest's data.workers; 0 = cores)\n"
          "  a plain torchvision backbone (no unmix.manifest in the file, e.g. converted from PyTorch) needs:\n"
          "  --arch NAME         resnet18 | resnet34 | resnet50 | resnet18-bottleneck\n"
          "  --stem NAME         imagenet | cifar | swav-cifar (default: from conv1.weight's kernel)\n"
          "  --width N           base width (default: conv1.weight's output channels)\n"
          "  --prefix STR        prefix of its tensor names, e.g. module.encoder_q.\n"
          "  -h, --help          this help\n");
}

unmix_status unmix_evalcli_out_open(struct unmix_evalcli_out *o) {
  memset(o, 0, sizeof *o);
  o->f = open_memstream(&o->buf, &o->len);
  if (!o->f) return unmix_error_set(UNMIX_ERR_NOMEM, "cannot open an output buffer: %s", strerror(errno));
  return UNMIX_OK;
}

unmix_status unmix_evalcli_out_commit(struct unmix_evalcli_out *o, const char *path) {
  int bad = ferror(o->f);
  if (fclose(o->f) != 0) bad = 1;
  o->f = NULL;
  unmix_status st = UNMIX_OK;
  if (bad) {
    st = unmix_error_set(UNMIX_ERR_NOMEM, "%s: building the file in memory failed", path);
  } else {
    struct unmix_chunk ch = {o->buf, o->len};
    st = unmix_atomic_write(path, &ch, 1);
  }
  free(o->buf);
  o->buf = NULL;
  return st;
}

void unmix_evalcli_out_discard(struct unmix_evalcli_out *o) {
  if (o->f) fclose(o->f);
  free(o->buf);
  memset(o, 0, sizeof *o);
}

