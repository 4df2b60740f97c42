/* The backend registry: the ONLY file that knows which backends were compiled in. */
#include <stdio.h>
#include <string.h>

#include "core/backend/backend.h"

extern const struct unmix_backend unmix_backend_cpu;
#ifdef UNMIX_WITH_CUDA
extern const struct unmix_backend unmix_backend_cuda;
#endif

static const struct unmix_backend *const g_backends[] = {
    &unmix_backend_cpu,
#ifdef UNMIX_WITH_CUDA
    &unmix_backend_cuda,
#endif
};
#define NBACKENDS ((int)(sizeof g_backends / sizeof g_backends[0]))
static bool g_initialised[NBACKENDS];
static unmix_status g_init_status[NBACKENDS];
static char g_init_msg[NBACKENDS][512];

static const char *const g_names[] = {
    "cpu",
#ifdef UNMIX_WITH_CUDA
    "cuda",
#endif
    NULL,
};

const char *const *unmix_backend_names(void) { return g_names; }

unmix_status unmix_backend_get(const char *name, const struct unmix_backend **out) {
  *out = NULL;
  for (int i = 0; i < NBACKENDS; i++) {
    if (strcmp(g_backends[i]->name, name) != 0) continue;
    if (!g_initialised[i]) {
      g_initialised[i] = true;
      g_init_status[i] = g_backends[i]->init ? g_backends[i]->init() : UNMIX_OK;
      if (g_init_status[i] != UNMIX_OK) snprintf(g_init_msg[i], sizeof g_init_msg[i], "%s", unmix_error_message());
    }
    if (g_init_status[i] != UNMIX_OK)
      return unmix_error_set(g_init_status[i], "backend '%s' is unavailable: %s", name, g_init_msg[i]);
    *out = g_backends[i];
    return UNMIX_OK;
  }
  if (strcmp(name, "cuda") == 0)
    return unmix_error_set(UNMIX_ERR_UNSUPPORTED,
                           "backend 'cuda' was not compiled into this build (rebuild with nvcc and cuDNN "
                           "present, or -DUNMIX_CUDA=ON); use backend: cpu");
  return unmix_error_set(UNMIX_ERR_UNSUPPORTED, "unknown backend '%s' (known: cpu, cuda)", name);
}

bool unmix_backend_available(const char *name) {
  const struct unmix_backend *be;
  bool ok = unmix_backend_get(name, &be) == UNMIX_OK;
  if (!ok) unmix_error_clear();
  return ok;
}
