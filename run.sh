#!/usr/bin/env bash
# Upstream-compatible launcher: ./run.sh <preset> [upstream camelCase flags] [--our-flags]
#   ./run.sh spiral -cvWeight 0.0
#   ./run.sh mnist_fc -K 10 -epoch 5 -_id try1
#   ./run.sh mnist_fc -epoch 1 --data-dir DIR
# Single-dash camelCase flags are translated to gmvae's kebab-case flags; --flags pass through
# unchanged (the binary's `upstream-flags` lists the translations). The release binary is built
# first if it is missing or older than the sources.
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

bin=${GMVAE_BIN:-$here/target/release/gmvae}
if [ -z "${GMVAE_BIN:-}" ] && { [ ! -x "$bin" ] || [ -n "$(find "$here/src" "$here/models/src" "$here/Cargo.toml" -newer "$bin" -print -quit 2>/dev/null)" ]; }; then
  echo "run.sh: building the release binary (cargo build --release)..." >&2
  cargo build --release --quiet --bin gmvae --manifest-path "$here/Cargo.toml"
fi
# upstream flag -> gmvae flag (gmvae-upstream.md §3), from the binary's option table
upstream_flags=$("$bin" upstream-flags)
flag_for() {
  local up ours
  while read -r up ours; do
    if [ "$up" = "$1" ]; then echo "$ours"; return 0; fi
  done <<< "$upstream_flags"
  return 1
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

exec "$bin" "$preset" ${args[@]+"${args[@]}"}
