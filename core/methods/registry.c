/* The one list of methods: a NULL-terminated table of every method's ops, looked up by the
 * manifest name. Adding a method = its file + one row here. */
#include <string.h>

#include "core/methods/method.h"

extern const struct unmix_method_ops unmix_moco_ops; /* core/methods/moco.c */
extern const struct unmix_method_ops unmix_swav_ops; /* core/methods/swav.c */
extern const struct unmix_method_ops unmix_simclr_ops; /* core/methods/simclr.c */
extern const struct unmix_method_ops unmix_byol_ops;   /* core/methods/byol.c */

static const struct unmix_method_ops *const g_methods[] = {
    &unmix_moco_ops,
    &unmix_swav_ops,
    &unmix_simclr_ops,
    &unmix_byol_ops,
    NULL,
};

const struct unmix_method_ops *unmix_method_ops_at(int i) {
  if (i < 0 || i >= (int)(sizeof g_methods / sizeof g_methods[0]) - 1) return NULL;
  return g_methods[i];
}

const struct unmix_method_ops *unmix_method_ops_find(const char *name) {
  for (int i = 0; name && g_methods[i]; i++)
    if (!strcmp(g_methods[i]->name, name)) return g_methods[i];
  return NULL;
}

int unmix_method_metric_columns_all(const char **names, int cap) {
  int n = 0;
  for (int i = 0; g_methods[i]; i++)
    for (int c = 0; c < UNMIX_METHOD_MAX_METRICS && g_methods[i]->metric_columns[c]; c++) {
      const char *col = g_methods[i]->metric_columns[c];
      bool seen = false;
      for (int j = 0; j < n && j < cap; j++) seen = seen || !strcmp(names[j], col);
      if (seen) continue;
      if (n < cap) names[n] = col;
      n++;
    }
  return n;
}
