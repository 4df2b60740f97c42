/* `unmix plot RUN...`: a run's (or several runs') curves from their metrics.csv with gnuplot
 * (loss and kNN top-1 per epoch, one line per run), optionally redrawn while training goes on
 * (--watch S). The figure is made from the CSV files alone, like every figure of the harness. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "experiments/commands.h"
#include "experiments/suggest.h"

extern char **environ;

static volatile sig_atomic_t g_stop;
static void on_int(int sig) {
  (void)sig;
  g_stop = 1;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: unmix plot RUN... [--out FILE.png] [--columns A,B] [--watch S [--count N]]\n\n"
          "Draws the per-epoch curves of one or more run directories (RUN/metrics.csv, or a\n"
          "metrics.csv path) with gnuplot into a PNG: one panel per column (default loss and\n"
          "knn_top1; any metrics.csv columns, see experiments/trainer.h), one line per run,\n"
          "labelled by the run directory's name.\n\n"
          "options:\n"
          "  --out FILE     the PNG (default: curves.png in the first RUN)\n"
          "  --columns A,B  metrics.csv columns, one panel each (at most 4)\n"
          "  --watch S      redraw every S seconds when a metrics.csv changed, until Ctrl-C\n"
          "  --count N      with --watch: stop after N drawings\n"
          "  -h, --help     this help\n\n"
          "Needs gnuplot (make deps installs gnuplot-nox).\n\n"
          "example: unmix plot results/runs/cifar10_moco_sym results/runs/cifar10_moco_sym_unmix --watch 30\n");
}

/* metrics.csv of a RUN argument, or NULL (message printed). */
static char *metrics_of(const char *arg) {
  struct stat sb;
  char *p = NULL;
  if (stat(arg, &sb) == 0 && S_ISDIR(sb.st_mode)) {
    size_t n = strlen(arg) + 16;
    p = malloc(n);
    snprintf(p, n, "%s/metrics.csv", arg);
  } else {
    p = strdup(arg);
  }
  if (stat(p, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    fprintf(stderr, "unmix plot: %s: no metrics.csv (%s); a RUN is a run directory of unmix train\n", p,
            strerror(errno ? errno : ENOENT));
    free(p);
    return NULL;
  }
  return p;
}

/* The run's label: the directory holding its metrics.csv. */
static void run_label(const char *metrics, char *buf, size_t len) {
  snprintf(buf, len, "%s", metrics);
  char *s = strrchr(buf, '/');
  if (s) *s = 0;
  else snprintf(buf, len, ".");
  s = strrchr(buf, '/');
  if (s) memmove(buf, s + 1, strlen(s + 1) + 1);
}

/* Single quotes cannot appear inside a gnuplot '...' string: refuse such paths. */
static int quotable(const char *s) { return strchr(s, '\'') == NULL && strchr(s, '\n') == NULL; }

static int draw(char *const *files, int n, const char *const *cols, int ncol, const char *out) {
  char tmpl[] = "/tmp/unmix-plot-XXXXXX";
  int fd = mkstemp(tmpl);
  if (fd < 0) {
    fprintf(stderr, "unmix plot: cannot create a temporary file: %s\n", strerror(errno));
    return 1;
  }
  FILE *g = fdopen(fd, "w");
  fprintf(g, "set terminal pngcairo noenhanced size %d,480 font 'sans,11'\nset output '%s'\n", 480 * ncol + 40, out);
  fprintf(g, "set datafile separator comma\nset grid\nset key box opaque bottom center outside horizontal\n"
             "set xlabel 'Epoch'\nset multiplot layout 1,%d\n", ncol);
  for (int c = 0; c < ncol; c++) {
    fprintf(g, "set title '%s'\nplot ", cols[c]);
    for (int i = 0; i < n; i++) {
      char lab[256];
      run_label(files[i], lab, sizeof lab);
      fprintf(g, "%s'%s' using 'epoch':'%s' with linespoints lw 2 pt 7 ps 0.6 title '%s'", i ? ", " : "", files[i],
              cols[c], lab);
    }
    fprintf(g, "\n");
  }
  fprintf(g, "unset multiplot\nset output\n");
  fclose(g);
  char *argv[] = {"gnuplot", tmpl, NULL};
  pid_t pid;
  int rc = posix_spawnp(&pid, "gnuplot", NULL, NULL, argv, environ);
  if (rc != 0) {
    fprintf(stderr, "unmix plot: cannot run gnuplot (%s); make deps installs gnuplot-nox\n", strerror(rc));
    unlink(tmpl);
    return 1;
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  unlink(tmpl);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    fprintf(stderr, "unmix plot: gnuplot failed (a column missing from a metrics.csv?)\n");
    return 1;
  }
  return 0;
}

static time_t newest(char *const *files, int n) {
  time_t t = 0;
  struct stat sb;
  for (int i = 0; i < n; i++)
    if (stat(files[i], &sb) == 0 && sb.st_mtime > t) t = sb.st_mtime;
  return t;
}

static long parse_pos(const char *flag, const char *s, long hi) {
  char *end = NULL;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || !end || end == s || *end || v < 1 || v > hi) {
    fprintf(stderr, "unmix plot: %s must be an integer in 1..%ld, got '%s'\n", flag, hi, s);
    return -1;
  }
  return v;
}

int unmix_cmd_plot(int argc, char **argv) {
  const char *out = NULL;
  char colbuf[256] = "loss,knn_top1";
  long watch = 0, count = 0;
  static const struct option opts[] = {{"out", required_argument, 0, 'o'},   {"columns", required_argument, 0, 'c'},
                                       {"watch", required_argument, 0, 'w'}, {"count", required_argument, 0, 'n'},
                                       {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
  optind = 1;
  int o;
  while ((o = getopt_long(argc, argv, "o:c:w:n:h", opts, NULL)) != -1) {
    switch (o) {
      case 'o': out = optarg; break;
      case 'c': snprintf(colbuf, sizeof colbuf, "%s", optarg); break;
      case 'w':
        if ((watch = parse_pos("--watch", optarg, 86400)) < 0) return 2;
        break;
      case 'n':
        if ((count = parse_pos("--count", optarg, 1000000)) < 0) return 2;
        break;
      case 'h': usage(stdout); return 0;
      default: unmix_cli_option_hint(stderr, "plot", opts, argv[optind - 1]); return 2;
    }
  }
  if (optind >= argc) {
    usage(stderr);
    return 2;
  }
  const char *cols[4];
  int ncol = 0;
  for (char *t = strtok(colbuf, ","); t; t = strtok(NULL, ",")) {
    if (ncol == 4 || !*t || !quotable(t)) {
      fprintf(stderr, "unmix plot: --columns takes 1 to 4 column names\n");
      return 2;
    }
    cols[ncol++] = t;
  }
  if (!ncol) {
    fprintf(stderr, "unmix plot: --columns takes 1 to 4 column names\n");
    return 2;
  }
  const int n = argc - optind;
  char **files = calloc((size_t)n, sizeof *files);
  int rc = 1;
  for (int i = 0; i < n; i++)
    if (!(files[i] = metrics_of(argv[optind + i])) || !quotable(files[i])) {
      if (files[i]) fprintf(stderr, "unmix plot: %s: a path with a quote or newline cannot be plotted\n", files[i]);
      goto done;
    }
  char def_out[1200];
  if (!out) {
    snprintf(def_out, sizeof def_out, "%s", files[0]);
    char *s = strrchr(def_out, '/');
    snprintf(s ? s + 1 : def_out, sizeof def_out - (size_t)(s ? s + 1 - def_out : 0), "curves.png");
    out = def_out;
  }
  if (!quotable(out)) {
    fprintf(stderr, "unmix plot: --out: a path with a quote or newline cannot be written by gnuplot\n");
    goto done;
  }
  if (!watch) {
    if ((rc = draw(files, n, cols, ncol, out)) == 0) printf("unmix plot: %s (%d run%s)\n", out, n, n > 1 ? "s" : "");
    goto done;
  }
  signal(SIGINT, on_int);
  signal(SIGTERM, on_int);
  time_t seen = (time_t)-1;
  long drawn = 0;
  rc = 0;
  while (!g_stop) {
    time_t t = newest(files, n);
    if (t != seen) {
      if ((rc = draw(files, n, cols, ncol, out)) != 0) break;
      seen = t;
      drawn++;
      char when[32];
      time_t now = time(NULL);
      strftime(when, sizeof when, "%H:%M:%S", localtime(&now));
      printf("unmix plot: %s redrawn at %s (%d run%s); Ctrl-C stops\n", out, when, n, n > 1 ? "s" : "");
      fflush(stdout);
      if (count && drawn >= count) break;
    }
    for (long s = 0; s < watch && !g_stop; s++) sleep(1);
    if (count && !watch) break;
  }
done:
  for (int i = 0; i < n; i++) free(files[i]);
  free(files);
  return rc;
}
