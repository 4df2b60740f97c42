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

/* Why "auto" picked what it picked (logged by the trainer). */
static char g_auto_why[640];

const char *unmix_backend_resolve(const char *name) {
  if (strcmp(name, "auto") != 0) return name;
  char gpu_msg[512] = "this build has no CUDA backend: it was built without nvcc and cuDNN";
  for (int i = 0; i < NBACKENDS; i++) {
    const struct unmix_backend *be;
    if (g_backends[i]->device == UNMIX_DEVICE_CPU) continue;
    if (unmix_backend_get(g_backends[i]->name, &be) == UNMIX_OK) {
      snprintf(g_auto_why, sizeof g_auto_why, "backend auto: %s (a usable GPU was found)", be->name);
      return be->name;
    }
    snprintf(gpu_msg, sizeof gpu_msg, "%s", g_init_msg[i]);
    unmix_error_clear();
  }
  snprintf(g_auto_why, sizeof g_auto_why, "backend auto: cpu, because no GPU is usable (%s)", gpu_msg);
  return "cpu";
}

const char *unmix_backend_auto_reason(void) { return g_auto_why; }

unmix_status unmix_backend_get(const char *name, const struct unmix_backend **out) {
  *out = NULL;
  name = unmix_backend_resolve(name);
  for (int i = 0; i < NBACKENDS; i++) {
    if (strcmp(g_backends[i]->name, name) != 0) continue;
    if (!g_initialised[i]) {
      g_initialised[i] = true;
      g_init_status[i] = g_backends[i]->init ? g_backends[i]->init() : UNMIX_OK;
      if (g_init_status[i] != UNMIX_OK) snprintf(g_init_msg[i], sizeof g_init_msg[i], "%s", unmix_error_message());
    }
    if (g_init_status[i] != UNMIX_OK && g_backends[i]->device != UNMIX_DEVICE_CPU)
      return unmix_error_set(g_init_status[i],
                             "backend '%s': there is no usable GPU here (`unmix info` shows what this machine "
                             "offers); use backend auto or cpu. The driver said: %s",
                             name, g_init_msg[i]);
    if (g_init_status[i] != UNMIX_OK)
      return unmix_error_set(g_init_status[i], "backend '%s' is unavailable: %s", name, g_init_msg[i]);
    *out = g_backends[i];
    return UNMIX_OK;
  }
  if (strcmp(name, "cuda") == 0)
    return unmix_error_set(UNMIX_ERR_UNSUPPORTED,
                           "backend 'cuda' was not compiled into this build (rebuild with nvcc and cuDNN "
                           "present, or -DUNMIX_CUDA=ON); use backend: auto or cpu");
  return unmix_error_set(UNMIX_ERR_UNSUPPORTED, "unknown backend '%s' (known: auto, cpu, cuda)", name);
}

bool unmix_backend_available(const char *name) {
  const struct unmix_backend *be;
  bool ok = unmix_backend_get(name, &be) == UNMIX_OK;
  if (!ok) unmix_error_clear();
  return ok;
}
