#!/usr/bin/env bash
# Upstream-compatible launcher: ./run.sh <preset> [upstream camelCase flags] [--our-flags]
#   ./run.sh spiral -cvWeight 0.0
#   ./run.sh mnist_fc -K 10 -epoch 5 -_id try1
#   ./run.sh mnist_fc -epoch 1 --data-dir DIR
# Single-dash camelCase flags are translated to gmvae's kebab-case flags; --flags pass through
# unchanged. The release binary is built first if it is missing or older than the sources.
# Relative paths (--data, --data-dir, --out-dir, the default `experiments/`) resolve against the
# caller's working directory, as with the binary itself.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

usage() {
  echo "usage: ./run.sh <spiral|mnist_fc|mnist|svhn> [-upstreamFlag VALUE ...] [--gmvae-flag VALUE ...]" >&2
  exit 2
}
[ $# -ge 1 ] || usage
preset=$1; shift
case "$preset" in
  spiral|mnist_fc|mnist|svhn) ;;
  -h|--help) usage ;;
  *) echo "run.sh: unknown preset '$preset' (expected spiral, mnist_fc, mnist or svhn)" >&2; exit 2 ;;
esac

# upstream flag -> gmvae flag (gmvae-upstream.md §3)
flag_for() {
  case "$1" in
    seed) echo --seed ;;             learningRate) echo --learning-rate ;;
    batchSize) echo --batch-size ;;  optimiser) echo --optimiser ;;
    gpu) echo --gpu ;;               gpuID) echo --gpu-id ;;
    epoch) echo --epoch ;;           visualise2D) echo --visualise2d ;;
    xSize) echo --x-size ;;          wSize) echo --w-size ;;
    K) echo --k ;;                   hiddenSize) echo --hidden-size ;;
    zPriorWeight) echo --z-prior-weight ;;  ACC) echo --acc ;;
    visualGen) echo --visual-gen ;;  continuous) echo --continuous ;;
    inputDimension) echo --input-dimension ;;  network) echo --network ;;
    nChannels) echo --n-channels ;;  nFilters) echo --n-filters ;;
    nMC) echo --n-mc ;;              cvWeight) echo --cv-weight ;;
    _id) echo --id ;;                saveModel) echo --save-model ;;
    reportLowerBound) echo --report-lower-bound ;;  lambda) echo --lambda ;;
    *) return 1 ;;
  esac
}

args=()
while [ $# -gt 0 ]; do
  a=$1; shift
  case "$a" in
    --*) args+=("$a") ;;
    -dataSet)
      [ $# -ge 1 ] || { echo "run.sh: -dataSet needs a value" >&2; exit 2; }
      case "$preset:$1" in
        spiral:spiral|mnist_fc:mnist|mnist:mnist|svhn:svhn) shift ;;
        *) echo "run.sh: -dataSet $1 does not match preset '$preset'; choose the preset instead" >&2; exit 2 ;;
      esac ;;
    -?*)
      name=${a#-}
      if ! flag=$(flag_for "$name"); then
        echo "run.sh: unknown upstream flag '$a' (pass gmvae's own flags as --kebab-case; see ./run.sh $preset --help)" >&2
        exit 2
      fi
      [ $# -ge 1 ] || { echo "run.sh: $a needs a value" >&2; exit 2; }
      value=$1; shift
      if [ "$name" = gpuID ]; then
        # torch's device ids are 1-based, CUDA's 0-based.
        case "$value" in ''|*[!0-9]*|0) echo "run.sh: -gpuID takes a device number >= 1, found '$value'" >&2; exit 2 ;; esac
        value=$((value - 1))
      fi
      args+=("$flag" "$value") ;;
    *) args+=("$a") ;;
  esac
done

bin=${GMVAE_BIN:-$here/target/release/gmvae}
if [ -z "${GMVAE_BIN:-}" ] && { [ ! -x "$bin" ] || [ -n "$(find "$here/src" "$here/models/src" "$here/Cargo.toml" -newer "$bin" -print -quit 2>/dev/null)" ]; }; then
  echo "run.sh: building the release binary (cargo build --release)..." >&2
  cargo build --release --quiet --bin gmvae --manifest-path "$here/Cargo.toml"
fi
exec "$bin" "$preset" ${args[@]+"${args[@]}"}
