#!/usr/bin/env bash
# `make figures`: draws every paper figure whose inputs exist, from CSV files alone (runs'
# metrics.csv / lincls.csv / tsne.csv, the hist CSV, the tables of `unmix collect`), with the
# gnuplot scripts in plots/ (PNG + SVG each). A figure none of whose runs exists is skipped
# with a note saying which target makes it. Runs the t-SNE and histogram evaluations first.
# Environment: UNMIX, OUT (tables), RUNS, FIGS (output), TAG (title note, e.g. smoke),
# TSNE_CMD / HIST_CMD (templates, see Makefile.paper).
set -euo pipefail

UNMIX=${UNMIX:-build/unmix}
OUT=${OUT:-results}
RUNS=${RUNS:-$OUT/runs}
FIGS=${FIGS:-$OUT/figures}
TAG=${TAG:-}
TSNE_CMD=${TSNE_CMD:-$UNMIX tsne \{run\}/checkpoint.safetensors --out \{run\}}
HIST_CMD=${HIST_CMD:-$UNMIX hist \{ckpts\} --out \{out\}}
here=$(cd "$(dirname "$0")" && pwd)

command -v gnuplot >/dev/null || { echo "figures: error: gnuplot is not installed (make deps installs gnuplot-nox)" >&2; exit 1; }
mkdir -p "$FIGS"
made=()
skipped=()

plot() { # SCRIPT OUTNAME "gnuplot -e assignments"
  local script=$1 name=$2 vars=$3
  echo "+ gnuplot -e \"$vars; out='$FIGS/$name'; tag='$TAG'\" plots/$script.gp"
  gnuplot -e "$vars; out='$FIGS/$name'; tag='$TAG'" "plots/$script.gp" || {
    echo "figures: error: plots/$script.gp failed" >&2
    exit 1
  }
  made+=("$FIGS/$name.png" "$FIGS/$name.svg")
}
any_file() { # FILE... -> true when one exists
  local f
  for f in "$@"; do [ -f "$f" ] && return 0; done
  return 1
}
finished() { [ -f "$1/status.yaml" ] && grep -q '^status: finished' "$1/status.yaml"; }

# Figure 2: loss and kNN curves, MoCo / SimCLR / BYOL vs + Un-Mix, CIFAR-10 and CIFAR-100
if any_file "$RUNS"/cifar{10,100}_{moco_sym,moco_asym,simclr,byol}{,_unmix}/metrics.csv; then
  plot fig2_cifar_curves fig2_cifar_curves "runs='$RUNS'"
else
  skipped+=("fig2_cifar_curves (make reproduce-cifar10 / reproduce-cifar100)")
fi

# Figure 3: linear top-1/top-5 vs epoch, ImageNet MoCo v2 +- Un-Mix
if any_file "$RUNS"/imagenet_mocov2{,_unmix}_200/lincls.csv; then
  plot fig3_lincls fig3_lincls "runs='$RUNS'"
else
  skipped+=("fig3_lincls (make reproduce-imagenet, with unmix lincls)")
fi

# Figure 4: t-SNE of CIFAR-10 test features, MoCo vs + Un-Mix
for r in cifar10_moco_sym cifar10_moco_sym_unmix; do
  if finished "$RUNS/$r"; then
    "$here/run_row.sh" eval tsne "$RUNS/$r" tsne.csv --optional -- "$TSNE_CMD"
  fi
done
if any_file "$RUNS"/cifar10_moco_sym{,_unmix}/tsne.csv; then
  plot fig4_tsne fig4_tsne "moco='$RUNS/cifar10_moco_sym/tsne.csv'; unmix='$RUNS/cifar10_moco_sym_unmix/tsne.csv'"
else
  skipped+=("fig4_tsne (make reproduce-cifar10, with unmix tsne)")
fi

# Figure 5: weight histograms of the same two checkpoints
ckpts=()
for r in cifar10_moco_sym cifar10_moco_sym_unmix; do
  if finished "$RUNS/$r" && [ -f "$RUNS/$r/checkpoint.safetensors" ]; then ckpts+=("$RUNS/$r/checkpoint.safetensors"); fi
done
if [ ${#ckpts[@]} -gt 0 ]; then
  if "$UNMIX" hist --help >/dev/null 2>&1; then
    printf -v qc '%q ' "${ckpts[@]}"
    printf -v qo '%q' "$FIGS/fig5_hist.csv"
    cmd=${HIST_CMD//\{ckpts\}/$qc}
    cmd=${cmd//\{out\}/$qo}
    echo "+ $cmd"
    eval "$cmd" || { echo "figures: error: '$cmd' failed" >&2; exit 1; }
  else
    echo "== note: this unmix ($UNMIX) has no 'hist' command yet; no weight histograms"
  fi
fi
if [ -f "$FIGS/fig5_hist.csv" ]; then
  plot fig5_hist fig5_hist "in='$FIGS/fig5_hist.csv'"
else
  skipped+=("fig5_hist (make reproduce-cifar10, with unmix hist)")
fi

# SwAV accuracy vs epochs, ours next to the paper's (both tables)
has_ours() { # TABLE.csv -> true when a row has our number
  [ -f "$1" ] && awk -F, 'NR==1{for(i=1;i<=NF;i++) if($i=="ours") o=i; next} o && $o!="" {n++} END{exit !(n>0)}' "$1"
}
for t in repo paper; do
  if has_ours "$OUT/swav-cifar-$t.csv"; then
    plot swav_epochs "swav_epochs_$t" "in='$OUT/swav-cifar-$t.csv'"
  else
    skipped+=("swav_epochs_$t (make reproduce-swav-cifar10 / reproduce-swav-cifar100)")
  fi
done

# Sweeps of P and beta
for s in prob beta; do
  if has_ours "$OUT/sweep-$s.csv"; then
    plot "sweep_$s" "sweep_$s" "in='$OUT/sweep-$s.csv'; ref='$OUT/cifar-moco.csv'"
  else
    skipped+=("sweep_$s (make sweep-$s)")
  fi
done

echo "== figures in $FIGS:"
for f in "${made[@]}"; do echo "   $f"; done
if [ ${#skipped[@]} -gt 0 ]; then
  echo "== not drawn (no run yet):"
  for s in "${skipped[@]}"; do echo "   $s"; done
fi
