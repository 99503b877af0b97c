#!/usr/bin/env bash
# One command for whoever has a GPU (issue 32 item 3): builds the `cuda` binaries from the PyPI
# CUDA 13.0 wheels (any machine, no GPU), then, on a machine with a GPU, trains every preset for
# three epochs while sampling device memory and runs `bench --gpu --peer` against PyTorch.
# Recipe and why: ../shared/reference/candle-on-this-machine.md section 3. Everything it writes
# is under target/ (git-ignored).
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/gpu-check.sh [--build-only | --run-only] [options]

Build half (any machine, no GPU needed; needs cargo, gcc, python3 with venv, xz, ~2 GB disk):
  installs the CUDA 13.0 toolchain from PyPI wheels into target/cuda-toolchain/ (skipped when
  there), builds a link-time stub for the driver (libcuda), builds
  `cargo build --release -p gmvae --features cuda` into target/cuda/ (the CPU build in
  target/release/ is untouched), prints the build's wall time and packs the two binaries into
  target/cuda-pkg/gmvae-cuda.tar.xz for carrying to a device.

GPU half (needs nvidia-smi and a CUDA driver): every preset (spiral, mnist_fc, mnist conv, svhn
  when its data exists, table on a generated CSV) trains 3 epochs on --gpu 1 while device memory
  is sampled; "flat" = the peak during epoch 3 is within --tolerance MiB of the peak during
  epoch 2. Then `bench --gpu --peer` times the training step against PyTorch on the same GPU.
  Prints one table: preset, flat, peak MiB, ms/step ours, ms/step PyTorch, ratio.

Exit status: 0 when every half asked for ran (a preset that fails to train is reported in the
table, not here), 2 when the GPU half was asked for and there is no GPU, 1 on any other error.

Modes:
  (none)          build half, then the GPU half if nvidia-smi is present
  --build-only    build half only (proves the cuda build compiles on a CPU machine)
  --run-only      GPU half only, with binaries from target/cuda/release/ or, failing that,
                  unpacked from target/cuda-pkg/gmvae-cuda.tar.xz (for a device without cargo)

On a device machine that gets a copy of the working tree (no ../shared, no cargo): after the
build half here, copy the MNIST files into an ignored folder, carry both and run the GPU half:
  mkdir -p target/gpu-data && cp -r ../shared/data/mnist target/gpu-data/
  carry: target/cuda-pkg target/gpu-data
  command: scripts/gpu-check.sh --run-only --data-dir target/gpu-data/mnist
PyTorch for the peer is whatever `python3` imports there (the bench's --peer).
Options:
  --data-dir DIR     MNIST IDX files [default: ../shared/data/mnist]
  --svhn-dir DIR     SVHN .mat files [default: ../shared/data/svhn]; skipped with a note if absent
  --train-size N     training points per epoch for mnist_fc/mnist/svhn [default: 10000]
  --gpu-id N         CUDA device, 0-based [default: 0]
  --tolerance MIB    growth from epoch 2 to epoch 3 still called flat [default: 64]
  --compute-cap CC   CUDA_COMPUTE_CAP for the build [default: 90 = H100/H200]
  --out DIR          where runs and logs go [default: target/gpu-check]
  -h, --help         this text
Relative paths are taken from the repository root (the script changes into it).
EOF
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODE=all
DATA_DIR=../shared/data/mnist
SVHN_DIR=../shared/data/svhn
TRAIN_SIZE=10000
GPU_ID=0
TOL_MIB=64
COMPUTE_CAP=90
OUT=target/gpu-check

TOOLCHAIN=target/cuda-toolchain
CUDA_TARGET=target/cuda
PKG=target/cuda-pkg/gmvae-cuda.tar.xz
# The versions the reference tested; the device machines' driver 580 is CUDA 13.0, and PTX from a
# newer toolkit may not load on it.
WHEELS=(nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88
    nvidia-cuda-runtime==13.0.96 nvidia-cuda-nvrtc==13.0.88 nvidia-cuda-cccl==13.0.85
    'nvidia-cublas>=13.0,<13.1' nvidia-curand==10.4.0.35)

die() {
    echo "gpu-check: error: $*" >&2
    exit 1
}
say() { echo "gpu-check: $*" >&2; }

need_value() {
    [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value (see --help)"
}

parse_args() {
    while [[ $# -gt 0 ]]; do
        case $1 in
        --build-only) MODE=build ;;
        --run-only) MODE=run ;;
        --data-dir) need_value "$@"; DATA_DIR=$2; shift ;;
        --svhn-dir) need_value "$@"; SVHN_DIR=$2; shift ;;
        --train-size) need_value "$@"; TRAIN_SIZE=$2; shift ;;
        --gpu-id) need_value "$@"; GPU_ID=$2; shift ;;
        --tolerance) need_value "$@"; TOL_MIB=$2; shift ;;
        --compute-cap) need_value "$@"; COMPUTE_CAP=$2; shift ;;
        --out) need_value "$@"; OUT=$2; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument '$1'" ;;
        esac
        shift
    done
    local flag v
    for flag in train-size=TRAIN_SIZE gpu-id=GPU_ID tolerance=TOL_MIB compute-cap=COMPUTE_CAP; do
        v=${flag#*=}
        [[ ${!v} =~ ^[0-9]+$ ]] || die "--${flag%%=*} takes a non-negative integer, found '${!v}'"
    done
}

# ---------------------------------------------------------------- build half (no GPU needed)

# The wheels' nvidia/cu13 folder (bin/nvcc, include/, lib/, nvvm/).
cuda_home() {
    local d
    d=$(echo "$ROOT/$TOOLCHAIN"/venv/lib/python3*/site-packages/nvidia/cu13)
    [[ -d $d ]] || die "no nvidia/cu13 folder under $TOOLCHAIN/venv (toolchain install failed?)"
    echo "$d"
}

install_toolchain() {
    local venv=$TOOLCHAIN/venv
    if compgen -G "$venv/lib/python3*/site-packages/nvidia/cu13/bin/nvcc" >/dev/null; then
        say "CUDA toolchain already in $TOOLCHAIN (skipped)"
    else
        command -v python3 >/dev/null || die "python3 is needed to install the CUDA wheels"
        [[ -x $venv/bin/pip ]] || python3 -m venv "$venv" ||
            die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
        if [[ $(find "$TOOLCHAIN/wheels" -name '*.whl' 2>/dev/null | wc -l) -lt ${#WHEELS[@]} ]]; then
            say "downloading the CUDA 13.0 wheels (~650 MB) into $TOOLCHAIN/wheels"
            "$venv/bin/pip" download -q --no-deps -d "$TOOLCHAIN/wheels" "${WHEELS[@]}"
        fi
        say "installing the wheels (~1.2 GB)"
        "$venv/bin/pip" install -q --no-deps "$TOOLCHAIN"/wheels/*.whl
    fi
    local c
    c=$(cuda_home)
    # The linker looks for lib<name>.so; the wheels ship only the versioned names.
    for l in cudart cublas cublasLt nvrtc; do
        [[ -e $c/lib/lib$l.so ]] || ln -sf "lib$l.so.13" "$c/lib/lib$l.so"
    done
    [[ -e $c/lib/libcurand.so ]] || ln -sf libcurand.so.10 "$c/lib/libcurand.so"
}

cuda_env() {
    local c
    c=$(cuda_home)
    export PATH="$c/bin:$PATH" CUDA_HOME="$c" CUDA_PATH="$c" CUDA_COMPUTE_CAP="$COMPUTE_CAP"
    export CUDARC_CUDA_VERSION=13000 CARGO_TARGET_DIR="$ROOT/$CUDA_TARGET"
}

# libcuda is the driver, not on PyPI: link against a stub exporting the cu* symbols cudarc uses.
# Its file name is libcuda.so (link time only); the loader asks for libcuda.so.1, which on a
# device is the driver's, so the stub is never loaded there. It lives in the wheels' lib/,
# already on the link path, because changing RUSTFLAGS would rebuild everything, nvcc included.
build_stub() {
    local c rlib
    c=$(cuda_home)
    if [[ -e $c/lib/libcuda.so ]]; then
        say "libcuda link stub already built (skipped)"
        return
    fi
    rlib=$(find "$CUDA_TARGET/release/deps" -name 'libcudarc-*.rlib' | head -n 1)
    [[ -n $rlib ]] || die "no cudarc rlib under $CUDA_TARGET/release/deps after the library build"
    nm -u "$rlib" 2>/dev/null | awk '$1=="U"{print $2}' | grep -E '^cu[A-Z]' | sort -u |
        awk '{print "int " $1 "(void) { return 999; }"}' >"$TOOLCHAIN/libcuda-stub.c" || true
    [[ -s $TOOLCHAIN/libcuda-stub.c ]] || die "found no cu* symbols in $rlib for the libcuda stub"
    gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$c/lib/libcuda.so" "$TOOLCHAIN/libcuda-stub.c"
    say "libcuda link stub: $(wc -l <"$TOOLCHAIN/libcuda-stub.c") symbols"
}

build_half() {
    command -v cargo >/dev/null || die "cargo is needed for the build half (or use --run-only with a packed binary)"
    command -v gcc >/dev/null || die "gcc is needed for the libcuda link stub"
    mkdir -p "$TOOLCHAIN" "$(dirname "$PKG")"
    install_toolchain
    cuda_env
    local t0 t1
    t0=$(date +%s)
    # The library first: it compiles cudarc and the kernels (nvcc) without linking -lcuda, so the
    # stub can be made from cudarc's symbols before the binaries link.
    cargo build --release -p gmvae --features cuda --lib
    build_stub
    cargo build --release -p gmvae --features cuda --bin gmvae --bin bench
    t1=$(date +%s)
    local g=$CUDA_TARGET/release/gmvae b=$CUDA_TARGET/release/bench
    say "cuda build: $((t1 - t0)) s wall (cargo, from the toolchain being in place)"
    if [[ -f $PKG && $PKG -nt $g && $PKG -nt $b ]]; then
        say "$PKG is newer than the binaries (packing skipped)"
    else
        tar -C "$CUDA_TARGET/release" -cJf "$PKG" gmvae bench
    fi
    say "binaries: gmvae $(du -m "$g" | cut -f1) MiB, bench $(du -m "$b" | cut -f1) MiB;" \
        "packed: $PKG $(du -m "$PKG" | cut -f1) MiB"
}

# ---------------------------------------------------------------- GPU half

BIN=""

find_binaries() {
    if [[ -x $CUDA_TARGET/release/gmvae && -x $CUDA_TARGET/release/bench ]]; then
        BIN=$CUDA_TARGET/release
    elif [[ -f $PKG ]]; then
        BIN=$OUT/bin
        mkdir -p "$BIN"
        tar -C "$BIN" -xJf "$PKG"
    else
        die "no cuda binaries in $CUDA_TARGET/release and no $PKG: run the build half first"
    fi
}

# cuBLAS/cuRAND/cudart 13 from the machine's nvidia Python packages (PyTorch's), else from our
# wheels; libcuda.so.1 is the driver's.
gpu_libs() {
    local d=""
    d=$(python3 -c "import nvidia, glob, os; print(':'.join(sorted({os.path.dirname(f) for p in nvidia.__path__ for f in glob.glob(p + '/**/lib*.so*', recursive=True)})))" 2>/dev/null) || true
    if [[ -z $d ]] && compgen -G "$TOOLCHAIN/venv/lib/python3*/site-packages/nvidia/cu13/lib" >/dev/null; then
        d=$(cuda_home)/lib
    fi
    export LD_LIBRARY_PATH="${d}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
}

mem_used() {
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i "$GPU_ID" | head -n 1 | tr -d ' '
}

# A CSV of 4 Gaussian blobs in 10 columns, 20000 rows, with a label column (fixed seed).
make_table_csv() {
    awk -v n=20000 'BEGIN {
        srand(7); printf "label"; for (j = 0; j < 10; j++) printf ",f%d", j; print ""
        for (i = 0; i < n; i++) { c = i % 4; printf "%d", c
            for (j = 0; j < 10; j++) {
                u = rand(); if (u < 1e-12) u = 1e-12
                printf ",%.5f", 3 * ((c + j) % 4) + sqrt(-2 * log(u)) * cos(6.283185307 * rand())
            }
            print "" } }' >"$1"
}

# Trains one preset for 3 epochs while sampling memory every 0.5 s with the number of finished
# epochs (metrics.csv rows). Appends "preset flat peak_mib ms_step_run" to $OUT/memory.txt.
train_traced() {
    local name=$1
    shift
    local dir=$OUT/runs id=$name log=$OUT/$name.log trace=$OUT/$name.mem
    rm -rf "${dir:?}/$id"
    mkdir -p "$dir"
    local base
    base=$(mem_used)
    say "$name: training 3 epochs on --gpu 1 (log $log)"
    "$BIN/gmvae" "$@" --gpu 1 --gpu-id "$GPU_ID" --epoch 3 --pretrain-epochs 0 --visual-gen 0 \
        --id "$id" --out-dir "$dir" >"$log" 2>&1 &
    local pid=$! rows
    : >"$trace"
    while kill -0 "$pid" 2>/dev/null; do
        rows=0
        [[ -f $dir/$id/metrics.csv ]] && rows=$(($(wc -l <"$dir/$id/metrics.csv") - 1))
        echo "$rows $(($(mem_used) - base))" >>"$trace"
        sleep 0.5
    done
    if ! wait "$pid"; then
        say "$name: training FAILED (last lines of $log):"
        tail -n 5 "$log" >&2
        echo "$name failed - - " >>"$OUT/memory.txt"
        return
    fi
    # Steps an epoch as the run's progress lines say ("epoch 3 150/200 steps"), else the estimate.
    local steps
    steps=$(grep -oE '[0-9]+/[0-9]+ steps' "$log" | tail -n 1 | sed -E 's|.*/([0-9]+) steps|\1|' || true)
    # flat: peak while epoch 3 ran (2 rows written) vs peak while epoch 2 ran (1 row).
    # ms/step of the run: epoch 3's training seconds (metrics.csv "seconds") over its steps.
    awk -v name="$name" -v tol="$TOL_MIB" -v m="$dir/$id/metrics.csv" -v steps="${steps:-$STEPS}" '
        { if ($2 > peak) peak = $2; if ($1 == 1 && $2 > e2) e2 = $2; if ($1 == 2 && $2 > e3) e3 = $2 }
        END {
            FS = ","; while ((getline line < m) > 0) { n = split(line, f, ",")
                if (line ~ /^epoch/) { for (i = 1; i <= n; i++) if (f[i] == "seconds") col = i }
                else if (col) secs = f[col] }
            flat = (e2 == "" || e3 == "") ? "unknown" : (e3 - e2 <= tol ? "yes" : "no")
            printf "%s %s %d %s\n", name, flat, peak, (secs != "" && steps > 0) ? sprintf("%.2f", 1000 * secs / steps) : "-"
        }' "$trace" >>"$OUT/memory.txt"
}

gpu_half() {
    if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
        [[ $MODE == all ]] && say "the build half succeeded ($PKG)."
        say "no GPU here (nvidia-smi missing or it lists no device): the GPU half needs a machine" \
            "with a GPU (see --help: carry target/cuda-pkg, run --run-only there)"
        exit 2
    fi
    find_binaries
    gpu_libs
    mkdir -p "$OUT"
    : >"$OUT/memory.txt"
    nvidia-smi -L -i "$GPU_ID" >&2
    [[ -f $DATA_DIR/train-images-idx3-ubyte.gz || -f $DATA_DIR/train-images-idx3-ubyte ]] ||
        die "no MNIST under --data-dir $DATA_DIR (train-images-idx3-ubyte[.gz] expected)"
    local notes=()
    # About 200 steps an epoch for every preset.
    STEPS=200
    train_traced spiral spiral --spiral-points 40000
    STEPS=$(((TRAIN_SIZE + 49) / 50))
    train_traced mnist_fc mnist_fc --data-dir "$DATA_DIR" --train-size "$TRAIN_SIZE"
    train_traced mnist mnist --data-dir "$DATA_DIR" --train-size "$TRAIN_SIZE"
    if [[ -f $SVHN_DIR/train_32x32.mat && -f $SVHN_DIR/test_32x32.mat ]]; then
        STEPS=$(((TRAIN_SIZE + 127) / 128))
        train_traced svhn svhn --data-dir "$SVHN_DIR" --train-size "$TRAIN_SIZE"
    else
        notes+=("svhn skipped: no train_32x32.mat/test_32x32.mat under --svhn-dir $SVHN_DIR")
    fi
    make_table_csv "$OUT/table.csv"
    STEPS=200
    train_traced table table --data "$OUT/table.csv" --label-column label -K 4

    local presets=(spiral mnist_fc mnist)
    presets+=(svhn) # bench uses random data of the preset's shape: no files needed
    say "bench --gpu --peer ${presets[*]} (log $OUT/bench.log)"
    if ! "$BIN/bench" --gpu --peer "${presets[@]}" >"$OUT/bench.log" 2>&1; then
        notes+=("bench --gpu --peer failed (see $OUT/bench.log); ms/step for the trained presets below come from the training runs")
        tail -n 5 "$OUT/bench.log" >&2
    fi

    # One table. ms/step: bench's (the training step on random data of the preset's shape), or,
    # where bench has no row (table, or bench failed), epoch 3's training time over its steps.
    echo
    echo "| preset | flat | peak MiB | ms/step ours | ms/step PyTorch | ours ÷ PyTorch |"
    echo "|---|---|---|---|---|---|"
    local name flat peak run_ms ours peer ratio row
    while read -r name flat peak run_ms; do
        row=$(awk -F'|' -v p="$name" '{ gsub(/ /, "", $2) } $2 == p { print $5 "|" $6 }' "$OUT/bench.log" | head -n 1)
        if [[ -n $row ]]; then
            ours=$(echo "${row%%|*}" | awk -F/ '{ gsub(/ /, ""); print $1 }')
            peer=$(echo "${row%%|*}" | awk -F/ '{ gsub(/ /, ""); print $2 }')
            ratio=$(echo "${row#*|}" | tr -d ' ')
        else
            ours=$run_ms peer="-" ratio="-"
            [[ $run_ms == - ]] || ours="$run_ms (run)"
        fi
        echo "| $name | $flat | $peak | $ours | ${peer:--} | ${ratio:--} |"
    done < <(
        cat "$OUT/memory.txt"
        # Presets bench timed that did not train here (svhn without its data).
        for name in "${presets[@]}"; do
            grep -q "^$name " "$OUT/memory.txt" || echo "$name not-trained - -"
        done
    )
    echo
    echo "flat: peak device memory during epoch 3 within $TOL_MIB MiB of epoch 2's; peak MiB above"
    echo "the device's use before the run. ms/step from bench --gpu --peer; '(run)': epoch 3 of the"
    echo "training run (training time over steps; no PyTorch peer for it). Logs: $OUT/"
    for n in "${notes[@]}"; do echo "note: $n"; done
}

main() {
    parse_args "$@"
    cd "$ROOT"
    case $MODE in
    build) build_half ;;
    run) gpu_half ;;
    all) build_half && gpu_half ;;
    esac
}

main "$@"; exit $?
