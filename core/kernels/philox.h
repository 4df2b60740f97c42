/* Philox-4x32-10 counter-based RNG (Salmon et al., SC'11), host+device.
 * A stream is (key, counter): the key is the 64-bit seed; the 128-bit counter is
 * (draw, index, epoch, purpose<<16 | view). Every random decision in unmix-c is a pure
 * function of (seed, purpose, epoch, index, view, draw number), so results never depend
 * on thread count, batch partitioning or backend. Each kind of random decision has its own
 * purpose (counter space), defined next to its users (core/util/rng.h lists where). */
#pragma once
#include "core/kernels/common.h"

struct unmix_rng {
  uint32_t key[2];
  uint32_t ctr[4]; /* ctr[0] counts blocks of 4 words drawn */
  uint32_t buf[4];
  uint32_t pos;    /* next unread word of buf; 4 = empty */
};

UNMIX_HD uint32_t unmix_philox_mulhilo(uint32_t a, uint32_t b, uint32_t *hi) {
  uint64_t p = (uint64_t)a * (uint64_t)b;
  *hi = (uint32_t)(p >> 32);
  return (uint32_t)p;
}

/* One Philox-4x32-10 block: out = philox(ctr, key). */
UNMIX_HD void unmix_philox4x32_10(const uint32_t ctr_in[4], const uint32_t key_in[2], uint32_t out[4]) {
  uint32_t c0 = ctr_in[0], c1 = ctr_in[1], c2 = ctr_in[2], c3 = ctr_in[3];
  uint32_t k0 = key_in[0], k1 = key_in[1];
  for (int r = 0; r < 10; r++) {
    uint32_t hi0, hi1;
    uint32_t lo0 = unmix_philox_mulhilo(0xD2511F53u, c0, &hi0);
    uint32_t lo1 = unmix_philox_mulhilo(0xCD9E8D57u, c2, &hi1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

UNMIX_HD struct unmix_rng unmix_rng_make(uint64_t seed, uint32_t purpose, uint32_t epoch, uint32_t index,
                                         uint32_t view) {
  struct unmix_rng r;
  r.key[0] = (uint32_t)seed;
  r.key[1] = (uint32_t)(seed >> 32);
  r.ctr[0] = 0;
  r.ctr[1] = index;
  r.ctr[2] = epoch;
  r.ctr[3] = (purpose << 16) | (view & 0xFFFFu);
  r.buf[0] = r.buf[1] = r.buf[2] = r.buf[3] = 0;
  r.pos = 4;
  return r;
}

UNMIX_HD uint32_t unmix_rng_u32(struct unmix_rng *r) {
  if (r->pos >= 4) {
    unmix_philox4x32_10(r->ctr, r->key, r->buf);
    r->ctr[0]++;
    r->pos = 0;
  }
  return r->buf[r->pos++];
}

/* Uniform float in [0, 1) with 24 random bits (exactly representable). */
UNMIX_HD float unmix_rng_uniform(struct unmix_rng *r) {
  return (float)(unmix_rng_u32(r) >> 8) * 5.9604644775390625e-08f;
}
/* Uniform double in [0, 1) with 53 random bits. */
UNMIX_HD double unmix_rng_uniform_double(struct unmix_rng *r) {
  uint64_t a = unmix_rng_u32(r) >> 5, b = unmix_rng_u32(r) >> 6; /* 27 + 26 bits */
  return ((double)a * 67108864.0 + (double)b) * (1.0 / 9007199254740992.0);
}
/* Uniform integer in {0, ..., n-1}, unbiased (Lemire's multiply-and-reject). n >= 1. */
UNMIX_HD uint32_t unmix_rng_below(struct unmix_rng *r, uint32_t n) {
  uint64_t m = (uint64_t)unmix_rng_u32(r) * (uint64_t)n;
  uint32_t l = (uint32_t)m;
  if (l < n) {
    uint32_t t = (uint32_t)(-n) % n;
    while (l < t) {
      m = (uint64_t)unmix_rng_u32(r) * (uint64_t)n;
      l = (uint32_t)m;
    }
  }
  return (uint32_t)(m >> 32);
}
/* Standard normal (Box-Muller, double precision, one value per call). */
UNMIX_HD double unmix_rng_normal(struct unmix_rng *r) {
  double u1 = unmix_rng_uniform_double(r);
  double u2 = unmix_rng_uniform_double(r);
  if (u1 < 1e-300) u1 = 1e-300;
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925286766559 * u2);
}
