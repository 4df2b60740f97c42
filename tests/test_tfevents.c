/* TensorBoard event files (core/io/tfevents.c): CRC-32C and the TFRecord mask against published
 * values, an event's exact bytes against a hand-assembled protobuf, write -> read round trips,
 * damaged files refused naming the byte offset, and (when Python's tensorboard is installed;
 * skipped by name otherwise) TensorBoard's own reader agreeing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/io/tfevents.h"
#include "core/util/fs.h"
#include "tests/support/testutil.h"

static char *g_dir;
static void setup(void) { g_dir = unmix_test_tmpdir("tfevents"); }
static void teardown(void) {
  unmix_test_rmdir(g_dir);
  free(g_dir);
}

struct got {
  int n_version, n;
  char version[64];
  char tag[16][64];
  float v[16];
  int64_t step[16];
  double wall[16];
};
static void collect(void *ctx, double wall, int64_t step, const char *tag, float value, const char *version) {
  struct got *g = ctx;
  if (version) {
    g->n_version++;
    snprintf(g->version, sizeof g->version, "%s", version);
    return;
  }
  if (g->n >= 16) return;
  snprintf(g->tag[g->n], sizeof g->tag[g->n], "%s", tag);
  g->v[g->n] = value;
  g->step[g->n] = step;
  g->wall[g->n++] = wall;
}

START_TEST(test_crc32c_and_mask) {
  /* CRC-32C check value (RFC 3720 / iSCSI): "123456789" -> 0xE3069283 */
  ck_assert_uint_eq(unmix_crc32c("123456789", 9), 0xE3069283u);
  ck_assert_uint_eq(unmix_crc32c("", 0), 0u);
  /* 32 zero bytes -> 0x8A9136AA (RFC 3720, B.4) */
  uint8_t z[32] = {0};
  ck_assert_uint_eq(unmix_crc32c(z, 32), 0x8A9136AAu);
  ck_assert_uint_eq(unmix_tfrecord_mask(0), 0xa282ead8u);
  ck_assert_uint_eq(unmix_tfrecord_mask(0x00008000u), 0xa282ead9u); /* bit 15 rotates to bit 0 */
}
END_TEST

/* The bytes of one scalar event, assembled by hand from the proto field numbers:
 *   Event{wall_time(1, fixed64) = 2.0, step(2, varint) = 300, summary(5) = Summary{value(1) =
 *   Value{tag(1) = "a", simple_value(2, fixed32) = 1.5}}} */
START_TEST(test_event_bytes) {
  char p[1024];
  snprintf(p, sizeof p, "%s/one.tfevents", g_dir);
  struct unmix_tfevents *w = NULL;
  ck_assert(unmix_tfevents_create(p, 1.0, &w) == UNMIX_OK);
  const char *tags[] = {"a"};
  const float v[] = {1.5f};
  ck_assert(unmix_tfevents_scalars(w, 2.0, 300, tags, v, 1) == UNMIX_OK);
  ck_assert(unmix_tfevents_close(w) == UNMIX_OK);
  uint8_t *b = NULL;
  size_t n = 0;
  ck_assert(unmix_fs_read(p, 0, &b, &n) == UNMIX_OK);
  /* record 1: file_version: 09 <1.0> 1a 0d "brain.Event:2" = 9 + 15 = 24 bytes */
  const uint8_t ev1[] = {0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x1a, 13, 'b', 'r', 'a', 'i', 'n', '.',
                         'E',  'v', 'e', 'n', 't', ':', '2'};
  ck_assert_uint_eq(b[0], sizeof ev1);
  for (int i = 1; i < 8; i++) ck_assert_uint_eq(b[i], 0);
  ck_assert_mem_eq(b + 12, ev1, sizeof ev1);
  size_t off = 12 + sizeof ev1 + 4;
  const uint8_t ev2[] = {0x09, 0, 0, 0, 0, 0, 0, 0x00, 0x40, /* wall_time 2.0 */
                         0x10, 0xac, 0x02,                     /* step 300 */
                         0x2a, 10,                             /* summary, 10 bytes */
                         0x0a, 8,                              /* value, 8 bytes */
                         0x0a, 1, 'a',                         /* tag "a" */
                         0x15, 0, 0, 0xc0, 0x3f};              /* simple_value 1.5f */
  ck_assert_uint_eq(n, off + 12 + sizeof ev2 + 4);
  ck_assert_uint_eq(b[off], sizeof ev2);
  ck_assert_mem_eq(b + off + 12, ev2, sizeof ev2);
  /* the CRCs: masked CRC-32C of the 8 length bytes, then of the data */
  uint32_t lc = 0, dc = 0;
  for (int i = 0; i < 4; i++) {
    lc |= (uint32_t)b[off + 8 + i] << (8 * i);
    dc |= (uint32_t)b[off + 12 + sizeof ev2 + i] << (8 * i);
  }
  ck_assert_uint_eq(lc, unmix_tfrecord_mask(unmix_crc32c(b + off, 8)));
  ck_assert_uint_eq(dc, unmix_tfrecord_mask(unmix_crc32c(ev2, sizeof ev2)));
  free(b);
}
END_TEST

START_TEST(test_round_trip_and_damage) {
  char p[1024];
  snprintf(p, sizeof p, "%s/rt.tfevents", g_dir);
  struct unmix_tfevents *w = NULL;
  ck_assert(unmix_tfevents_create(p, 100.0, &w) == UNMIX_OK);
  const char *tags[] = {"epoch/loss", "epoch/knn_top1", "epoch/lr"};
  const float v1[] = {8.25f, 41.5f, 0.06f}, v2[] = {7.5f, -3.0e-5f, 1e30f};
  ck_assert(unmix_tfevents_scalars(w, 101.5, 1, tags, v1, 3) == UNMIX_OK);
  ck_assert(unmix_tfevents_scalars(w, 102.5, 1000000000000LL, tags, v2, 3) == UNMIX_OK);
  ck_assert(unmix_tfevents_close(w) == UNMIX_OK);
  struct got g = {0};
  int64_t ne = 0;
  ck_assert_msg(unmix_tfevents_read(p, collect, &g, &ne) == UNMIX_OK, "%s", unmix_error_message());
  ck_assert_int_eq(ne, 3);
  ck_assert_int_eq(g.n_version, 1);
  ck_assert_str_eq(g.version, "brain.Event:2");
  ck_assert_int_eq(g.n, 6);
  for (int i = 0; i < 6; i++) {
    ck_assert_str_eq(g.tag[i], tags[i % 3]);
    ck_assert(g.v[i] == (i < 3 ? v1[i] : v2[i - 3])); /* float32 exactly */
    ck_assert_int_eq(g.step[i], i < 3 ? 1 : 1000000000000LL);
    ck_assert(g.wall[i] == (i < 3 ? 101.5 : 102.5));
  }
  /* damage: a flipped data byte, a truncated tail */
  uint8_t *b = NULL;
  size_t n = 0;
  ck_assert(unmix_fs_read(p, 0, &b, &n) == UNMIX_OK);
  char q[1100];
  snprintf(q, sizeof q, "%s/bad.tfevents", g_dir);
  b[55] ^= 0x01; /* inside the second record's data (it starts at byte 40) */
  FILE *f = fopen(q, "wb");
  ck_assert(fwrite(b, 1, n, f) == n);
  fclose(f);
  memset(&g, 0, sizeof g);
  ck_assert_int_eq(unmix_tfevents_read(q, collect, &g, NULL), UNMIX_ERR_FORMAT);
  ck_assert_msg(strstr(unmix_error_message(), "bad.tfevents: byte 40: the record's CRC does not match"), "%s",
                unmix_error_message());
  b[55] ^= 0x01;
  f = fopen(q, "wb");
  ck_assert(fwrite(b, 1, n - 3, f) == n - 3);
  fclose(f);
  ck_assert_int_eq(unmix_tfevents_read(q, collect, &g, NULL), UNMIX_ERR_FORMAT);
  ck_assert_msg(strstr(unmix_error_message(), "truncated"), "%s", unmix_error_message());
  free(b);
}
END_TEST

/* TensorBoard's own event reader, when installed, sees the same scalars. */
START_TEST(test_tensorboard_reads_it) {
  const char *py = getenv("UNMIX_PYTHON") && *getenv("UNMIX_PYTHON") ? getenv("UNMIX_PYTHON") : "python3";
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "'%s' -c 'import tensorboard.backend.event_processing.event_accumulator' >/dev/null 2>&1",
           py);
  if (unmix_test_sh(cmd, NULL) != 0) {
    printf("SKIPPED (Python's tensorboard is not installed for %s; set UNMIX_PYTHON): test_tensorboard_reads_it\n", py);
    return;
  }
  char p[1024];
  snprintf(p, sizeof p, "%s/tb/events.out.tfevents.unmix", g_dir);
  char d[1024];
  snprintf(d, sizeof d, "%s/tb", g_dir);
  unmix_test_mkdirs(d);
  struct unmix_tfevents *w = NULL;
  ck_assert(unmix_tfevents_create(p, 10.0, &w) == UNMIX_OK);
  const char *tags[] = {"epoch/loss", "epoch/knn_top1"};
  for (int e = 1; e <= 3; e++) {
    const float v[] = {(float)(9 - e), (float)(40 + 10 * e)};
    ck_assert(unmix_tfevents_scalars(w, 10.0 + e, e, tags, v, 2) == UNMIX_OK);
  }
  ck_assert(unmix_tfevents_close(w) == UNMIX_OK);
  char *out = NULL;
  snprintf(cmd, sizeof cmd,
           "'%s' - '%s' 2>&1 <<'EOF'\n"
           "import sys\n"
           "from tensorboard.backend.event_processing.event_accumulator import EventAccumulator\n"
           "a = EventAccumulator(sys.argv[1]); a.Reload()\n"
           "s = a.Scalars('epoch/knn_top1')\n"
           "assert [(e.step, e.value) for e in s] == [(1, 50.0), (2, 60.0), (3, 70.0)], s\n"
           "assert [e.value for e in a.Scalars('epoch/loss')] == [8.0, 7.0, 6.0]\n"
           "print('tensorboard ok', sorted(a.Tags()['scalars']))\n"
           "EOF",
           py, d);
  int rc = unmix_test_sh(cmd, &out);
  ck_assert_msg(rc == 0 && strstr(out, "tensorboard ok"), "TensorBoard's reader disagrees:\n%s", out);
  free(out);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("tfevents");
  TCase *tc = tcase_create("tfevents");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_crc32c_and_mask);
  tcase_add_test(tc, test_event_bytes);
  tcase_add_test(tc, test_round_trip_and_damage);
  tcase_add_test(tc, test_tensorboard_reads_it);
  suite_add_tcase(s, tc);
  return s;
}

UNMIX_TEST_MAIN(make_suite)
