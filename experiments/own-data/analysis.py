"""The numbers of experiments/own-data/README.md (and one of experiments/accuracy/README.md) that
are computed from finished runs rather than printed by suite.py or restart_choice.py.

    python3 experiments/own-data/analysis.py pool agree5 agree5-s6-10
        GMVAE rows of several suite result files (results-TAG.json) pooled per set: Hungarian and
        NMI mean ± std (np.std) and the minimum, over all their seeds.
    python3 experiments/own-data/analysis.py single-runs screen-n5
        The single runs behind a suite file's emulated --n-init (its largest N): Hungarian mean ±
        std over all of them, per set.
    python3 experiments/own-data/analysis.py agree SET RUN_DIR...
        Runs of one set as if they were the restarts of one run: each one's mean adjusted Rand
        index with the others on the training rows, its final bound, and its held-out Hungarian /
        NMI / ARI (`gmvae predict`, cached in the run as train-/test-predictions.npy).
    python3 experiments/own-data/analysis.py serket-codes SET...
        The codes Serket's VAE sent its GMM in the last round (serket/SET-s1/module001_vae/004/
        z_learn.txt): per-dimension std range and a 5-nearest-neighbour classifier's 5-fold
        accuracy on them, against chance.
    python3 experiments/own-data/analysis.py last-acc RUN_DIR...
        Mean ± sample std (as accuracy_table prints) of the last epoch's test_acc, in %.

Paths are relative to --out-dir (default experiments/own-data-runs/suite); RUN_DIR may also be
a path. Labels only score; nothing here trains.
"""
import argparse
import csv
import json
import os
import subprocess
import sys

import numpy as np
from sklearn.metrics import adjusted_rand_score

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
from suite import scores  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))


def last_row(run):
    with open(os.path.join(run, "metrics.csv")) as f:
        return list(csv.DictReader(f))[-1]


def data_file(a, s, part):
    ext = ".npy" if s == "mnist" else ".csv"
    return os.path.join(a.out_dir, "data", f"{s}-{part}{ext}")


def labels(path):
    if path.endswith(".npy"):
        return np.load(path)[:, -1].astype(np.int64)
    with open(path) as f:
        return np.array([int(float(r["label"])) for r in csv.DictReader(f)])


def predicted(a, run, data, name):
    out = os.path.join(run, name)
    if not os.path.exists(out):
        subprocess.run([a.gmvae, "predict", "--run", run, "--data", data, "--out", out],
                       check=True, capture_output=True)
    return np.load(out)[:, 0].astype(np.int64)


def pool(a):
    rows = {}
    for tag in a.args:
        with open(os.path.join(a.out_dir, f"results-{tag}.json")) as f:
            for r in json.load(f)["rows"]:
                if r["method"].startswith("gmvae"):
                    rows.setdefault(r["set"], []).append((r["hungarian"], r["nmi"]))
    for s, v in rows.items():
        v = np.array(v)
        print(f"{s}: {len(v)} runs, H {v[:, 0].mean():.3f} ± {v[:, 0].std():.3f} "
              f"(min {v[:, 0].min():.3f}), NMI {v[:, 1].mean():.3f} ± {v[:, 1].std():.3f}")


def single_runs(a):
    with open(os.path.join(a.out_dir, f"results-{a.args[0]}.json")) as f:
        picks = json.load(f)["restarts"]
    n = max(p["n_init"] for p in picks)
    per = {}
    for p in picks:
        if p["n_init"] == n:
            per.setdefault(p["set"], []).extend(p["hungarian"])
    for s, v in per.items():
        print(f"{s}: {len(v)} single runs, H {np.mean(v):.3f} ± {np.std(v):.3f} "
              f"(min {np.min(v):.3f})")


def agree(a):
    s, runs = a.args[0], [r if os.path.isdir(r) else os.path.join(a.out_dir, "runs", r)
                          for r in a.args[1:]]
    y = labels(data_file(a, s, "test"))
    train = [predicted(a, r, data_file(a, s, "train"), "train-predictions.npy") for r in runs]
    for i, r in enumerate(runs):
        mean = np.mean([adjusted_rand_score(train[i], train[j])
                        for j in range(len(runs)) if j != i])
        sc = scores(predicted(a, r, data_file(a, s, "test"), "test-predictions.npy"), y)
        print(f"{os.path.relpath(r, a.out_dir)}: agreement {mean:.4f}, bound "
              f"{float(last_row(r)['lower_bound']):.4f}, held-out H {sc['hungarian']:.3f} "
              f"NMI {sc['nmi']:.3f} ARI {sc['ari']:.3f}")


def serket_codes(a):
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier
    for s in a.args:
        z = np.loadtxt(os.path.join(a.out_dir, "serket", f"{s}-s1", "module001_vae", "004",
                                    "z_learn.txt"))
        y = labels(data_file(a, s, "train"))
        acc = cross_val_score(KNeighborsClassifier(5), z, y, cv=5).mean()
        sd = z.std(0)
        print(f"{s}: {z.shape[1]} dims, std {sd.min():.2f}-{sd.max():.2f}, 5-NN accuracy "
              f"{acc:.3f} (chance {np.bincount(y).max() / len(y):.3f})")


def last_acc(a):
    v = np.array([float(last_row(r)["test_acc"]) * 100 for r in a.args])
    print(f"{len(v)} runs: {v.mean():.2f} ± {v.std(ddof=1):.2f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["pool", "single-runs", "agree", "serket-codes", "last-acc"])
    ap.add_argument("args", nargs="+")
    ap.add_argument("--gmvae", default=os.path.join(ROOT, "target", "release", "gmvae"))
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "experiments", "own-data-runs",
                                                      "suite"))
    a = ap.parse_args()
    {"pool": pool, "single-runs": single_runs, "agree": agree, "serket-codes": serket_codes,
     "last-acc": last_acc}[a.what](a)


if __name__ == "__main__":
    main()
