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

static const char *tail(const char *out) {
  size_t n = strlen(out);
  return n > 1500 ? out + n - 1500 : out;
}

static void expect(const char *out, const char *want) {
  ck_assert_msg(strstr(out, want) != NULL, "output lacks '%s':\n%s", want, tail(out));
}

static char *run_expect(int rc, const char *want, const char *args) {
  char *o = NULL;
  int st = unmix(&o, "%s", args);
  ck_assert_msg(st == rc, "unmix %.300s: exit %d, expected %d:\n%s", args, st, rc, tail(o));
  if (want) expect(o, want);
  return o;
}

static void write_bytes(const char *rel, const void *data, size_t n) {
  char path[1200];
  snprintf(path, sizeof path, "%s/%s", g_dir, rel);
  FILE *f = fopen(path, "wb");
  ck_assert_msg(f != NULL, "cannot write %s", path);
  ck_assert_int_eq(fwrite(data, 1, n, f), n);
  fclose(f);
}

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
  write_bytes("zip.pth", zip, sizeof zip);
  write_bytes("old.pth.tar", pkl, sizeof pkl);
  char *o = run_expect(1, "zip.pth is a zip archive", "knn zip.pth");
  expect(o, "tools/pth2safetensors.py zip.pth");
  free(o);
  o = run_expect(1, "old.pth.tar is a Python pickle", "lincls old.pth.tar");
  expect(o, "tools/pth2safetensors.py old.pth.tar");
  free(o);
  free(run_expect(1, "zip.pth is a zip archive", "hist zip.pth"));
  /* a NumPy array is named too; an ordinary truncated safetensors file keeps its message */
  unsigned char npy[64] = "\x93NUMPY\x01\x00";
  write_bytes("a.npy", npy, sizeof npy);
  free(run_expect(1, "a.npy is a NumPy .npy array", "knn a.npy"));
  unsigned char st[16] = {200, 0, 0, 0, 0, 0, 0, 0, '{'};
  write_bytes("cut.safetensors", st, sizeof st);
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
  ck_assert_msg(unmix_test_sh(cmd, &o) == 0, "make_ckpts.py failed:\n%s", tail(o));
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
    ck_assert_msg(unmix_test_sh(cmd, &o) == 0, "%s failed:\n%s", cmd, tail(o));
    char want[256];
    snprintf(want, sizeof want, "%s layout -> ", cases[i].layout);
    expect(o, want);
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

static Suite *suite(void) {
  Suite *s = suite_create("import");
  TCase *t = tcase_create("import");
  tcase_set_timeout(t, 600);
  tcase_add_checked_fixture(t, setup, teardown);
  tcase_add_test(t, pth_files_are_named);
  tcase_add_test(t, pth2safetensors_layouts);
  suite_add_tcase(s, t);
  return s;
}

UNMIX_TEST_MAIN(suite)
