/* `unmix collect`: gathers run directories into one results table per paper table (plus the
 * sweeps and the demo) — OUT/<table>.csv and OUT/<table>.md with our number, the paper's, the
 * difference, how complete the run is (full / partial / smoke / not run) and its provenance.
 * Every number comes from a run's CSV files (metrics.csv, lincls.csv) or the paper CSV. */
#pragma once
#include <stdbool.h>

#include "core/util/error.h"

/* Columns of OUT/<table>.csv, in order (stable; documented in README.md):
 *  table .. metric  the row key: the paper_results.csv key for paper rows, the run's `paper:`
 *                   block otherwise (epochs = the run's planned epochs when paper.epochs is 0)
 *  prob, beta       the run's unmix.prob / unmix.beta (empty when no run)
 *  ours             our number, the mean over the row's seeds (see seeds) of: knn_top1 = kNN top-1 of
 *                   the last epoch with a kNN evaluation in metrics.csv; linear_top1 = lincls.csv
 *                   best_top1 (swav-cifar protocol) or the last epoch's test_top1 (other protocols);
 *                   any other metric = the last non-empty value of that metrics.csv column
 *  ours_top5        the matching top-5 (knn_top5, or test_top5 of the same lincls epoch)
 *  ours_std, ours_top5_std   the sample standard deviation over the row's seeds (empty with one seed)
 *  seeds            how many seeds `ours` averages: the shown run and every run of the same row with the
 *                   same training configuration apart from seed/name (and as complete); empty when not run
 *  paper, delta     the paper's number and ours - paper (empty when either is missing)
 *  status           full | finished (complete, no paper reference) | partial | smoke | not run
 *  detail           why a row is partial/smoke ("2/1000 epochs; 4 steps/epoch; width 8; ...")
 *  eval_epoch       the epoch `ours` comes from
 *  epochs_done, epochs_planned, run_status, run_dir, git_commit, manifest_md5, backend,
 *  device, precision, started, updated   the run's status.yaml
 *  paper_source     where the paper's number comes from */
#define UNMIX_COLLECT_COLUMNS                                                                                    \
  "table", "dataset", "method", "variant", "unmix", "epochs", "metric", "prob", "beta", "ours", "ours_top5",     \
      "ours_std", "ours_top5_std", "seeds", "paper", "delta", "status", "detail", "eval_epoch", "epochs_done",   \
      "epochs_planned", "run_status", "run_dir", "git_commit", "manifest_md5", "backend", "device", "precision",   \
      "started", "updated", "paper_source"

struct unmix_collect_options {
  const char *const *run_dirs;  /* run directories or directories holding them (searched 4 deep) */
  int n_run_dirs;               /* 0: "results/runs" (absent = no runs) */
  const char *out_dir;          /* NULL: "results" */
  const char *paper_csv;        /* NULL: "results/paper/paper_results.csv" */
  const char *const *tables;    /* the tables to write; NULL/0: the standard ones + any a run names */
  int n_tables;
  bool print;                   /* print each table's Markdown to stdout */
  bool quiet;                   /* no summary lines */
};

/* Reads every run, writes the tables. A malformed input (status.yaml, manifest.yaml,
 * metrics.csv, lincls.csv, the paper CSV) is an error naming the file (and line); nothing is
 * written then. */
unmix_status unmix_collect(const struct unmix_collect_options *o);
