/* The CUDA backend's memory contract (core/backend/backend.h) through its op table: alloc/free,
 * alloc_host/free_host (pinned), memcpy_h2d/d2h "complete when they return" (the host buffer may
 * be reused or read at once, also when it is pinned and the copy therefore truly asynchronous),
 * memcpy_d2d ordered on the stream, synchronize. On the emulated device with
 * EMU_STRICT_STREAMS=1 a missing synchronisation shows here as stale data. */
#include <stdlib.h>
#include <string.h>

#include "tests/support/testutil.h"

START_TEST(test_gpu_pinned_roundtrip_is_complete_on_return) {
  const struct unmix_backend *be = unmix_test_cuda_or_skip("pinned_roundtrip_is_complete_on_return");
  if (!be) return;
  const size_t n = 1000;
  float *pin = be->alloc_host(n * sizeof(float));
  float *d = be->alloc(n * sizeof(float)), *e = be->alloc(n * sizeof(float));
  ck_assert(pin && d && e);
  for (size_t i = 0; i < n; i++) pin[i] = (float)i;
  be->memcpy_h2d(d, pin, n * sizeof(float));
  // The contract lets the caller reuse the source at once, so this must not reach the device.
  for (size_t i = 0; i < n; i++) pin[i] = -1.0f;
  be->memcpy_d2d(e, d, n * sizeof(float));
  be->memcpy_d2h(pin, e, n * sizeof(float));
  // ... and read the destination at once.
  for (size_t i = 0; i < n; i++) ck_assert_msg(pin[i] == (float)i, "pinned[%zu] = %g, want %zu", i, pin[i], i);
  // A device op, then d2h into pinned memory: the op's result, not the old contents.
  be->fill((int64_t)n, 2.5f, e);
  be->memcpy_d2h(pin, e, n * sizeof(float));
  ck_assert_float_eq(pin[0], 2.5f);
  ck_assert_float_eq(pin[n - 1], 2.5f);
  be->free(d);
  be->free(e);
  be->free_host(pin);
}
END_TEST

START_TEST(test_gpu_pageable_roundtrip_and_synchronize) {
  const struct unmix_backend *be = unmix_test_cuda_or_skip("pageable_roundtrip_and_synchronize");
  if (!be) return;
  const size_t n = 777;
  float *h = malloc(n * sizeof(float)), *back = malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) h[i] = (float)(3 * i + 1);
  float *d = be->alloc(n * sizeof(float));
  be->memcpy_h2d(d, h, n * sizeof(float));
  memset(h, 0, n * sizeof(float));
  be->scale((int64_t)n, 2.0f, d, d);
  be->synchronize();
  be->memcpy_d2h(back, d, n * sizeof(float));
  for (size_t i = 0; i < n; i++) ck_assert_float_eq(back[i], (float)(2 * (3 * i + 1)));
  be->free(d);
  free(h);
  free(back);
}
END_TEST

static Suite *memory_suite(void) {
  Suite *s = suite_create("gpu_memory");
  TCase *tc = tcase_create("contract");
  tcase_add_test(tc, test_gpu_pinned_roundtrip_is_complete_on_return);
  tcase_add_test(tc, test_gpu_pageable_roundtrip_and_synchronize);
  suite_add_tcase(s, tc);
  return s;
}

UNMIX_TEST_MAIN(memory_suite)
