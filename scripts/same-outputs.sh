#!/usr/bin/env bash
# Checks that two builds of gmvae train identically: the same small runs (seed 1, one thread)
# with each binary, then a byte comparison of what they wrote. For refactors that must change no
# numbers (issue 27): model.safetensors, checkpoint.safetensors and latent.safetensors byte for
# byte, metrics.csv but its `seconds` column, opts.json but `out_dir`, config.json as JSON, the
# predictions of `gmvae predict`, and a short Serket VAE+GMM+MLDA run but its timings.
#
#   scripts/same-outputs.sh OLD_BIN_DIR NEW_BIN_DIR [DATA_DIR]
#
# OLD_BIN_DIR / NEW_BIN_DIR hold a `gmvae` binary each (e.g. a copy of target/release from the
# commit before the change, and target/release now). DATA_DIR (default ../shared/data) holds
# mnist/ and serket/. Exit status 0 when every output is the same, 1 otherwise.
set -euo pipefail
old=$1 new=$2 data=${3:-../shared/data}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export RAYON_NUM_THREADS=1

runs() { # BIN OUT
  local b=$1 o=$2
  mkdir -p "$o"
  "$b/gmvae" spiral --epoch 30 --seed 1 --id spiral --out-dir "$o" >"$o/spiral.log"
  "$b/gmvae" mnist_fc --epoch 2 --train-size 2000 --seed 1 --data-dir "$data/mnist" --id mnist_fc --out-dir "$o" >"$o/mnist_fc.log"
  "$b/gmvae" mnist --epoch 1 --train-size 1000 --seed 1 --data-dir "$data/mnist" --id mnist --out-dir "$o" >"$o/mnist.log"
  "$b/gmvae" table --data "$here/experiments/own-data/iris.csv" --label-column species -K 3 --epoch 20 --seed 1 --id iris --out-dir "$o" >"$o/iris.log"
  "$b/gmvae" predict --run "$o/iris" --data "$here/experiments/own-data/iris.csv" --out "$o/iris-pred.csv" >"$o/iris-pred.log"
  "$b/gmvae" serket vae-gmm-mlda --data "$data/serket/VAE+GMM+MLDA/data.zip" --rounds 2 --epoch 5 --gmm-iters 10 --mlda-iters 10 --seed 1 --out-dir "$o/serket" >"$o/serket.log"
}
echo "training with $old ..." && runs "$old" "$work/old"
echo "training with $new ..." && runs "$new" "$work/new"

bad=0
same() { echo "same    $1"; }
differ() { echo "DIFFERS $1"; bad=1; }
csv_but_seconds() { python3 -c "import csv,sys; r=list(csv.reader(open(sys.argv[1]))); i=r[0].index('seconds'); [print(','.join(x[:i]+x[i+1:])) for x in r]" "$1"; }
json_equal() { python3 -c "import json,sys; sys.exit(json.load(open(sys.argv[1])) != json.load(open(sys.argv[2])))" "$1" "$2"; }
for r in spiral mnist_fc mnist iris; do
  for f in model.safetensors checkpoint.safetensors latent.safetensors done.json; do
    if cmp -s "$work/old/$r/$f" "$work/new/$r/$f"; then same "$r/$f"; else differ "$r/$f"; fi
  done
  if diff <(csv_but_seconds "$work/old/$r/metrics.csv") <(csv_but_seconds "$work/new/$r/metrics.csv") >/dev/null; then same "$r/metrics.csv (but seconds)"; else differ "$r/metrics.csv"; fi
  if diff <(grep -v '"out_dir"' "$work/old/$r/opts.json") <(grep -v '"out_dir"' "$work/new/$r/opts.json") >/dev/null; then same "$r/opts.json (but out_dir)"; else differ "$r/opts.json"; fi
  if json_equal "$work/old/$r/config.json" "$work/new/$r/config.json"; then same "$r/config.json (as JSON)"; else differ "$r/config.json"; fi
done
if cmp -s "$work/old/iris-pred.csv" "$work/new/iris-pred.csv"; then same "iris predictions"; else differ "iris predictions"; fi
if diff -r -x summary.json "$work/old/serket" "$work/new/serket" >/dev/null \
  && diff <(grep -v seconds "$work/old/serket/summary.json") <(grep -v seconds "$work/new/serket/summary.json") >/dev/null; then
  same "serket run (but timings)"
else
  differ "serket run"
fi
exit $bad
