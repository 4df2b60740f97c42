#!/usr/bin/env bash
# Our CPU training step against PyTorch's official one (tools/bench_pytorch.py), side by side
# on this machine: the CIFAR MoCo + Un-Mix step (ResNet-18 width 64), alternating ours and
# PyTorch's, at fp32 and at bf16 (ours: precision bf16; PyTorch: --amp, bf16 autocast), for a
# few rounds. Prints the CPU's flags and kernels, a table of images/s, the SGEMM figure and our
# fp32 step's share of it, and ends with the two lines `ratio fp32 R` and `ratio bf16 R`
# (R = our images/s over PyTorch's, means over the rounds; "n/a" when torch is missing).
#
# usage: tools/bench-cpu.sh [--unmix PATH] [--python PATH] [--batch 64] [--steps 10]
#                           [--warmup 2] [--rounds 2] [--threads N] [--set KEY=VALUE ...]
# --set goes to our step only (a smaller model for a smoke test: the ratios then compare
# different models and mean nothing).
# PyTorch runs under --python PATH, else $PYTHON, else python3 from PATH (a virtual
# environment with torch and torchvision); without torch it times ours only and says so.
# Run it on an otherwise idle machine: the figures are timings.
set -euo pipefail
cd "$(dirname "$0")/.."
unmix=build/unmix
python=${PYTHON:-python3}
batch=64 steps=10 warmup=2 rounds=2 threads=$(nproc)
sets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --unmix) unmix=$2; shift 2 ;;
    --python) python=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --set) sets+=(--set "$2"); shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-cpu.sh: unknown argument '$1' (--help)" >&2; exit 2 ;;
  esac
done
for v in "$batch" "$steps" "$rounds" "$threads"; do
  [[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "bench-cpu.sh: expected a positive integer, got '$v'" >&2; exit 2; }
done
[[ "$warmup" =~ ^[0-9]+$ ]] || { echo "bench-cpu.sh: --warmup expects an integer >= 0, got '$warmup'" >&2; exit 2; }
# The manifest's SplitBatchNorm divides the batch into bn_splits groups (8, or --set model.bn_splits=K):
# refuse a batch it cannot split here, before any run, rather than after minutes of PyTorch timing.
splits=8
for kv in "${sets[@]}"; do
  case "$kv" in model.bn_splits=*) splits=${kv#model.bn_splits=} ;; esac
done
[[ "$splits" =~ ^[1-9][0-9]*$ ]] || { echo "bench-cpu.sh: model.bn_splits must be a positive integer, got '$splits'" >&2; exit 2; }
[ $((batch % splits)) = 0 ] || {
  echo "bench-cpu.sh: --batch $batch is not a multiple of the $splits BN splits (model.bn_splits) of the manifest" >&2
  exit 2
}
[ -x "$unmix" ] || { echo "bench-cpu.sh: no unmix binary at $unmix (build first, or --unmix PATH)" >&2; exit 2; }
export OMP_NUM_THREADS=$threads

have_torch=1
torch_why=""
if ! [ -x "$python" ] && ! command -v "$python" >/dev/null 2>&1; then
  have_torch=0 torch_why="no python at $python"
elif ! "$python" -c 'import torch, torchvision' >/dev/null 2>&1; then
  have_torch=0 torch_why="torch/torchvision cannot be imported by $python"
fi
[ $have_torch = 1 ] || echo "bench-cpu.sh: PyTorch missing ($torch_why): timing ours only; give a python with torch and torchvision by --python PATH or PYTHON=PATH" >&2

echo "== machine"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores, $threads threads"
echo "cpu flags (bf16/AMX): $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx512f|avx512_bf16|amx_bf16|amx_tile)$' | tr '\n' ' ')"
"$unmix" info | grep -E '^(blas|cpu fp32|cpu bf16|openmp):' || true
if [ $have_torch = 1 ]; then
  echo "pytorch: $("$python" -c 'import torch; print(torch.__version__, "oneDNN", torch.backends.mkldnn.is_available())')"
else
  echo "pytorch: missing ($torch_why): ours only, ratios n/a"
fi

manifest=configs/cifar10/moco_sym_unmix.yaml
declare -A sum cnt
sgemm_sum=0 share_sum=0 nshare=0
row() { printf '%-8s %-6s %-6s %12s %12s\n' "$@"; }
ips() { awk -v b="$batch" -v ms="$1" 'BEGIN {if (ms > 0) printf "%.3f", b * 1000 / ms; else print 0}'; } # images/s from ms/step
echo
echo "== runs (batch $batch, $steps steps after $warmup warm-up, $rounds rounds, alternating)"
row round impl prec "ms/step" "images/s"
for ((r = 1; r <= rounds; r++)); do
  for prec in fp32 bf16; do
    out=$("$unmix" bench step "$manifest" --batch "$batch" --steps "$steps" --warmup "$warmup" --set "precision=$prec" "${sets[@]}" 2>&1) || {
      echo "$out" >&2; echo "bench-cpu.sh: unmix bench step failed" >&2; exit 1; }
    ms=$(awk '/^ms\/step \(mean\)/ {print $NF}' <<<"$out")
    ips=$(ips "$ms")
    row "$r" ours "$prec" "$ms" "$ips"
    sum[ours_$prec]=$(awk -v a="${sum[ours_$prec]:-0}" -v b="$ips" 'BEGIN {print a + b}')
    cnt[ours_$prec]=$(( ${cnt[ours_$prec]:-0} + 1 ))
    if [ "$prec" = fp32 ]; then
      peak=$(awk '/^GEMM peak TFLOP\/s/ {print $NF}' <<<"$out")
      share=$(awk '/^share of GEMM peak/ {sub("%", "", $NF); print $NF}' <<<"$out")
      sgemm_sum=$(awk -v a="$sgemm_sum" -v b="$peak" 'BEGIN {print a + b}')
      share_sum=$(awk -v a="$share_sum" -v b="$share" 'BEGIN {print a + b}')
      nshare=$((nshare + 1))
    fi
    if [ $have_torch = 1 ]; then
      amp=(); [ "$prec" = bf16 ] && amp=(--amp)
      tout=$("$python" tools/bench_pytorch.py --device cpu --batch "$batch" --threads "$threads" --steps "$steps" \
               --warmup "$warmup" "${amp[@]}" 2>&1) || { echo "$tout" >&2; echo "bench-cpu.sh: bench_pytorch.py failed" >&2; exit 1; }
      tms=$(sed -n 's/.*ms\/step mean \([0-9.]*\).*/\1/p' <<<"$tout" | tail -1)
      tips=$(ips "$tms")
      row "$r" torch "$prec" "$tms" "$tips"
      sum[torch_$prec]=$(awk -v a="${sum[torch_$prec]:-0}" -v b="$tips" 'BEGIN {print a + b}')
      cnt[torch_$prec]=$(( ${cnt[torch_$prec]:-0} + 1 ))
    fi
  done
done

mean() { awk -v s="${sum[$1]:-0}" -v n="${cnt[$1]:-0}" 'BEGIN {if (n > 0) printf "%.3f", s / n; else print "n/a"}'; }
echo
echo "== means (images/s)"
printf '%-6s %12s %12s\n' prec ours pytorch
for prec in fp32 bf16; do printf '%-6s %12s %12s\n' "$prec" "$(mean ours_$prec)" "$(mean torch_$prec)"; done
echo
awk -v s="$sgemm_sum" -v f="$share_sum" -v n="$nshare" \
  'BEGIN {printf "sgemm %.3f TFLOP/s (2048^3, same runs); our fp32 step at %.1f%% of it\n", s / n, f / n}'
for prec in fp32 bf16; do
  o=$(mean ours_$prec) t=$(mean torch_$prec)
  if [ "$t" = n/a ] || [ "$o" = n/a ]; then echo "ratio $prec n/a"; else awk -v o="$o" -v t="$t" -v p="$prec" 'BEGIN {printf "ratio %s %.2f\n", p, o / t}'; fi
done
