"""How well each unsupervised rule picks among restarts (issues 28 and 31), on the suite's runs.

    python3 experiments/own-data/restart_choice.py --sets digits breast_cancer wine iris penguins \
        [--recipe default] [--n 1 3 5] [--gmvae target/release/gmvae]

Reads the single runs that `suite.py --recipe R --n-init 1 3 5` trained (restart r of model seed S
is the run of seed S + 100 r, each with --n-init 1), clusters each run's training rows with
`gmvae predict` (cached as train-predictions.npy in the run), and emulates `--n-init N` for every
seed with three rules:
  bound      the best final training lower bound (metrics.csv), `--restart-choice bound`;
  agreement  the highest mean adjusted Rand index of its training-row clustering with the other
             N - 1 restarts' (their medoid), `--restart-choice agreement`;
  confidence the highest mean over the training rows of max_k q(z=k|y) (predict's q_z columns),
             `--restart-choice confidence`;
  oracle     the best held-out Hungarian accuracy: what labels would pick (not available to a
             user; the ceiling).
Prints one markdown row per set, N and rule: held-out Hungarian and NMI (mean ± std over seeds),
how often the rule picked the oracle's restart (equal accuracy counts), and the mean cost in
Hungarian accuracy against the oracle. Labels only score; no rule reads them.
"""
import argparse
import csv
import os
import subprocess
import sys

import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from suite import hungarian  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def final_bound(run):
    with open(os.path.join(run, "metrics.csv")) as f:
        return float(list(csv.DictReader(f))[-1]["lower_bound"])


def n_components(run):
    """K of a run (its config.json)."""
    import json
    with open(os.path.join(run, "config.json")) as f:
        c = json.load(f)
    return int(c["K"])


def labels_of(path):
    if path.endswith(".npy"):
        return np.load(path)[:, -1].astype(np.int64)
    with open(path) as f:
        return np.array([int(float(r["label"])) for r in csv.DictReader(f)])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", nargs="+", default=["digits", "breast_cancer", "wine", "iris",
                                                  "penguins"])
    ap.add_argument("--recipe", default="default")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--n", type=int, nargs="+", default=[1, 3, 5])
    ap.add_argument("--gmvae", default=os.path.join(ROOT, "target", "release", "gmvae"))
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "experiments", "own-data-runs",
                                                      "suite"))
    a = ap.parse_args()
    print("| set | N | rule | Hungarian | NMI | picked the oracle's | mean cost (H) |")
    print("|---|---|---|---|---|---|---|")
    for s in a.sets:
        ext = ".npy" if s == "mnist" else ".csv"
        train = os.path.join(a.out_dir, "data", f"{s}-train{ext}")
        y_test = labels_of(os.path.join(a.out_dir, "data", f"{s}-test{ext}"))
        res = {}
        for seed in a.seeds:
            runs = []
            for r in range(max(a.n)):
                d = os.path.join(a.out_dir, "runs", f"{s}-{a.recipe}-s{seed + 100 * r}")
                if not os.path.exists(os.path.join(d, "model.safetensors")):
                    break
                cached = os.path.join(d, "train-predictions.npy")
                if not os.path.exists(cached):
                    subprocess.run([a.gmvae, "predict", "--run", d, "--data", train, "--out",
                                    cached], check=True, capture_output=True)
                test = np.load(os.path.join(d, "test-predictions.npy"))[:, 0].astype(np.int64)
                pred = np.load(cached)
                # predict's columns: component, q_z_0..q_z_{K-1}, x_mean...
                k = n_components(d)
                runs.append(dict(bound=final_bound(d),
                                 train=pred[:, 0].astype(np.int64),
                                 confidence=float(np.mean(np.max(pred[:, 1:1 + k], axis=1))),
                                 h=hungarian(test, y_test),
                                 nmi=normalized_mutual_info_score(y_test, test)))
            for n in a.n:
                if len(runs) < n:
                    continue
                rs = runs[:n]
                agree = [np.mean([adjusted_rand_score(rs[i]["train"], rs[j]["train"])
                                  for j in range(n) if j != i]) if n > 1 else 1.0
                         for i in range(n)]
                picks = {
                    "bound": max(range(n), key=lambda i: rs[i]["bound"]),
                    # Ties (two restarts) go to the better bound, as gmvae does.
                    "agreement": max(range(n), key=lambda i: (agree[i], rs[i]["bound"])),
                    "confidence": max(range(n), key=lambda i: (rs[i]["confidence"],
                                                               rs[i]["bound"])),
                    "oracle": max(range(n), key=lambda i: rs[i]["h"]),
                }
                best = rs[picks["oracle"]]["h"]
                for rule, i in picks.items():
                    res.setdefault((n, rule), []).append(
                        (rs[i]["h"], rs[i]["nmi"], rs[i]["h"] == best, best - rs[i]["h"]))
        for (n, rule), v in sorted(res.items(), key=lambda kv: kv[0][0]):
            v = np.array(v, dtype=float)
            picked = f"{int(v[:, 2].sum())}/{len(v)}" if n > 1 and rule != "oracle" else ""
            cost = f"{v[:, 3].mean():.3f}" if n > 1 and rule != "oracle" else ""
            print(f"| {s} | {n} | {rule} | {v[:, 0].mean():.3f} ± {v[:, 0].std():.3f} | "
                  f"{v[:, 1].mean():.3f} ± {v[:, 1].std():.3f} | {picked} | {cost} |")


if __name__ == "__main__":
    main()
