#!/usr/bin/env bash
# `make demo`: MoCo (symmetric) with and without Un-Mix on the real Fashion-MNIST.
# Trains both runs (configs/fmnist/) for each of SEEDS seeds, evaluates them with kNN after every
# epoch, measures the two reference levels under the identical kNN evaluation (raw pixels, the
# untrained network: `unmix baseline`), runs t-SNE, prints the results table (mean +- std over
# seeds, the Un-Mix - MoCo gap) and writes the figures, all under DEMO_OUT (default
# results/demo). Finished runs are re-used; an interrupted one resumes.
# Environment: UNMIX (binary), DEMO_OUT, SEEDS (default 1), BACKEND (auto|cpu|cuda, default auto),
# TSNE_CMD (template, {run} = a run directory; empty: no t-SNE), DEMO_SET (extra `--set KEY=VALUE`
# words for the runs and the baselines, e.g. to shrink everything for a smoke test), DEMO_CONFIGS
# (the directory holding moco_sym.yaml and moco_sym_unmix.yaml, default configs/fmnist; `make
# study-fmnist` points it at configs/fmnist/study), DEMO_TITLE (the table's heading),
# DEMO_PARALLEL (auto|0|1, default auto: on the CPU with 2 or more cores the two runs of a seed
# train at the same time, each with half the cores; their results agree with one after the other
# to fp32 rounding, bit for bit under UNMIX_CPU_CONV=reference, whose convolutions do not depend
# on the thread count; on this project's 2-core VM one thread gave 1.25x less than two, so two
# one-thread runs side by side finish sooner).
set -euo pipefail

UNMIX=${UNMIX:-build/unmix}
DEMO_OUT=${DEMO_OUT:-results/demo}
SEEDS=${SEEDS:-1}
BACKEND=${BACKEND:-auto}
read -r -a demo_set <<<"${DEMO_SET:-}"
TSNE_CMD=${TSNE_CMD-$UNMIX tsne \{run\}/checkpoint.safetensors --out \{run\}}
DEMO_CONFIGS=${DEMO_CONFIGS:-configs/fmnist}
DEMO_TITLE=${DEMO_TITLE:-Demo: MoCo vs MoCo + Un-Mix on Fashion-MNIST}
DEMO_PARALLEL=${DEMO_PARALLEL:-auto}
[ -f "$DEMO_CONFIGS/moco_sym.yaml" ] && [ -f "$DEMO_CONFIGS/moco_sym_unmix.yaml" ] ||
  { echo "demo: error: DEMO_CONFIGS=$DEMO_CONFIGS: needs moco_sym.yaml and moco_sym_unmix.yaml" >&2; exit 1; }
RUNS=$DEMO_OUT/runs
here=$(cd "$(dirname "$0")" && pwd)
t0=$(date +%s)
elapsed() { local s=$(($(date +%s) - t0)); printf '%d:%02d' $((s / 60)) $((s % 60)); }
step() { echo; echo "==== [$(elapsed)] $*"; }
die() { echo "demo: error: $*" >&2; exit 1; }

case "$SEEDS" in '' | *[!0-9]* | 0) die "SEEDS must be a positive integer (got '$SEEDS')" ;; esac
command -v gnuplot >/dev/null || die "gnuplot is missing (make deps installs gnuplot-nox)"
"$UNMIX" data check fashion-mnist "" --split test >/dev/null ||
  die "Fashion-MNIST is not installed (make deps installs the Debian package dataset-fashion-mnist)"
mkdir -p "$RUNS"

# run directory of (row, seed): seed 0 keeps the plain name
run_dir() { if [ "$2" = 0 ]; then echo "$RUNS/fmnist_$1"; else echo "$RUNS/fmnist_$1_s$2"; fi; }
train() { # ROW SEED
  local dir extra=()
  dir=$(run_dir "$1" "$2")
  [ "$2" = 0 ] || extra=(--set "seed=$2" --set "name=fmnist_$1_s$2")
  BACKEND=$BACKEND NPROC=1 UNMIX=$UNMIX "$here/run_row.sh" train "$DEMO_CONFIGS/$1.yaml" "$dir" "${extra[@]}" "${demo_set[@]}"
}

ncpu=$(nproc 2>/dev/null || echo 1)
case "$DEMO_PARALLEL" in
  0 | 1) parallel=$DEMO_PARALLEL ;;
  auto)
    parallel=0
    if [ "$ncpu" -ge 2 ]; then
      case "$BACKEND" in
        cpu) parallel=1 ;;
        auto) "$UNMIX" info 2>/dev/null | grep -q '^backends:.* cuda(usable)' || parallel=1 ;;
      esac
    fi
    ;;
  *) die "DEMO_PARALLEL must be auto, 0 or 1 (got '$DEMO_PARALLEL')" ;;
esac

train_both() { # SEED: the two rows side by side, each with half the cores, lines prefixed by row
  local t=$((ncpu / 2)) r i rows=(moco_sym moco_sym_unmix) pids=() failed=""
  [ "$t" -ge 1 ] || t=1
  for r in "${rows[@]}"; do
    (
      set -o pipefail
      OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t train "$r" "$1" 2>&1 | sed -u "s/^/[$r] /"
    ) &
    pids+=("$!")
  done
  for i in 0 1; do wait "${pids[$i]}" || failed+=" ${rows[$i]}"; done
  [ -z "$failed" ] || die "training failed:$failed (see its lines above)"
}

for ((s = 0; s < SEEDS; s++)); do
  if [ "$parallel" = 1 ]; then
    step "1-2/5 train MoCo (symmetric) and MoCo + Un-Mix side by side ($((ncpu / 2)) thread(s) each), seed $s of $SEEDS: $DEMO_CONFIGS/moco_sym.yaml, moco_sym_unmix.yaml"
    train_both "$s"
  else
    step "1/5 train MoCo (symmetric) on Fashion-MNIST, seed $s of $SEEDS: $DEMO_CONFIGS/moco_sym.yaml"
    train moco_sym "$s"
    step "2/5 train MoCo + Un-Mix, seed $s of $SEEDS: $DEMO_CONFIGS/moco_sym_unmix.yaml"
    train moco_sym_unmix "$s"
  fi
done

step "3/5 reference levels under the same kNN: raw pixels, the untrained network"
base_csv=$DEMO_OUT/baseline.csv
if [ -f "$base_csv" ] && [ "$base_csv" -nt "$DEMO_CONFIGS/moco_sym.yaml" ] && [ "$base_csv" -nt "$UNMIX" ]; then
  echo "== $base_csv: up to date, re-used"
else
  "$UNMIX" baseline "$DEMO_CONFIGS/moco_sym.yaml" --set "backend=$BACKEND" "${demo_set[@]}" --csv "$base_csv"
fi

step "4/5 t-SNE of the test features (seed 0)"
if [ -n "$TSNE_CMD" ]; then
  for r in fmnist_moco_sym fmnist_moco_sym_unmix; do
    UNMIX=$UNMIX "$here/run_row.sh" eval tsne "$RUNS/$r" tsne.csv --optional -- "$TSNE_CMD"
  done
else
  echo "== skipped (TSNE_CMD is empty)"
fi

step "5/5 results table and figures"
"$UNMIX" collect "$RUNS" --out "$DEMO_OUT" --tables demo --quiet
# The summary: reference rows and each method's last-epoch kNN, mean +- std over seeds.
last_of() { # METRICS_CSV COLUMN -> the column's value in the last row
  awk -F, -v c="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) k = i; next } k && $k != "" { v = $k } END { print v }' "$1"
}
base_of() { # BASELINE ROW COLUMN
  awk -F, -v r="$1" -v c="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) k = i; next } $1 == r { print $k }' "$base_csv"
}
stats() { # values... -> "mean std n" (sample std; 0 for one value)
  printf '%s\n' "$@" | awk '{ s += $1; q += $1 * $1; n++ } END { m = s / n; v = n > 1 ? (q - n * m * m) / (n - 1) : 0;
    if (v < 0) v = 0; printf "%.2f %.2f %d\n", m, sqrt(v), n }'
}
declare -A mean sd
sum_csv=$DEMO_OUT/demo_summary.csv
sum_md=$DEMO_OUT/demo_summary.md
{
  echo "row,knn_top1_mean,knn_top1_std,knn_top5_mean,knn_top5_std,seeds,epochs"
  for b in raw-pixels untrained; do
    echo "$b,$(base_of $b top1),0,$(base_of $b top5),0,1,0"
  done
  for r in moco_sym moco_sym_unmix; do
    t1=() t5=() ep=""
    for ((s = 0; s < SEEDS; s++)); do
      m=$(run_dir $r $s)/metrics.csv
      t1+=("$(last_of "$m" knn_top1)")
      t5+=("$(last_of "$m" knn_top5)")
      ep=$(last_of "$m" epoch)
    done
    read -r a b n <<<"$(stats "${t1[@]}")"
    read -r c d _ <<<"$(stats "${t5[@]}")"
    mean[$r]=$a sd[$r]=$b
    echo "$r,$a,$b,$c,$d,$n,$ep"
  done
} >"$sum_csv"
gap=$(awk -v a="${mean[moco_sym_unmix]}" -v b="${mean[moco_sym]}" 'BEGIN { printf "%+.2f", a - b }')
{
  echo "# $DEMO_TITLE"
  echo
  echo "kNN on the test set (k $(base_of raw-pixels k), t $(base_of raw-pixels t), bank $(base_of raw-pixels bank) train images," \
    "$(base_of raw-pixels queries) test images), the same evaluation for every row; runs: last epoch, mean +- std over $SEEDS seed(s)."
  echo
  echo "| row | kNN top-1 (%) | kNN top-5 (%) | seeds |"
  echo "|---|---|---|---|"
  awk -F, 'NR > 1 {
    if ($1 == "raw-pixels") name = "raw pixels (no training)"; else if ($1 == "untrained") name = "untrained network (initialisation)"
    else if ($1 == "moco_sym") name = "MoCo (symmetric)"; else name = "MoCo + Un-Mix"
    pm = ""; pm5 = ""; if ($6 > 1) { pm = sprintf(" +- %.2f", $3); pm5 = sprintf(" +- %.2f", $5) }
    seeds = "-"; if ($1 ~ /^moco/) seeds = $6
    printf "| %s | %.2f%s | %.2f%s | %s |\n", name, $2, pm, $4, pm5, seeds }' "$sum_csv"
  echo
  echo "Un-Mix - MoCo: $gap points of kNN top-1 (seed-to-seed std: MoCo ${sd[moco_sym]}, Un-Mix ${sd[moco_sym_unmix]})."
} >"$sum_md"
echo
cat "$sum_md"
echo
gnuplot -e "runs='$RUNS'; out='$DEMO_OUT/demo_curves'; baseline='$base_csv'" plots/demo.gp
figs=("$DEMO_OUT/demo_curves.png" "$DEMO_OUT/demo_curves.svg")
if [ -f "$RUNS/fmnist_moco_sym/tsne.csv" ] || [ -f "$RUNS/fmnist_moco_sym_unmix/tsne.csv" ]; then
  gnuplot -e "moco='$RUNS/fmnist_moco_sym/tsne.csv'; unmix='$RUNS/fmnist_moco_sym_unmix/tsne.csv'; out='$DEMO_OUT/demo_tsne'; dataset='Fashion-MNIST'" plots/fig4_tsne.gp
  figs+=("$DEMO_OUT/demo_tsne.png" "$DEMO_OUT/demo_tsne.svg")
elif [ -z "$TSNE_CMD" ]; then
  echo "(no t-SNE figure: TSNE_CMD is empty)"
else
  echo "(no t-SNE figure: this unmix has no 'tsne' command yet)"
fi
echo "==== [$(elapsed)] done. Results:"
echo "   table:   $sum_md  $sum_csv (and the per-run table $DEMO_OUT/demo.md)"
for f in "${figs[@]}"; do echo "   figure:  $f"; done
echo "   runs:    $RUNS (metrics.csv, train.log, checkpoint)"
echo "   (running it again re-uses these runs; SEEDS=n adds seeds; deleting $DEMO_OUT forgets them)"
