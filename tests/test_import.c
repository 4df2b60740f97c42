/* Getting models and data in: a PyTorch file given where safetensors is expected is named as
 * such with the conversion to run; tools/pth2safetensors.py converts the official MoCo-CIFAR,
 * MoCo-ImageNet, SwAV and torchvision layouts (checked where torch is installed: UNMIX_PYTHON,
 * default python3; skipped by name otherwise); torchvision's CIFAR pickles are imported. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/io/checkpoint.h"
#include "core/io/sniff.h"
#include "tests/support/testutil.h"

static char *g_dir;

#define unmix(out, ...) unmix_test_unmix(g_dir, (out), __VA_ARGS__)
#define run_expect(rc, want, args) unmix_test_run_expect(g_dir, (rc), (want), (args))

static void setup(void) { g_dir = unmix_test_tmpdir("import"); }

static void teardown(void) {
  unmix_test_rmdir(g_dir);
  free(g_dir);
}

/* ---- PyTorch files where safetensors is expected ------------------------------------------ */

START_TEST(pth_files_are_named) {
  /* torch.save's zip archive and the legacy pickle, each 64 bytes: before the sniffer, both
   * gave "header length 578712552184433488 exceeds the file size" */
  unsigned char zip[64] = "PK\x03\x04\x14\x00\x00\x00\x00\x00archive/data.pkl", pkl[64] = "\x80\x02\x8a\x0a\x6c\xfc";
  unmix_test_write(unmix_test_path(g_dir, "zip.pth"), zip, sizeof zip);
  unmix_test_write(unmix_test_path(g_dir, "old.pth.tar"), pkl, sizeof pkl);
  char *o = run_expect(1, "zip.pth is a zip archive", "knn zip.pth");
  unmix_test_expect(o, "tools/pth2safetensors.py zip.pth");
  free(o);
  o = run_expect(1, "old.pth.tar is a Python pickle", "lincls old.pth.tar");
  unmix_test_expect(o, "tools/pth2safetensors.py old.pth.tar");
  free(o);
  free(run_expect(1, "zip.pth is a zip archive", "hist zip.pth"));
  /* a NumPy array is named too; an ordinary truncated safetensors file keeps its message */
  unsigned char npy[64] = "\x93NUMPY\x01\x00";
  unmix_test_write(unmix_test_path(g_dir, "a.npy"), npy, sizeof npy);
  free(run_expect(1, "a.npy is a NumPy .npy array", "knn a.npy"));
  unsigned char st[16] = {200, 0, 0, 0, 0, 0, 0, 0, '{'};
  unmix_test_write(unmix_test_path(g_dir, "cut.safetensors"), st, sizeof st);
  free(run_expect(1, "header length 200 exceeds the file size", "knn cut.safetensors"));
  /* the sniffer alone */
  ck_assert_ptr_null(unmix_sniff_describe(st, sizeof st));
  ck_assert_int_eq(unmix_sniff_expect_safetensors("x", st, sizeof st), UNMIX_OK);
}
END_TEST

/* ---- tools/pth2safetensors.py ---------------------------------------------------------------- */

static const char *python(void) {
  const char *p = getenv("UNMIX_PYTHON");
  return p && *p ? p : "python3";
}

static bool have_torch(void) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "'%s' -c 'import torch, torchvision' >/dev/null 2>&1", python());
  return unmix_test_sh(cmd, NULL) == 0;
}

START_TEST(pth2safetensors_layouts) {
  if (!have_torch()) {
    printf("SKIPPED (no torch+torchvision for %s; set UNMIX_PYTHON): pth2safetensors_layouts\n", python());
    return;
  }
  char gen[1024], tool[1024], cmd[4096];
  unmix_test_src_path("tests/torch/make_ckpts.py", gen, sizeof gen);
  unmix_test_src_path("tools/pth2safetensors.py", tool, sizeof tool);
  char *o = NULL;
  snprintf(cmd, sizeof cmd, "cd '%s' && '%s' '%s' pth 2>&1", g_dir, python(), gen);
  ck_assert_msg(unmix_test_sh(cmd, &o) == 0, "make_ckpts.py failed:\n%s", unmix_test_tail(o));
  free(o);
  char path[1200];
  snprintf(path, sizeof path, "%s/pth/expect.json", g_dir);
  json_error_t je;
  json_t *expect_all = json_load_file(path, 0, &je);
  ck_assert_msg(expect_all != NULL, "%s: %s", path, je.text);
  free(run_expect(0, NULL, "data synth cifar10 data --n 32 --n-test 16 --classes 4 --seed 2"));
  static const struct {
    const char *name, *layout, *arch, *stem;
  } cases[] = {{"moco_cifar", "moco-cifar", "resnet18", "cifar"},
               {"moco_imagenet", "moco", "resnet18", "imagenet"},
               {"swav", "swav", "resnet18-bottleneck", "swav-cifar"},
               {"torchvision", "torchvision", "resnet18", "imagenet"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' '%s' pth/%s.pth %s.safetensors 2>&1", g_dir, python(), tool,
             cases[i].name, cases[i].name);
    ck_assert_msg(unmix_test_sh(cmd, &o) == 0, "%s failed:\n%s", cmd, unmix_test_tail(o));
    char want[256];
    snprintf(want, sizeof want, "%s layout -> ", cases[i].layout);
    unmix_test_expect(o, want);
    free(o);
    snprintf(path, sizeof path, "%s/%s.safetensors", g_dir, cases[i].name);
    struct unmix_ckpt *ck = NULL;
    ck_assert_msg(unmix_ckpt_load(path, &ck) == UNMIX_OK, "%s", unmix_error_message());
    ck_assert_str_eq(unmix_ckpt_meta(ck, "unmix.arch"), cases[i].arch);
    ck_assert_str_eq(unmix_ckpt_meta(ck, "unmix.stem"), cases[i].stem);
    /* backbone only: no key encoder, queue, heads */
    for (size_t t = 0; t < ck->n; t++) {
      const char *n = ck->tensors[t].name;
      ck_assert_msg(strncmp(n, "fc.", 3) && !strstr(n, "encoder") && !strstr(n, "queue") && !strstr(n, "proto") &&
                        !strstr(n, "projection"),
                    "%s: %s holds '%s'", cases[i].name, path, n);
    }
    /* the values are the original ones, under our names */
    json_t *ex = json_object_get(expect_all, cases[i].name);
    const char *tn;
    json_t *tv;
    json_object_foreach(ex, tn, tv) {
      const struct unmix_ckpt_tensor *t = unmix_ckpt_find(ck, tn);
      ck_assert_msg(t != NULL && t->dtype == UNMIX_CKPT_F32, "%s: no F32 tensor %s", cases[i].name, tn);
      double s = 0;
      for (size_t k = 0; k < t->numel; k++) s += ((const float *)t->data)[k];
      double want_s = json_real_value(tv);
      ck_assert_msg(fabs(s - want_s) <= 1e-4 * (1 + fabs(want_s)), "%s: %s sums to %.9g, PyTorch %.9g",
                    cases[i].name, tn, s, want_s);
    }
    unmix_ckpt_free(ck);
  }
  json_decref(expect_all);
  /* the converted files evaluate without --arch (their manifest travels in the file) */
  o = run_expect(0, "kNN moco_cifar", "knn moco_cifar.safetensors --data-root data --k 5");
  free(o);
  o = run_expect(0, "kNN swav", "knn swav.safetensors --data-root data --k 5");
  free(o);
}
END_TEST


/* ---- torchvision's CIFAR python release ------------------------------------------------------ */

/* A growing byte buffer for writing pickles as Python 2's cPickle wrote torchvision's files. */
struct pbuf {
  unsigned char *b;
  size_t n, cap;
  unsigned memo;
};

static void put(struct pbuf *p, const void *d, size_t n) {
  if (p->n + n > p->cap) {
    p->cap = (p->n + n) * 2 + 64;
    p->b = realloc(p->b, p->cap);
  }
  memcpy(p->b + p->n, d, n);
  p->n += n;
}
#define op(p, lit) put((p), (lit), sizeof(lit) - 1) /* literals may hold NUL bytes */
static void byte(struct pbuf *p, unsigned v) {
  unsigned char c = (unsigned char)v;
  put(p, &c, 1);
}
static void u32(struct pbuf *p, uint32_t v) {
  for (int i = 0; i < 4; i++) byte(p, (v >> (8 * i)) & 0xff);
}
static void memo(struct pbuf *p) { /* BINPUT / LONG_BINPUT, as cPickle memoises */
  unsigned i = ++p->memo;
  if (i < 256) {
    byte(p, 'q');
    byte(p, i);
  } else {
    byte(p, 'r');
    u32(p, i);
  }
}
static void pstr(struct pbuf *p, const void *s, size_t n) { /* a Python 2 str */
  if (n < 256) {
    byte(p, 'U');
    byte(p, (unsigned)n);
  } else {
    byte(p, 'T');
    u32(p, (uint32_t)n);
  }
  put(p, s, n);
}
static void pint(struct pbuf *p, long v) {
  if (v >= 0 && v < 256) {
    byte(p, 'K');
    byte(p, (unsigned)v);
  } else if (v >= 0 && v < 65536) {
    byte(p, 'M');
    byte(p, v & 0xff);
    byte(p, (unsigned)v >> 8);
  } else {
    byte(p, 'J');
    u32(p, (uint32_t)v);
  }
}
static void key(struct pbuf *p, const char *k) {
  pstr(p, k, strlen(k));
  memo(p);
}
static void int_list(struct pbuf *p, const uint8_t *v, int n) { /* APPENDS in batches of 1000 */
  byte(p, ']');
  memo(p);
  for (int i = 0; i < n; i += 1000) {
    byte(p, '(');
    for (int j = i; j < n && j < i + 1000; j++) pint(p, v[j]);
    byte(p, 'e');
  }
}

/* Pixel and label values of image i of a batch (deterministic, distinct per batch). */
static uint8_t px(int batch, int i, int k) { return (uint8_t)(batch * 31 + i * 7 + k * 13 + (k >> 5)); }
static uint8_t lab(int batch, int i, int nclass) { return (uint8_t)((batch * 3 + i * 5) % nclass); }
static uint8_t coarse_of(uint8_t fine) { return (uint8_t)(fine / 5); }

/* One batch file: {data, labels|fine_labels+coarse_labels, batch_label, filenames}. */
static void write_batch(const char *path, int batch, int n, bool c100) {
  struct pbuf p = {0};
  uint8_t *labels = malloc((size_t)n), *coarse = malloc((size_t)n), *data = malloc((size_t)n * 3072);
  for (int i = 0; i < n; i++) {
    labels[i] = lab(batch, i, c100 ? 100 : 10);
    coarse[i] = coarse_of(labels[i]);
    for (int k = 0; k < 3072; k++) data[(size_t)i * 3072 + k] = px(batch, i, k);
  }
  op(&p, "\x80\x02}");
  memo(&p);
  byte(&p, '(');
  key(&p, "data");
  op(&p, "cnumpy.core.multiarray\n_reconstruct\n");
  memo(&p);
  op(&p, "cnumpy\nndarray\n");
  memo(&p);
  op(&p, "K\x00\x85");
  pstr(&p, "b", 1);
  op(&p, "\x87R");
  memo(&p);
  op(&p, "(K\x01");
  pint(&p, n);
  pint(&p, 3072);
  op(&p, "\x86" "cnumpy\ndtype\n");
  memo(&p);
  pstr(&p, "u1", 2);
  op(&p, "K\x00K\x01\x87R");
  memo(&p);
  op(&p, "(K\x03");
  pstr(&p, "|", 1);
  op(&p, "NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89");
  pstr(&p, data, (size_t)n * 3072);
  op(&p, "tb");
  if (c100) {
    key(&p, "fine_labels");
    int_list(&p, labels, n);
    key(&p, "coarse_labels");
    int_list(&p, coarse, n);
  } else {
    key(&p, "labels");
    int_list(&p, labels, n);
  }
  key(&p, "batch_label");
  pstr(&p, "training batch 1 of 5", 21);
  memo(&p);
  key(&p, "filenames");
  byte(&p, ']');
  memo(&p);
  byte(&p, '(');
  for (int i = 0; i < n; i++) {
    char fn[64];
    snprintf(fn, sizeof fn, "img_%05d.png", i);
    pstr(&p, fn, strlen(fn));
    memo(&p); /* > 255 memo entries: LONG_BINPUT too */
  }
  op(&p, "eu.");
  FILE *f = fopen(path, "wb");
  ck_assert_msg(f != NULL, "cannot write %s", path);
  ck_assert_int_eq(fwrite(p.b, 1, p.n, f), p.n);
  fclose(f);
  free(p.b);
  free(labels);
  free(coarse);
  free(data);
}

static void write_release(const char *dir, bool c100, const int *sizes) {
  char d[1200], path[1300];
  snprintf(d, sizeof d, "%s/%s", g_dir, dir);
  char cmd[1300];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s'", d);
  ck_assert_int_eq(unmix_test_sh(cmd, NULL), 0);
  static const char *const n10[] = {"data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
                                    "test_batch"};
  static const char *const n100[] = {"train", "test"};
  for (int f = 0; f < (c100 ? 2 : 6); f++) {
    snprintf(path, sizeof path, "%s/%s", d, c100 ? n100[f] : n10[f]);
    write_batch(path, f, sizes[f], c100);
  }
}

/* The binary file must hold exactly the records of the pickled batch. */
static void check_bin(const char *rel, int batch, int n, bool c100) {
  char path[1300];
  snprintf(path, sizeof path, "%s/%s", g_dir, rel);
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "%s was not written", path);
  const size_t rec = c100 ? 3074 : 3073;
  uint8_t *r = malloc(rec);
  for (int i = 0; i < n; i++) {
    ck_assert_msg(fread(r, 1, rec, f) == rec, "%s: record %d missing", path, i);
    const uint8_t *q = r;
    if (c100) ck_assert_int_eq(*q++, coarse_of(lab(batch, i, 100)));
    ck_assert_msg(*q == lab(batch, i, c100 ? 100 : 10), "%s: record %d label %d", path, i, *q);
    q++;
    for (int k = 0; k < 3072; k++)
      if (q[k] != px(batch, i, k)) ck_abort_msg("%s: record %d pixel %d is %d, expected %d", path, i, k, q[k], px(batch, i, k));
  }
  ck_assert_msg(fread(r, 1, 1, f) == 0, "%s: more than %d records", path, n);
  free(r);
  fclose(f);
}

START_TEST(cifar10_python_release_imports) {
  static const int sizes[6] = {300, 7, 8, 9, 10, 12};
  write_release("tv/cifar-10-batches-py", false, sizes);
  /* training on the torchvision directory says what to run */
  char *o = run_expect(1, "unmix data import cifar10 tv", "data check cifar10 tv");
  unmix_test_expect(o, "python release");
  free(o);
  o = run_expect(0, "imported cifar10: 334 train + 12 test images", "data import cifar10 tv --root out/c10");
  free(o);
  static const char *const bins[6] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                      "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
  for (int f = 0; f < 6; f++) {
    char rel[128];
    snprintf(rel, sizeof rel, "out/c10/cifar-10-batches-bin/%s", bins[f]);
    check_bin(rel, f, sizes[f], false);
  }
  free(run_expect(0, NULL, "data check cifar10 out/c10"));
  /* the fixture is what torchvision reads: pickle.load(f, encoding='latin1') + numpy */
  char cmd[2000];
  snprintf(cmd, sizeof cmd, "'%s' -c 'import numpy' >/dev/null 2>&1", python());
  if (unmix_test_sh(cmd, NULL) != 0) {
    printf("SKIPPED (no numpy for %s): the fixture check with Python's pickle\n", python());
    return;
  }
  snprintf(cmd, sizeof cmd,
           "cd '%s' && '%s' -c \"import pickle,sys; d=pickle.load(open('tv/cifar-10-batches-py/data_batch_1','rb'),"
           "encoding='latin1'); a=d['data']; print(a.dtype, a.shape, int(a.sum()), sum(d['labels']), "
           "d['batch_label'], d['filenames'][299])\"",
           g_dir, python());
  ck_assert_msg(unmix_test_sh(cmd, &o) == 0, "%s", o);
  long sum = 0, lsum = 0;
  for (int i = 0; i < 300; i++) {
    lsum += lab(0, i, 10);
    for (int k = 0; k < 3072; k++) sum += px(0, i, k);
  }
  char want[256];
  snprintf(want, sizeof want, "uint8 (300, 3072) %ld %ld training batch 1 of 5 img_00299.png", sum, lsum);
  unmix_test_expect(o, want);
  free(o);
}
END_TEST

START_TEST(cifar100_python_release_imports) {
  static const int sizes[2] = {260, 30};
  write_release("cifar-100-python", true, sizes);
  free(run_expect(0, "imported cifar100: 260 train + 30 test images", "data import cifar100 cifar-100-python"));
  check_bin("cifar-100-python/cifar-100-binary/train.bin", 0, 260, true);
  check_bin("cifar-100-python/cifar-100-binary/test.bin", 1, 30, true);
}
END_TEST

START_TEST(cifar_pickle_errors) {
  static const int sizes[6] = {5, 5, 5, 5, 5, 5};
  write_release("a/cifar-10-batches-py", false, sizes);
  char path[1300], cmd[2800];
  snprintf(path, sizeof path, "%s/a/cifar-10-batches-py/data_batch_3", g_dir);
  snprintf(cmd, sizeof cmd, "truncate -s 2000 '%s'", path);
  ck_assert_int_eq(unmix_test_sh(cmd, NULL), 0);
  char *o = run_expect(1, "data_batch_3: at byte", "data import cifar10 a");
  unmix_test_expect(o, "truncated");
  free(o);
  snprintf(path, sizeof path, "%s/a/cifar-10-batches-py/data_batch_3", g_dir);
  unmix_test_write(path, "not a pickle at all", 19);
  free(run_expect(1, "data_batch_3: not a pickle file", "data import cifar10 a"));
  /* a CIFAR-10 file imported as CIFAR-100 has no fine labels */
  snprintf(cmd, sizeof cmd, "mkdir -p '%s/b/cifar-100-python' && cp '%s/a/cifar-10-batches-py/test_batch' "
           "'%s/b/cifar-100-python/train' && cp '%s/a/cifar-10-batches-py/test_batch' '%s/b/cifar-100-python/test'",
           g_dir, g_dir, g_dir, g_dir, g_dir);
  ck_assert_int_eq(unmix_test_sh(cmd, NULL), 0);
  free(run_expect(1, "no 'fine_labels' list (is it a CIFAR-100 file?)", "data import cifar100 b"));
  free(run_expect(1, "no CIFAR-10 python release here", "data import cifar10 nowhere"));
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("import");
  TCase *t = tcase_create("import");
  tcase_set_timeout(t, 600);
  tcase_add_checked_fixture(t, setup, teardown);
  tcase_add_test(t, pth_files_are_named);
  tcase_add_test(t, pth2safetensors_layouts);
  tcase_add_test(t, cifar10_python_release_imports);
  tcase_add_test(t, cifar100_python_release_imports);
  tcase_add_test(t, cifar_pickle_errors);
  suite_add_tcase(s, t);
  return s;
}

UNMIX_TEST_MAIN(suite)
