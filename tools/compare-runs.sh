#!/usr/bin/env bash
# Bit-identity check of a refactor: trains the same small Fashion-MNIST runs (MoCo symmetric +
# Un-Mix, SwAV + Un-Mix with its queue and prototype freezing exercised, SimCLR and BYOL + Un-Mix
# with Adam and the warmup) with two unmix
# binaries on this machine, then compares metrics.csv without its timing columns
# (images_per_s, seconds), steps.csv, and every tensor of checkpoint.safetensors (the
# checkpoint's metadata carries the build's commit and time, so its bytes differ by design).
#
# usage: tools/compare-runs.sh OLD_UNMIX NEW_UNMIX CONFIG_DIR [WORK_DIR]
#   CONFIG_DIR: the configs/ tree both binaries read (use the old one's, so both get the same
#   manifest). Exit 0 when every run matches, 1 otherwise. ONLY=LABEL runs one of them
#   (moco, moco_asym, swav, simclr, byol).
set -euo pipefail
old=${1:?usage: $0 OLD_UNMIX NEW_UNMIX CONFIG_DIR [WORK_DIR]}
new=${2:?usage}
cfgdir=${3:?usage}
work=${4:-$(mktemp -d /tmp/compare-runs.XXXXXX)}
mkdir -p "$work"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} # the CPU backend is bit-identical for one thread count

common=(--set data.dataset=fashion-mnist --set data.channels=3 --set data.pad_to=32 --set data.subset=512
        --set data.workers=2 --set model.width=8 --set train.epochs=2 --set train.steps_per_epoch=3
        --set knn.every=1 --set knn.bank_subset=256 --set knn.test_subset=128 --quiet)
runs=(
  "moco|fmnist/moco_sym_unmix.yaml|--set optim.batch_size=32 --set moco.K=192"
  "moco_asym|fmnist/moco_sym_unmix.yaml|--set optim.batch_size=32 --set moco.K=96 --set moco.symmetric=false"
  "swav|swav_cifar10/swav_unmix.yaml|--set optim.batch_size=32 --set swav.queue_length=64 --set swav.epoch_queue_starts=1 --set swav.freeze_prototypes_niters=2 --set schedule.warmup_epochs=1"
  "simclr|cifar10/simclr_unmix.yaml|--set optim.batch_size=32 --set model.hidden=64 --set schedule.warmup_iters=2"
  "byol|cifar10/byol_unmix.yaml|--set optim.batch_size=32 --set model.hidden=64 --set schedule.warmup_iters=2"
)

compare_tensors() { # a.safetensors b.safetensors: every tensor's dtype, shape and bytes
  python3 - "$1" "$2" <<'PY'
import json, struct, sys
def load(p):
    b = open(p, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    h = json.loads(b[8:8 + n])
    meta = h.pop('__metadata__', {})
    return {k: (v['dtype'], v['shape'], b[8 + n + v['data_offsets'][0]:8 + n + v['data_offsets'][1]])
            for k, v in h.items()}, meta
a, ma = load(sys.argv[1]); b, mb = load(sys.argv[2])
bad = sorted(set(a) ^ set(b)) + [k for k in a if k in b and a[k] != b[k]]
diff_meta = sorted(k for k in set(ma) | set(mb) if ma.get(k) != mb.get(k))
print(f"    tensors: {len(a)} vs {len(b)}, differing: {len(bad)} {bad[:5]}")
print(f"    metadata keys that differ: {diff_meta}")
sys.exit(1 if bad else 0)
PY
}
strip_timing() { # metrics.csv without images_per_s and seconds
  python3 - "$1" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline='')))
keep = [i for i, c in enumerate(rows[0]) if c not in ('images_per_s', 'seconds')]
for r in rows: print(','.join(r[i] for i in keep))
PY
}

status=0
for spec in "${runs[@]}"; do
  IFS='|' read -r label manifest extra <<<"$spec"
  [ -n "${ONLY:-}" ] && [ "$ONLY" != "$label" ] && continue
  for side in old new; do
    bin=$old; [ $side = new ] && bin=$new
    rm -rf "${work:?}/$side-$label"
    # shellcheck disable=SC2086
    "$bin" train "$cfgdir/$manifest" "${common[@]}" $extra --out "$work/$side-$label" >"$work/$side-$label.log" 2>&1 ||
      { echo "$label: $side run failed (see $work/$side-$label.log)"; status=1; continue 2; }
  done
  echo "$label ($manifest $extra):"
  if diff <(strip_timing "$work/old-$label/metrics.csv") <(strip_timing "$work/new-$label/metrics.csv") >/dev/null &&
     cmp -s "$work/old-$label/steps.csv" "$work/new-$label/steps.csv"; then
    echo "    metrics.csv (minus timing) and steps.csv: identical ($(($(wc -l <"$work/new-$label/metrics.csv") - 1)) epochs)"
  else
    echo "    metrics.csv or steps.csv DIFFER:"; diff <(strip_timing "$work/old-$label/metrics.csv") \
      <(strip_timing "$work/new-$label/metrics.csv") | head -8 || true; status=1
  fi
  if cmp -s "$work/old-$label/checkpoint.safetensors" "$work/new-$label/checkpoint.safetensors"; then
    echo "    checkpoint.safetensors: byte-identical"
  else
    echo "    checkpoint.safetensors: bytes differ; comparing tensors"
    compare_tensors "$work/old-$label/checkpoint.safetensors" "$work/new-$label/checkpoint.safetensors" || status=1
  fi
done
echo "work dir: $work"
[ $status = 0 ] && echo "ALL RUNS IDENTICAL" || echo "SOME RUNS DIFFER"
exit $status
