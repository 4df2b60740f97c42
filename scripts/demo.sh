#!/usr/bin/env bash
# `make demo`: MoCo (symmetric) with and without Un-Mix on the real Fashion-MNIST, on the CPU.
# Trains both runs (configs/fmnist/), evaluates them with kNN after every epoch, runs t-SNE
# when this unmix has the command, prints the results table and writes the figures, all
# under DEMO_OUT (default results/demo). Finished runs are re-used; an interrupted one resumes.
# Environment: UNMIX (binary), DEMO_OUT, TSNE_CMD (template, {run} = a run directory).
set -euo pipefail

UNMIX=${UNMIX:-build/unmix}
DEMO_OUT=${DEMO_OUT:-results/demo}
TSNE_CMD=${TSNE_CMD:-$UNMIX tsne \{run\}/checkpoint.safetensors --out \{run\}}
RUNS=$DEMO_OUT/runs
here=$(cd "$(dirname "$0")" && pwd)
t0=$(date +%s)
elapsed() { local s=$(($(date +%s) - t0)); printf '%d:%02d' $((s / 60)) $((s % 60)); }
step() { echo; echo "==== [$(elapsed)] $*"; }

command -v gnuplot >/dev/null || { echo "demo: error: gnuplot is missing (make deps installs gnuplot-nox)" >&2; exit 1; }
"$UNMIX" data check fashion-mnist "" --split test >/dev/null ||
  { echo "demo: error: Fashion-MNIST is not installed (make deps installs the Debian package dataset-fashion-mnist)" >&2; exit 1; }
mkdir -p "$RUNS"

step "1/4 train MoCo (symmetric) on Fashion-MNIST: configs/fmnist/moco_sym.yaml"
BACKEND=cpu NPROC=1 UNMIX=$UNMIX "$here/run_row.sh" train configs/fmnist/moco_sym.yaml "$RUNS/fmnist_moco_sym"
step "2/4 train MoCo + Un-Mix: configs/fmnist/moco_sym_unmix.yaml"
BACKEND=cpu NPROC=1 UNMIX=$UNMIX "$here/run_row.sh" train configs/fmnist/moco_sym_unmix.yaml "$RUNS/fmnist_moco_sym_unmix"

step "3/4 t-SNE of the test features"
for r in fmnist_moco_sym fmnist_moco_sym_unmix; do
  UNMIX=$UNMIX "$here/run_row.sh" eval tsne "$RUNS/$r" tsne.csv --optional -- "$TSNE_CMD"
done

step "4/4 results table and figures"
"$UNMIX" collect "$RUNS" --out "$DEMO_OUT" --tables demo --quiet
echo
cat "$DEMO_OUT/demo.md"
echo
gnuplot -e "runs='$RUNS'; out='$DEMO_OUT/demo_curves'" plots/demo.gp
figs=("$DEMO_OUT/demo_curves.png" "$DEMO_OUT/demo_curves.svg")
if [ -f "$RUNS/fmnist_moco_sym/tsne.csv" ] || [ -f "$RUNS/fmnist_moco_sym_unmix/tsne.csv" ]; then
  gnuplot -e "moco='$RUNS/fmnist_moco_sym/tsne.csv'; unmix='$RUNS/fmnist_moco_sym_unmix/tsne.csv'; out='$DEMO_OUT/demo_tsne'" plots/fig4_tsne.gp
  figs+=("$DEMO_OUT/demo_tsne.png" "$DEMO_OUT/demo_tsne.svg")
else
  echo "(no t-SNE figure: this unmix has no 'tsne' command yet)"
fi
echo "==== [$(elapsed)] done. Results:"
echo "   table:   $DEMO_OUT/demo.md  $DEMO_OUT/demo.csv"
for f in "${figs[@]}"; do echo "   figure:  $f"; done
echo "   runs:    $RUNS/fmnist_moco_sym  $RUNS/fmnist_moco_sym_unmix (metrics.csv, train.log, checkpoint)"
echo "   (make demo again re-uses these runs; make demo-clean forgets them)"
