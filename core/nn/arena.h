/* The step arena: device memory for one step's activations and scratch. Allocations are
 * bump-allocated from large device blocks; reset() makes all of them invalid at once and
 * keeps the memory. After the first step the arena holds one block of the high-water size,
 * so later steps allocate nothing. Used by the activation contexts (struct unmix_ctx). */
#pragma once
#include <stddef.h>

#include "core/backend/backend.h"

struct unmix_arena;
struct unmix_arena *unmix_arena_create(const struct unmix_backend *be, const char *name);
void unmix_arena_destroy(struct unmix_arena *a);
/* NULL (with UNMIX_ERR_NOMEM set, naming the arena and size) on failure. Offsets within a
 * block are multiples of 256 bytes; blocks are as aligned as the backend allocates (64). */
void *unmix_arena_alloc(struct unmix_arena *a, size_t bytes);
void unmix_arena_reset(struct unmix_arena *a);
/* Device bytes held (all blocks). */
size_t unmix_arena_capacity(const struct unmix_arena *a);
