"""The own-data benchmark suite (issue 28): GMVAE's `table` preset beside classical and deep
clustering baselines on real labelled data sets, each with one fixed, seeded train/test split.

    python3 experiments/own-data/suite.py [--sets digits breast_cancer wine iris penguins mnist]
        [--methods gmvae kmeans gmm-full gmm-diag ...] [--seeds 1 2 3 4 5]
        [--recipe default] [--recipe-flags NAME='--scale minmax ...'] [--n-init 1 3 5]
        [--jobs 2] [--gmvae /work/bin/gmvae-4b5caf4] [--ae-flags='--scale minmax'] [--tag T]

Sets (labels are held out of training; they only score the clusters):
  digits, breast_cancer, wine, iris: scikit-learn's bundled copies (load_*), features as shipped.
  penguins: the palmerpenguins package's bundled CSV (4 measurements, 3 species; rows with a
            missing measurement dropped), when the package is installed.
  mnist:    the 70k x 784 IDX files of ../shared/data/mnist as one table, float32 raw 0..255 as a
            user would have them, written as .npy (label in the last column).
Every set is split once: numpy default_rng(--split-seed).permutation, 20% held out.

Methods (all fitted on the training rows, scored on the test rows):
  gmvae           `gmvae table --data train --label-column label -K <classes> --seed S
                  --test-fraction 0 <recipe flags>` then `gmvae predict --run RUN --data test`.
                  A recipe is one entry of RECIPES (or --recipe-flags): a list of extra flags,
                  the same on every set. An entry of RULES (e.g. rule-pre100) emulates a
                  proposed `--scale auto` rule: one recipe for tables whose training values are
                  all non-negative integers (intensities, counts), another for the rest.
  kmeans          KMeans(n_init=10) on the raw features; kmeans-std on standardized features.
  gmm-full/-diag  GaussianMixture(covariance_type=full|diag) on the raw features (-std: scaled).
  ae-kmeans/ae-gmm  our autoencoder's codes: `gmvae table ... --pretrain-epochs P --epoch 1`
                  (the pretrain path's q(x|y) mean, Dx=10, after one GMVAE epoch since --epoch 0
                  is refused), codes from `gmvae predict`'s x_mean columns, then
                  KMeans(n_init=10) / GaussianMixture(full).
  umap-gmm        N2D's second half on standardized features: UMAP(n_components=K,
                  n_neighbors=20, min_dist=0) then GaussianMixture(full); needs umap-learn.

--n-init N emulates `gmvae table --n-init N --restart-choice bound` with single runs: for model
seed S the restarts are seeds S, S+100, ..., S+100(N-1), and the one with the highest final
training lower bound (metrics.csv, no labels) is kept. The report says how often that is the
restart that the test labels would have picked (best Hungarian accuracy). Give the recipe
`--n-init 1` for these single runs with a binary whose table default trains 5 restarts (since the
agreement rule; `restart_choice.py` emulates that rule on the same runs); the plain recipe
`default` then runs the binary's own restarts.

Scores: Hungarian (one-to-one) accuracy, NMI (arithmetic), ARI; mean ± std over seeds (np.std,
population form). Outputs in --out-dir: data/ (the split tables), runs/ (GMVAE run directories,
reused when finished, continued with `gmvae table --resume` when interrupted), results-T.json /
results-T.csv (one row per set, method, seed, with the command), summary-T.md (the tables). Every gmvae run gets --threads 1 and `nice -n 10`.
scikit-learn and umap-learn are for evaluation only.
"""
import argparse
import concurrent.futures as cf
import csv
import gzip
import json
import os
import shlex
import subprocess
import sys
import time

# One BLAS/OpenMP thread: on a busy 2-core machine more threads spin and stall for minutes.
for v in ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"]:
    os.environ.setdefault(v, "1")

import numpy as np  # noqa: E402
from scipy.optimize import linear_sum_assignment  # noqa: E402
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# Named recipes: the extra flags of `gmvae table` (never per set). "default" is the preset as a
# user gets it. More can be given with --recipe-flags NAME='FLAGS'.
RECIPES = {
    "default": [],
    "minmax": ["--scale", "minmax"],
    "standardize": ["--scale", "standardize"],
    "mnist-recipe": ["--scale", "minmax", "--pretrain-epochs", "20", "--objective", "v2",
                     "--lambda", "0", "--cv-weight", "1", "--learning-rate", "3e-4"],
    # The ablation's candidates (experiments/own-data/README.md, "Ablation").
    "mmg": ["--scale", "minmax", "--likelihood", "gaussian"],
    "pre20": ["--pretrain-epochs", "20"],
    "mmg-pre20": ["--scale", "minmax", "--likelihood", "gaussian", "--pretrain-epochs", "20"],
    "mm-pre20": ["--scale", "minmax", "--pretrain-epochs", "20"],
    "std-v2": ["--pretrain-epochs", "20", "--objective", "v2", "--lambda", "0",
               "--cv-weight", "1", "--learning-rate", "3e-4"],
    "mmg-v2": ["--scale", "minmax", "--likelihood", "gaussian", "--pretrain-epochs", "20",
               "--objective", "v2", "--lambda", "0", "--cv-weight", "1",
               "--learning-rate", "3e-4"],
    "zmarg": ["--z-prior", "marginal"],
    "mm-pre100": ["--scale", "minmax", "--pretrain-epochs", "100"],
    "pre100": ["--pretrain-epochs", "100"],
    "mmg-e300": ["--scale", "minmax", "--likelihood", "gaussian", "--epoch", "300"],
    "mm-pre20-lr3e-4": ["--scale", "minmax", "--pretrain-epochs", "20", "--learning-rate", "3e-4"],
    "mm-pre20-h128": ["--scale", "minmax", "--pretrain-epochs", "20", "--hidden-size", "128"],
    "mmg-pre100": ["--scale", "minmax", "--likelihood", "gaussian", "--pretrain-epochs", "100"],
    "mm-pre50": ["--scale", "minmax", "--pretrain-epochs", "50"],
    "mm-pre100-h128": ["--scale", "minmax", "--pretrain-epochs", "100", "--hidden-size", "128"],
    "mm-pre100-x5": ["--scale", "minmax", "--pretrain-epochs", "100", "--x-size", "5"],
    "pre100-x5": ["--pretrain-epochs", "100", "--x-size", "5"],
    "mm-pre100-pl10": ["--scale", "minmax", "--pretrain-epochs", "100", "--plateau-epochs", "10"],
    "pre100-pl10": ["--pretrain-epochs", "100", "--plateau-epochs", "10"],
}

# Emulations of a proposed `--scale auto` rule: NAME -> (recipe for intensity tables, recipe for
# the others). An intensity table has only non-negative integer values (pixels, counts); the
# rule looks at the training values only, never at the set's name or labels.
RULES = {
    "rule-pre100": ("mm-pre100", "pre100"),
    "rule-pre20": ("mm-pre20", "pre20"),
    "rule-pre100-x5": ("mm-pre100-x5", "pre100-x5"),
    "rule-pre100-pl10": ("mm-pre100-pl10", "pre100-pl10"),
}


def intensities(x):
    return bool(np.all(x >= 0) and np.all(x == np.round(x)))


def resolve(rec, s):
    """The recipe a (possibly rule-based) recipe name runs on set s."""
    if rec in RULES:
        return RULES[rec][0] if intensities(s.x_train) else RULES[rec][1]
    return rec


SMALL = ["digits", "breast_cancer", "wine", "iris"]
BASELINES = ["kmeans", "kmeans-std", "gmm-full", "gmm-diag", "gmm-full-std", "gmm-diag-std"]


# ---------------------------------------------------------------------------- data sets


def load_set(name, shared):
    """(x float array [N, D], y int array [N]) of a suite set."""
    if name in SMALL:
        from sklearn import datasets
        d = getattr(datasets, f"load_{name}")()
        return d.data.astype(np.float64), d.target.astype(np.int64)
    if name == "penguins":
        import palmerpenguins
        df = palmerpenguins.load_penguins()
        cols = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
        df = df.dropna(subset=cols)
        species = sorted(df["species"].unique())
        return df[cols].to_numpy(np.float64), df["species"].map(species.index).to_numpy(np.int64)
    if name == "mnist":
        return load_mnist(os.path.join(shared, "data", "mnist"))
    sys.exit(f"unknown set {name!r}")


def read_idx(path):
    with gzip.open(path, "rb") as f:
        b = f.read()
    ndim = b[3]
    dims = [int.from_bytes(b[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(b, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_mnist(d):
    xs, ys = [], []
    for part in ["train", "t10k"]:
        xs.append(read_idx(os.path.join(d, f"{part}-images-idx3-ubyte.gz")).reshape(-1, 784))
        ys.append(read_idx(os.path.join(d, f"{part}-labels-idx1-ubyte.gz")))
    # float32 raw 0..255: the pixels as a user who loads MNIST into a table has them.
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.int64)


def split(n, seed, test_fraction):
    perm = np.random.default_rng(seed).permutation(n)
    n_test = round(n * test_fraction)
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def write_table(path, x, y):
    """CSV (header f0..,label) for small sets; .npy (label as the last column) for large."""
    if path.endswith(".npy"):
        np.save(path, np.concatenate([x, y[:, None].astype(x.dtype)], 1).astype(np.float32))
        return
    integral = np.all(x == np.round(x))
    with open(path, "w") as f:
        f.write(",".join([f"f{j}" for j in range(x.shape[1])] + ["label"]) + "\n")
        for row, t in zip(x, y):
            cells = [str(int(v)) if integral else repr(float(v)) for v in row]
            f.write(",".join(cells) + f",{t}\n")


class Set:
    def __init__(self, name, a):
        self.name = name
        x, y = load_set(name, a.shared)
        self.train, self.test = split(len(y), a.split_seed, a.test_fraction)
        self.x_train, self.y_train = x[self.train], y[self.train]
        self.x_test, self.y_test = x[self.test], y[self.test]
        self.k = len(np.unique(y))
        ext = "npy" if name == "mnist" else "csv"
        d = os.path.join(a.out_dir, "data")
        os.makedirs(d, exist_ok=True)
        self.train_file = os.path.join(d, f"{name}-train.{ext}")
        self.test_file = os.path.join(d, f"{name}-test.{ext}")
        # The label column: a header name for CSV, the last column's index for .npy.
        self.label = str(x.shape[1]) if ext == "npy" else "label"
        for path, xx, yy in [(self.train_file, self.x_train, self.y_train),
                             (self.test_file, self.x_test, self.y_test)]:
            if not os.path.exists(path):
                write_table(path + ".tmp." + ext, xx, yy)
                os.replace(path + ".tmp." + ext, path)
        print(f"{name}: {len(self.train)} training rows, {len(self.test)} test rows, "
              f"D={x.shape[1]}, K={self.k}", flush=True)


# ---------------------------------------------------------------------------- scores


def hungarian(assign, labels):
    t = np.zeros((assign.max() + 1, labels.max() + 1))
    np.add.at(t, (assign, labels), 1)
    r, c = linear_sum_assignment(-t)
    return t[r, c].sum() / len(labels)


def scores(assign, labels):
    return dict(hungarian=float(hungarian(assign, labels)),
                nmi=float(normalized_mutual_info_score(labels, assign)),
                ari=float(adjusted_rand_score(labels, assign)),
                used=int(len(np.unique(assign))))


# ---------------------------------------------------------------------------- GMVAE


def sh(cmd, log=None):
    """Runs cmd (nice'd); returns (stdout, seconds, peak RSS in KiB or None)."""
    full = ["nice", "-n", "10"]
    timev = os.path.exists("/usr/bin/time")
    if timev:
        full += ["/usr/bin/time", "-f", "__maxrss_kib=%M"]
    t0 = time.time()
    out = subprocess.run(full + cmd, capture_output=True, text=True)
    secs = time.time() - t0
    if log:
        with open(log, "a") as f:
            f.write("$ " + shlex.join(cmd) + "\n" + out.stdout + out.stderr)
    if out.returncode != 0:
        raise RuntimeError(f"failed: {shlex.join(cmd)}\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    rss = None
    for line in out.stderr.splitlines():
        if line.startswith("__maxrss_kib="):
            rss = int(line.split("=")[1])
    return out.stdout, secs, rss


def final_lower_bound(run_dir):
    with open(os.path.join(run_dir, "metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    return float(rows[-1]["lower_bound"]) if rows else float("nan"), len(rows)


def gmvae_run(a, s, recipe, flags, seed, extra=None):
    """Trains (or reuses) one GMVAE run and predicts the test rows. Returns a result dict."""
    run_id = f"{s.name}-{recipe}-s{seed}"
    runs = os.path.join(a.out_dir, "runs")
    run_dir = os.path.join(runs, run_id)
    train_cmd = [a.gmvae, "table", "--data", s.train_file, "--label-column", s.label,
                 "-K", str(s.k), "--seed", str(seed), "--test-fraction", "0", "--threads", "1",
                 "--out-dir", runs, "--id", run_id] + flags + (extra or [])
    info_file = os.path.join(run_dir, "suite-train.json")
    if os.path.exists(info_file) and os.path.exists(os.path.join(run_dir, "model.safetensors")):
        with open(info_file) as f:
            info = json.load(f)
    else:
        # An interrupted earlier call: continue from its last epoch's checkpoint (runs that
        # outlast a session); one stopped before its first checkpoint starts again.
        # A run of restarts (--n-init) keeps its checkpoints in restarts/<r>.
        resumable = os.path.exists(os.path.join(run_dir, "opts.json")) and any(
            os.path.exists(os.path.join(run_dir, f))
            for f in ("checkpoint.safetensors", "restarts"))
        if os.path.exists(run_dir) and not resumable:
            subprocess.run(["rm", "-rf", run_dir], check=True)
        cmd = ([a.gmvae, "table", "--resume", run_dir, "--threads", "1"] if resumable
               else train_cmd)
        _, secs, rss = sh(cmd)
        # A resumed run's earlier part (pretraining included) was not timed here: its time is
        # the last part's, and metrics.csv's per-epoch seconds cover every GMVAE epoch.
        info = dict(train_seconds=secs, train_peak_rss_kib=rss, train_cmd=shlex.join(train_cmd),
                    resumed=resumable)
        with open(info_file, "w") as f:
            json.dump(info, f)
    pred = os.path.join(run_dir, "test-predictions.npy")
    pred_cmd = [a.gmvae, "predict", "--run", run_dir, "--data", s.test_file, "--out", pred]
    _, psecs, prss = sh(pred_cmd)
    p = np.load(pred)
    lb, epochs = final_lower_bound(run_dir)
    r = dict(scores(p[:, 0].astype(np.int64), s.y_test), lower_bound=lb, epochs=epochs,
             seconds=info["train_seconds"] + psecs, peak_rss_kib=info["train_peak_rss_kib"],
             predict_peak_rss_kib=prss, command=info["train_cmd"] + " && " + shlex.join(pred_cmd),
             run_dir=run_dir, x_mean=p[:, 1 + s.k:])
    return r


def ae_codes(a, s, seed):
    """Our autoencoder's codes (the pretrain path, then 0 epochs of GMVAE) of train and test."""
    # --epoch must be >= 1: the codes are the encoder's after one GMVAE epoch (a few steps).
    flags = shlex.split(a.ae_flags) + ["--pretrain-epochs", str(a.ae_epochs), "--epoch", "1"]
    r = gmvae_run(a, s, a.ae_name, flags, seed)
    run_dir = r["run_dir"]
    pred = os.path.join(run_dir, "train-predictions.npy")
    sh([a.gmvae, "predict", "--run", run_dir, "--data", s.train_file, "--out", pred])
    return np.load(pred)[:, 1 + s.k:], r["x_mean"], r["seconds"], r["command"]


# ---------------------------------------------------------------------------- baselines


def standardize(xtr, xte):
    mu, sd = xtr.mean(0), xtr.std(0)
    sd[sd == 0] = 1
    return (xtr - mu) / sd, (xte - mu) / sd


def serket_run(a, s, seed):
    """Serket's VAE+GMM (`gmvae serket vae-gmm`, its defaults) on the training table. Serket
    assigns only the rows it trains on (no prediction for new rows), so it is scored on the
    training rows, the final round's GMM classes: transductive, unlike every other row."""
    out = os.path.join(a.out_dir, "serket", f"{s.name}-s{seed}")
    if os.path.exists(out):
        subprocess.run(["rm", "-rf", out], check=True)
    cmd = [a.gmvae, "serket", "vae-gmm", "--data", s.train_file, "--label-column", s.label,
           "--k", str(s.k), "--seed", str(seed), "--out-dir", out]
    _, secs, rss = sh(cmd)
    with open(os.path.join(out, "summary.json")) as f:
        last = json.load(f)["gmm_history"][-1]["scores"]
    return dict(hungarian=last["hungarian"], nmi=last["nmi"], ari=last["ari"],
                used=last["used_classes"], seconds=secs, peak_rss_kib=rss,
                command=shlex.join(cmd) + "  (scored on the training rows)")


def baseline(method, s, seed, a):
    from sklearn.cluster import KMeans
    from sklearn.mixture import GaussianMixture
    if method == "serket":
        return serket_run(a, s, seed)
    xtr, xte = s.x_train.astype(np.float64), s.x_test.astype(np.float64)
    t0 = time.time()
    cmd = ""
    if method.endswith("-std") or method == "umap-gmm":
        xtr, xte = standardize(xtr, xte)
    base = method.removesuffix("-std")
    if method in ("ae-kmeans", "ae-gmm"):
        xtr, xte, secs, cmd = ae_codes(a, s, seed)
        t0 -= secs
        base = "kmeans" if method == "ae-kmeans" else "gmm-full"
    if method == "umap-gmm":
        import umap
        u = umap.UMAP(n_components=s.k, n_neighbors=20, min_dist=0.0, random_state=seed,
                      n_jobs=1).fit(xtr)
        xtr, xte = u.embedding_, u.transform(xte)
        base = "gmm-full"
    if base == "kmeans":
        m = KMeans(s.k, n_init=10, random_state=seed).fit(xtr)
        cmd += f"; KMeans({s.k}, n_init=10, random_state={seed})"
    else:
        cov = base.split("-")[1]
        # reg_covar: the sklearn default; pixel columns that are constant make full covariances
        # singular otherwise.
        m = GaussianMixture(s.k, covariance_type=cov, random_state=seed).fit(xtr)
        cmd += f"; GaussianMixture({s.k}, covariance_type={cov!r}, random_state={seed})"
    return dict(scores(m.predict(xte), s.y_test), seconds=time.time() - t0,
                command=(cmd.lstrip("; ") + (" on standardized features"
                                             if method.endswith("-std") else "")))


# ---------------------------------------------------------------------------- report


def cell(vals, digits=3):
    vals = [v for v in vals if v is not None]
    if not vals:
        return ""
    if len(vals) == 1:
        return f"{vals[0]:.{digits}f}"
    return f"{np.mean(vals):.{digits}f} ± {np.std(vals):.{digits}f}"


def summary(rows, sets, title):
    lines = [f"### {title}", "",
             "| set | method | seeds | Hungarian | NMI | ARI | s/run | peak RSS MiB |",
             "|---|---|---|---|---|---|---|---|"]
    for sname in sets:
        for m in dict.fromkeys(r["method"] for r in rows if r["set"] == sname):
            sel = [r for r in rows if r["set"] == sname and r["method"] == m]
            rss = [r["peak_rss_kib"] for r in sel if r.get("peak_rss_kib")]
            lines.append(
                f"| {sname} | {m} | {len(sel)} | {cell([r['hungarian'] for r in sel])} | "
                f"{cell([r['nmi'] for r in sel])} | {cell([r['ari'] for r in sel])} | "
                f"{np.mean([r['seconds'] for r in sel]):.1f} | "
                + (f"{max(rss) / 1024:.0f} |" if rss else " |"))
    return "\n".join(lines)


def mean_table(rows, sets):
    """Mean Hungarian / NMI over the given sets, per method (the ablation's criterion)."""
    lines = ["| method | " + " | ".join(f"{s} H / NMI" for s in sets) + " | mean H | mean NMI |"
             " worst seed std H |",
             "|---|" + "---|" * (len(sets) + 3)]
    for m in dict.fromkeys(r["method"] for r in rows):
        hs, ns, sds, cells = [], [], [], []
        for sname in sets:
            sel = [r for r in rows if r["set"] == sname and r["method"] == m]
            if not sel:
                cells.append("")
                continue
            h, n = np.mean([r["hungarian"] for r in sel]), np.mean([r["nmi"] for r in sel])
            hs.append(h)
            ns.append(n)
            sds.append(np.std([r["hungarian"] for r in sel]))
            cells.append(f"{h:.3f} / {n:.3f}")
        if len(hs) == len(sets):
            lines.append(f"| {m} | " + " | ".join(cells) +
                         f" | {np.mean(hs):.3f} | {np.mean(ns):.3f} | {max(sds):.3f} |")
        else:
            lines.append(f"| {m} | " + " | ".join(cells) + " | | | |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="+", default=SMALL + ["penguins", "mnist"])
    ap.add_argument("--methods", nargs="+", default=["gmvae"] + BASELINES,
                    help="gmvae " + " ".join(BASELINES) + " ae-kmeans ae-gmm umap-gmm serket")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--recipe", nargs="+", default=["default"],
                    help="GMVAE recipes (names of RECIPES or of --recipe-flags)")
    ap.add_argument("--recipe-flags", action="append", default=[], metavar="NAME=FLAGS",
                    help="define a recipe: NAME='--scale minmax --epoch 50' (repeatable)")
    ap.add_argument("--n-init", type=int, nargs="+", default=[1],
                    help="emulated restarts per seed, chosen by the training lower bound")
    ap.add_argument("--jobs", type=int, default=1, help="GMVAE runs side by side")
    ap.add_argument("--ae-epochs", type=int, default=20,
                    help="autoencoder epochs of the ae-* baselines")
    ap.add_argument("--ae-flags", default="",
                    help="scaling/likelihood flags of the ae-* baselines' autoencoder")
    ap.add_argument("--split-seed", type=int, default=1)
    ap.add_argument("--test-fraction", type=float, default=0.2)
    ap.add_argument("--gmvae", default=os.path.join(ROOT, "target", "release", "gmvae"))
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared"))
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "experiments", "own-data-runs",
                                                      "suite"))
    ap.add_argument("--tag", default="", help="suffix of results/summary file names")
    a = ap.parse_args()
    a.ae_name = "ae" + str(a.ae_epochs) + "".join(
        "-" + f.lstrip("-")[:3] for f in shlex.split(a.ae_flags))
    recipes = dict(RECIPES)
    for spec in a.recipe_flags:
        name, _, flags = spec.partition("=")
        recipes[name] = shlex.split(flags)
    for r in a.recipe:
        if r not in recipes and r not in RULES:
            sys.exit(f"--recipe {r}: not a known recipe ({', '.join(recipes)})")
    os.makedirs(a.out_dir, exist_ok=True)
    sets = {n: Set(n, a) for n in a.sets}
    n_max = max(a.n_init)

    rows = []
    # GMVAE: every (set, recipe, seed, restart) as one job.
    jobs = []
    if "gmvae" in a.methods:
        for sname, s in sets.items():
            for rec in a.recipe:
                for seed in a.seeds:
                    for r in range(n_max):
                        jobs.append((s, rec, seed, r))
    done = {}
    with cf.ThreadPoolExecutor(max(1, a.jobs)) as ex:
        # One run per (set, resolved recipe, seed): a rule and its recipe share their runs.
        unique = {}
        for s, rec, seed, r in jobs:
            unique.setdefault((s.name, resolve(rec, s), seed + 100 * r), []).append(
                (s.name, rec, seed, r))
        futs = {ex.submit(gmvae_run, a, sets[sname], run_rec, recipes[run_rec], run_seed): keys
                for (sname, run_rec, run_seed), keys in unique.items()}
        for f in cf.as_completed(futs):
            keys = futs[f]
            try:
                res = f.result()
            except RuntimeError as e:
                print(f"{keys[0]}: {e}", flush=True)
                continue
            res.pop("x_mean")
            for key in keys:
                done[key] = res
            print(f"{keys[0]}: H {res['hungarian']:.3f} NMI {res['nmi']:.3f} ARI {res['ari']:.3f} "
                  f"LB {res['lower_bound']:.3f} ({res['seconds']:.0f}s)", flush=True)
    picks = []
    for sname in sets:
        for rec in a.recipe:
            for seed in a.seeds:
                for n in a.n_init:
                    rs = [done.get((sname, rec, seed, r)) for r in range(n)]
                    if any(x is None for x in rs):
                        continue
                    best = max(range(n), key=lambda i: rs[i]["lower_bound"])
                    oracle = max(range(n), key=lambda i: rs[i]["hungarian"])
                    method = f"gmvae {rec}" + (f" n-init {n}" if n > 1 else "")
                    row = dict(rs[best], set=sname, method=method, recipe=rec,
                               flags=shlex.join(recipes[resolve(rec, sets[sname])]),
                               seed=seed, n_init=n,
                               kept_restart=best, seconds=sum(x["seconds"] for x in rs))
                    rows.append(row)
                    if n > 1:
                        picks.append(dict(set=sname, recipe=rec, seed=seed, n_init=n,
                                          kept=best, oracle=oracle,
                                          same=rs[best]["hungarian"] == rs[oracle]["hungarian"],
                                          cost=rs[oracle]["hungarian"] - rs[best]["hungarian"],
                                          bounds=[x["lower_bound"] for x in rs],
                                          hungarian=[x["hungarian"] for x in rs]))
    for sname, s in sets.items():
        for m in a.methods:
            if m == "gmvae":
                continue
            for seed in a.seeds:
                try:
                    res = baseline(m, s, seed, a)
                except (RuntimeError, ImportError) as e:
                    print(f"{sname} {m} seed {seed}: skipped: {e}", flush=True)
                    break
                rows.append(dict(res, set=sname, method=m, seed=seed))
                print(f"{sname} {m} s{seed}: H {res['hungarian']:.3f} NMI {res['nmi']:.3f} "
                      f"({res['seconds']:.1f}s)", flush=True)

    tag = f"-{a.tag}" if a.tag else ""
    with open(os.path.join(a.out_dir, f"results{tag}.json"), "w") as f:
        json.dump(dict(args=vars(a), recipes={r: recipes[r] if r in recipes else
                                     {"intensities": RULES[r][0], "other": RULES[r][1]}
                                     for r in a.recipe}, rows=rows,
                       restarts=picks), f, indent=1)
    keys = ["set", "method", "seed", "hungarian", "nmi", "ari", "used", "lower_bound", "epochs",
            "seconds", "peak_rss_kib", "command"]
    with open(os.path.join(a.out_dir, f"results{tag}.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, keys, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    text = [summary(rows, list(sets), "Held-out scores, mean ± std over seeds"), ""]
    if len(sets) > 1:
        text += ["### Mean over the sets", "", mean_table(rows, list(sets)), ""]
    if picks:
        text += ["### Restarts chosen by the lower bound (emulated --n-init)", "",
                 "| set | recipe | n-init | bound picked the labels' best | mean cost (H) |",
                 "|---|---|---|---|---|"]
        for sname in sets:
            for rec in a.recipe:
                for n in a.n_init:
                    sel = [p for p in picks if p["set"] == sname and p["recipe"] == rec
                           and p["n_init"] == n]
                    if sel:
                        text.append(f"| {sname} | {rec} | {n} | "
                                    f"{sum(p['same'] for p in sel)}/{len(sel)} | "
                                    f"{np.mean([p['cost'] for p in sel]):.3f} |")
        text.append("")
    text = "\n".join(text)
    with open(os.path.join(a.out_dir, f"summary{tag}.md"), "w") as f:
        f.write(text)
    print("\n" + text)


if __name__ == "__main__":
    main()
