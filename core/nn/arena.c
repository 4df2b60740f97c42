/* The step arena behind activation contexts (see arena.h). */
#include "core/nn/arena.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN 256
#define ARENA_MAX_BLOCKS 64

struct unmix_arena {
  const struct unmix_backend *be;
  char name[64];
  struct {
    char *base;
    size_t size;
  } blocks[ARENA_MAX_BLOCKS];
  int nblocks;
  int cur;          /* block being bump-allocated */
  size_t cur_off;   /* offset in blocks[cur] */
  size_t in_use;    /* bytes handed out since the last reset (incl. padding) */
  size_t high;      /* high-water mark of in_use */
};

struct unmix_arena *unmix_arena_create(const struct unmix_backend *be, const char *name) {
  struct unmix_arena *a = unmix_xcalloc(1, sizeof *a);
  a->be = be;
  snprintf(a->name, sizeof a->name, "%s", name ? name : "arena");
  return a;
}

void unmix_arena_destroy(struct unmix_arena *a) {
  if (!a) return;
  for (int i = 0; i < a->nblocks; i++) a->be->free(a->blocks[i].base);
  free(a);
}

void *unmix_arena_alloc(struct unmix_arena *a, size_t bytes) {
  size_t need = (bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
  if (need == 0) need = ARENA_ALIGN;
  while (a->cur < a->nblocks) {
    if (a->cur_off + need <= a->blocks[a->cur].size) {
      void *p = a->blocks[a->cur].base + a->cur_off;
      a->cur_off += need;
      a->in_use += need;
      if (a->in_use > a->high) a->high = a->in_use;
      return p;
    }
    a->cur++;
    a->cur_off = 0;
  }
  if (a->nblocks == ARENA_MAX_BLOCKS) {
    unmix_error_set(UNMIX_ERR_NOMEM, "%s: too many arena blocks (internal limit %d)", a->name, ARENA_MAX_BLOCKS);
    return NULL;
  }
  size_t size = need;
  size_t last = a->nblocks ? a->blocks[a->nblocks - 1].size : 0;
  if (size < 2 * last) size = 2 * last;
  if (size < ((size_t)1 << 20)) size = (size_t)1 << 20;
  void *p = a->be->alloc(size);
  if (!p) {
    unmix_error_set(UNMIX_ERR_NOMEM, "%s: could not allocate %.1f MiB of %s memory (in use: %.1f MiB)",
                    a->name, (double)size / 1048576.0, a->be->name, (double)a->in_use / 1048576.0);
    return NULL;
  }
  a->blocks[a->nblocks].base = p;
  a->blocks[a->nblocks].size = size;
  a->cur = a->nblocks++;
  a->cur_off = need;
  a->in_use += need;
  if (a->in_use > a->high) a->high = a->in_use;
  return p;
}

void unmix_arena_reset(struct unmix_arena *a) {
  /* Several blocks were needed: replace them by one block of the high-water size so that
   * the next step fits without allocating (nothing handed out is live after a reset). */
  if (a->nblocks > 1) {
    size_t total = 0;
    for (int i = 0; i < a->nblocks; i++) {
      total += a->blocks[i].size;
      a->be->free(a->blocks[i].base);
    }
    size_t size = a->high > total ? a->high : total;
    a->nblocks = 0;
    void *p = a->be->alloc(size);
    if (p) {
      a->blocks[0].base = p;
      a->blocks[0].size = size;
      a->nblocks = 1;
    }
  }
  a->cur = 0;
  a->cur_off = 0;
  a->in_use = 0;
}

size_t unmix_arena_capacity(const struct unmix_arena *a) {
  size_t t = 0;
  for (int i = 0; i < a->nblocks; i++) t += a->blocks[i].size;
  return t;
}
