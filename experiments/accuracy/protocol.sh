#!/usr/bin/env bash
# The MNIST accuracy protocol (issue 13): every (row, seed) run of the table, resumable across
# sessions. Each run trains to 100 epochs or until its *training lower bound* improves by less
# than 0.1% over 10 epochs (never by test accuracy). Runs that finished (done.json) are skipped,
# runs with a checkpoint are resumed, others start. WORKERS runs go at once, one thread each
# (one per core is the efficient use of a 2-core machine).
#
#   experiments/accuracy/protocol.sh                 # all rows, seeds 1-5
#   ROWS="fc-k16-m1" SEEDS="1 2" experiments/accuracy/protocol.sh
#   cargo run --release --bin accuracy_table -- experiments/accuracy/runs   # the table
#
# Environment: DATA_DIR (MNIST IDX files; default ../shared/data/mnist), OUT (run directories;
# default experiments/accuracy/runs), WORKERS (default 2), EPOCHS (default 100), GMVAE (binary),
# TAG (added to the run ids, for runs of a later recipe: `acc-ROW-TAG-sSEED`). A resumed run keeps
# the recipe in its opts.json; the table separates runs by learning rate and binarisation.
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA_DIR=${DATA_DIR:-../shared/data/mnist}
OUT=${OUT:-experiments/accuracy/runs}
WORKERS=${WORKERS:-2}
EPOCHS=${EPOCHS:-100}
SEEDS=${SEEDS:-"1 2 3 4 5"}
ROWS=${ROWS:-"fc-k16-m1 conv-k16-m1 fc-k10-m1 fc-k16-m10"}
GMVAE=${GMVAE:-target/release/gmvae}
[ -x "$GMVAE" ] || cargo build --release --locked --bin gmvae
mkdir -p "$OUT"

# row name -> preset and flags (the presets' defaults are the recipe under test)
row_args() {
  case "$1" in
    fc-k16-m1) echo "mnist_fc -K 16 --n-mc 1" ;;
    conv-k16-m1) echo "mnist -K 16 --n-mc 1" ;;
    fc-k10-m1) echo "mnist_fc -K 10 --n-mc 1" ;;
    fc-k16-m10) echo "mnist_fc -K 16 --n-mc 10" ;;
    conv-k10-m1) echo "mnist -K 10 --n-mc 1" ;;
    conv-k16-m10) echo "mnist -K 16 --n-mc 10" ;;
    *) echo "protocol.sh: unknown row $1" >&2; return 1 ;;
  esac
}

jobs_file=$(mktemp)
for seed in $SEEDS; do for row in $ROWS; do echo "$row $seed"; done; done > "$jobs_file"

run_one() {
  local row=$1 seed=$2 id="acc-$1${TAG:+-$TAG}-s$2"
  local dir="$OUT/$id" args
  args=$(row_args "$row")
  local preset=${args%% *} flags=${args#* }
  if [ -f "$dir/done.json" ]; then
    echo "[$id] finished earlier: $(tr -d '\n ' < "$dir/done.json")"
    return 0
  fi
  local common=(--threads 1 --epoch "$EPOCHS" --plateau-epochs 10 --plateau-tol 0.001)
  if [ -f "$dir/checkpoint.safetensors" ]; then
    echo "[$id] resuming"
    "$GMVAE" "$preset" --resume "$dir" --epoch "$EPOCHS" --threads 1 > "$dir.log.resume.$(date +%s)" 2>&1
  else
    echo "[$id] starting"
    # A run killed in its first epoch has no checkpoint yet: start it again from scratch.
    rm -rf "$dir"
    # shellcheck disable=SC2086
    "$GMVAE" "$preset" $flags --seed "$seed" --id "$id" --out-dir "$OUT" --data-dir "$DATA_DIR" \
      --visual-gen 0 "${common[@]}" > "$OUT/$id.log" 2>&1
  fi
  echo "[$id] exit $?"
}

worker() {
  local line
  while true; do
    # Claim the next job under a lock shared by the workers.
    line=$(flock "$jobs_file.lock" bash -c 'l=$(head -n 1 "$0"); [ -n "$l" ] && sed -i 1d "$0"; echo "$l"' "$jobs_file")
    [ -n "$line" ] || return 0
    # shellcheck disable=SC2086
    run_one $line || echo "[$line] failed"
  done
}

for _ in $(seq "$WORKERS"); do worker & done
wait
rm -f "$jobs_file" "$jobs_file.lock"
