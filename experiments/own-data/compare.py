"""GMVAE against scikit-learn's GaussianMixture and KMeans on scikit-learn's digits data set
(load_digits: 1797 8x8 images, 64 pixel values 0..16, labels 0..9), on one seeded split.

    python3 experiments/own-data/compare.py [--seed 1] [--model-seeds 1 2 3] [--out-dir DIR]

1. Splits the rows (numpy default_rng(seed), 20% held out) and writes digits-train.csv and
   digits-test.csv (header p0..p63,label) into --out-dir.
2. GMVAE: `gmvae table --data digits-train.csv --label-column label --test-fraction 0` (labels
   only score the clusters) with the preset defaults, once with the default auto scaling
   (standardize + Gaussian) and once with --scale minmax (Bernoulli), then `gmvae predict` on
   digits-test.csv. The exact commands are printed.
3. GaussianMixture (full and diagonal covariances) and KMeans fitted on the training rows (raw
   pixel values), cluster assignments of the test rows.
4. Scores every method on the test rows with the same code: Hungarian (one-to-one) accuracy,
   the AAE rule (each cluster takes the label of its most confident test row; KMeans: the row
   nearest its centre), and NMI (arithmetic normalisation).

scikit-learn is used for evaluation only; it is not a dependency of gmvae.
"""
import argparse
import os
import subprocess
import sys

# One BLAS/OpenMP thread: on a busy 2-core machine more threads spin and stall KMeans for minutes.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from sklearn.cluster import KMeans  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.metrics import normalized_mutual_info_score  # noqa: E402
from sklearn.mixture import GaussianMixture  # noqa: E402

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from suite import hungarian  # noqa: E402  (the suite's scoring, one copy)

K = 10


def aae(scores, labels):
    """scores [N, K]: higher = more confident. Cluster k takes the label of argmax_n scores[n, k]."""
    assign = scores.argmax(1)
    cluster_label = labels[scores.argmax(0)]
    return float((cluster_label[assign] == labels).mean())


def score(name, scores, labels):
    assign = scores.argmax(1)
    return dict(
        method=name,
        hungarian=hungarian(assign, labels),
        aae=aae(scores, labels),
        nmi=normalized_mutual_info_score(labels, assign),
        used=len(np.unique(assign)),
    )


def write_csv(path, x, y):
    with open(path, "w") as f:
        f.write(",".join([f"p{j}" for j in range(x.shape[1])] + ["label"]) + "\n")
        for row, t in zip(x, y):
            f.write(",".join(str(int(v)) for v in row) + f",{t}\n")


def run(cmd):
    print("$", " ".join(cmd), flush=True)
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{out.stdout}\n{out.stderr}")
    return out.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1, help="seed of the train/test split")
    ap.add_argument("--model-seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--test-fraction", type=float, default=0.2)
    ap.add_argument("--out-dir", default="experiments/own-data-runs")
    ap.add_argument("--gmvae", default="target/release/gmvae")
    a = ap.parse_args()

    d = load_digits()
    x, y = d.data, d.target
    perm = np.random.default_rng(a.seed).permutation(len(y))
    n_test = round(len(y) * a.test_fraction)
    test, train = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    os.makedirs(a.out_dir, exist_ok=True)
    train_csv = os.path.join(a.out_dir, "digits-train.csv")
    test_csv = os.path.join(a.out_dir, "digits-test.csv")
    write_csv(train_csv, x[train], y[train])
    write_csv(test_csv, x[test], y[test])
    print(f"split seed {a.seed}: {len(train)} training rows, {len(test)} test rows", flush=True)

    rows = []
    for variant, flags in [("GMVAE (auto: standardize, Gaussian)", []),
                           ("GMVAE (--scale minmax: Bernoulli)", ["--scale", "minmax"])]:
        for s in a.model_seeds:
            tag = "std" if not flags else "minmax"
            run_id = f"digits-{tag}-s{s}"
            run_dir = os.path.join(a.out_dir, run_id)
            if os.path.exists(os.path.join(run_dir, "model.safetensors")):
                print(f"reusing the finished run {run_dir}", flush=True)
            else:
                run([a.gmvae, "table", "--data", train_csv, "--label-column", "label",
                     "--test-fraction", "0", "--k", str(K), "--seed", str(s),
                     "--out-dir", a.out_dir, "--id", run_id] + flags)
            with open(os.path.join(run_dir, "metrics.csv")) as f:
                lower_bound = float(f.read().strip().splitlines()[-1].split(",")[1])
            pred = os.path.join(a.out_dir, run_id, "test-predictions.csv")
            log = run([a.gmvae, "predict", "--run", os.path.join(a.out_dir, run_id),
                       "--data", test_csv, "--out", pred])
            print(log.strip().splitlines()[-1], flush=True)
            p = np.loadtxt(pred, delimiter=",", skiprows=1)
            rows.append(dict(score(variant, p[:, 1:1 + K], y[test]), seed=s, lb=lower_bound))
    for s in a.model_seeds:
        km = KMeans(K, n_init=10, random_state=s).fit(x[train])
        rows.append(dict(score("KMeans (n_init=10)", -km.transform(x[test]), y[test]), seed=s))
        for cov in ["full", "diag"]:
            gm = GaussianMixture(K, covariance_type=cov, n_init=1, random_state=s).fit(x[train])
            rows.append(dict(score(f"GaussianMixture ({cov})", gm.predict_proba(x[test]), y[test]),
                             seed=s))

    print("\n| method | seed | train lower bound | test acc (Hungarian) | test acc (AAE rule) | "
          "test NMI | clusters used |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        lb = f"{r['lb']:.3f}" if "lb" in r else ""
        print(f"| {r['method']} | {r['seed']} | {lb} | {r['hungarian']:.4f} | {r['aae']:.4f} | "
              f"{r['nmi']:.4f} | {r['used']} |")
    # Restarts chosen without labels, as KMeans/GaussianMixture n_init choose theirs: the GMVAE
    # seed with the highest training lower bound.
    for m in dict.fromkeys(r["method"] for r in rows if "lb" in r):
        best = max((r for r in rows if r["method"] == m), key=lambda r: r["lb"])
        rows.append(dict(best, method=f"{m}, best lower bound of {len(a.model_seeds)} seeds",
                         seed=f"{best['seed']} (chosen)"))
    print("\n| method | test acc (Hungarian) | test acc (AAE rule) | test NMI |")
    print("|---|---|---|---|")
    for m in dict.fromkeys(r["method"] for r in rows):
        sel = [r for r in rows if r["method"] == m]
        cell = lambda k: (f"{sel[0][k]:.3f}" if len(sel) == 1 else
                          f"{np.mean([r[k] for r in sel]):.3f} ± {np.std([r[k] for r in sel]):.3f}")
        print(f"| {m} | {cell('hungarian')} | {cell('aae')} | {cell('nmi')} |")


if __name__ == "__main__":
    main()
