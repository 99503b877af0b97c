#!/usr/bin/env bash
# The MNIST accuracy protocol (issue 13): every (row, seed) run of the table, resumable across
# sessions. Each run trains to 100 epochs or until its *training lower bound* improves by less
# than 0.1% over 10 epochs (never by test accuracy). Runs that finished (done.json) are skipped,
# runs with a checkpoint are resumed, others start. WORKERS runs go at once, one thread each
# (one per core is the efficient use of a 2-core machine).
#
#   experiments/accuracy/protocol.sh                 # all rows, seeds 1-5
#   ROWS="fc-k16-m1" SEEDS="1 2" experiments/accuracy/protocol.sh
#   experiments/accuracy/protocol.sh snapshot        # only copy the runs' records (below)
#   cargo run --release --bin accuracy_table -- experiments/accuracy/results   # the table
#
# The run directories hold ~120 MB of checkpoint each and are not committed, so a new machine
# loses them. Their records (opts.json, metrics.csv, done.json: a few KB) are copied to RESULTS
# (committed) when the script starts, every 10 minutes while it runs and when each run ends;
# `accuracy_table` reads either directory. A run that has only its record cannot resume, but its
# curve and its row of the table survive.
#
# Environment: DATA_DIR (MNIST IDX files; default ../shared/data/mnist), OUT (run directories;
# default experiments/accuracy/runs), WORKERS (default 2), EPOCHS (default 100), GMVAE (binary),
# TAG (added to the run ids, for runs of a later recipe: `acc-ROW-TAG-sSEED`). A resumed run keeps
# the recipe in its opts.json; the table separates runs by learning rate and binarisation.
# FLAGS: more flags for every run that starts (a variant row; give it a TAG), e.g.
# `FLAGS="--x-size 10" TAG=x10`. RESULTS (default experiments/accuracy/results): the records;
# SNAPSHOT_EVERY: seconds between their copies while runs go on (default 600).
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA_DIR=${DATA_DIR:-../shared/data/mnist}
OUT=${OUT:-experiments/accuracy/runs}
RESULTS=${RESULTS:-experiments/accuracy/results}

# Copies each run's record from OUT to RESULTS/<id>/. Each file goes through a temporary name of
# its own copier and a rename, so a record is never half-written even when the periodic copy and
# a worker's overlap; an unchanged file is not copied again. A failed copy is reported, not fatal.
# A run of restarts (`--n-init`) is copied with its restarts.json and each restart's record
# (`ID/restarts/R/`), so that the table can follow the kept restart while it trains.
snapshot() {
  local dir id f tmp
  for dir in "$OUT"/*/ "$OUT"/*/restarts/*/; do
    dir=${dir%/}
    [ -f "$dir/opts.json" ] || continue
    id=${dir#"$OUT"/}
    mkdir -p "$RESULTS/$id"
    for f in opts.json metrics.csv done.json restarts.json; do
      if [ ! -f "$dir/$f" ]; then
        # A run resumed to more epochs drops its done.json (a restart trained on after the
        # choice drops the one of the choice's epoch): so does its record.
        [ "$f" = done.json ] && rm -f "$RESULTS/$id/$f"
        continue
      fi
      if [ ! -f "$RESULTS/$id/$f" ] || [ "$dir/$f" -nt "$RESULTS/$id/$f" ]; then
        tmp="$RESULTS/$id/.$f.$BASHPID.tmp"
        { cp -p "$dir/$f" "$tmp" && mv -f "$tmp" "$RESULTS/$id/$f"; } ||
          echo "protocol.sh: could not copy $dir/$f to $RESULTS/$id" >&2
      fi
    done
  done
}

case "${1:-}" in
  "") ;;
  snapshot) snapshot; exit 0 ;;
  *) echo "protocol.sh: unknown argument \`$1\` (expected none or \`snapshot\`)" >&2; exit 2 ;;
esac
WORKERS=${WORKERS:-2}
EPOCHS=${EPOCHS:-100}
SEEDS=${SEEDS:-"1 2 3 4 5"}
ROWS=${ROWS:-"fc-k16-m1 conv-k16-m1 fc-k10-m1 fc-k16-m10"}
GMVAE=${GMVAE:-target/release/gmvae}
[ -x "$GMVAE" ] || cargo build --release --locked --bin gmvae
mkdir -p "$OUT" "$RESULTS"

# row name -> preset and flags (the presets' defaults are the recipe under test)
row_args() {
  case "$1" in
    fc-k16-m1) echo "mnist_fc -K 16 --n-mc 1" ;;
    conv-k16-m1) echo "mnist -K 16 --n-mc 1" ;;
    fc-k10-m1) echo "mnist_fc -K 10 --n-mc 1" ;;
    fc-k16-m10) echo "mnist_fc -K 16 --n-mc 10" ;;
    fc-k10-m10) echo "mnist_fc -K 10 --n-mc 10" ;;
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
  # A run of restarts keeps its checkpoints in its restarts' directories.
  if [ -f "$dir/checkpoint.safetensors" ] || compgen -G "$dir/restarts/*/checkpoint.safetensors" > /dev/null; then
    echo "[$id] resuming"
    "$GMVAE" "$preset" --resume "$dir" --epoch "$EPOCHS" --threads 1 > "$dir.log.resume.$(date +%s)" 2>&1
  else
    echo "[$id] starting"
    # A run killed in its first epoch has no checkpoint yet: start it again from scratch.
    rm -rf "$dir"
    # shellcheck disable=SC2086
    "$GMVAE" "$preset" $flags ${FLAGS:-} --seed "$seed" --id "$id" --out-dir "$OUT" --data-dir "$DATA_DIR" \
      --visual-gen 0 "${common[@]}" > "$OUT/$id.log" 2>&1
  fi
  local rc=$?
  snapshot
  echo "[$id] exit $rc"
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

# Records also while the runs go on: a session that ends mid-run keeps the epochs it trained.
# (The sleep is killed with its loop: a stray one would hold the script's output open.)
snapshot_every() {
  local sleeper=""
  trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
  while true; do
    sleep "${SNAPSHOT_EVERY:-600}" &
    sleeper=$!
    wait "$sleeper"
    snapshot
  done
}
snapshot
snapshot_every &
snapshotter=$!
trap 'kill "$snapshotter" 2>/dev/null || true' EXIT
workers=()
for _ in $(seq "$WORKERS"); do worker & workers+=($!); done
wait "${workers[@]}"
snapshot
rm -f "$jobs_file" "$jobs_file.lock"
