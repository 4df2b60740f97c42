/* Fuzzes the CSV reader `unmix collect` reads metrics.csv and status files with: the
 * table, its column lookup and numeric getters. */
#include "core/io/csv.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 1 << 18) return 0;
  const char *p = fuzz_file("metrics.csv", data, size);
  struct unmix_csv_table *t = NULL;
  if (unmix_csv_read(p, &t) == UNMIX_OK) {
    static const char *const cols[] = {"epoch", "loss", "knn_top1", "status", ""};
    for (size_t r = 0; r < t->nrows && r < 256; r++)
      for (int c = 0; c < 5; c++) {
        double v;
        long long n;
        int k = unmix_csv_column(t, cols[c]);
        if (k >= 0 && !unmix_csv_cell(t, r, k)) abort();
        unmix_csv_get_double(t, r, cols[c], &v);
        unmix_csv_get_int(t, r, cols[c], &n);
      }
    unmix_csv_table_free(t);
  }
  return 0;
}
