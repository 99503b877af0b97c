"""The README's "Your own data" example (iris.csv, the binary's own seeded 20% split) against
KMeans(n_init=10) and GaussianMixture(full) fitted on the same 120 training rows and scored on
the same 30 held-out rows, for seeds 1-5.

    python3 experiments/own-data/iris_example.py [--gmvae target/release/gmvae] [--out-dir D]

Trains `gmvae table --data experiments/own-data/iris.csv --label-column species --k 3 --seed S`
(the default) into experiments/own-data-runs/iris-example/ (finished runs there are reused: give
another --out-dir for another binary).
The held-out rows are recovered from the run's latent.safetensors (`data`, scaled with the
scaler opts.json records), so the baselines see exactly the rows gmvae held out.
"""
import argparse
import json
import os
import struct
import subprocess
import sys

import numpy as np
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import suite  # noqa: E402

RECIPES = {"default": []}


def tensor(path, name):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
        b = f.read()
    a, e = h[name]["data_offsets"]
    return np.frombuffer(b[a:e], np.float32).reshape(h[name]["shape"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gmvae", default=os.path.join(HERE, "..", "..", "target", "release", "gmvae"))
    ap.add_argument("--out-dir", default=os.path.join(HERE, "..", "own-data-runs", "iris-example"))
    a = ap.parse_args()
    csv = os.path.join(HERE, "iris.csv")
    raw = np.genfromtxt(csv, delimiter=",", skip_header=1, usecols=range(4))
    y = np.unique(np.genfromtxt(csv, delimiter=",", skip_header=1, usecols=4, dtype=str),
                  return_inverse=True)[1]
    res = {}
    for s in range(1, 6):
        for r, flags in RECIPES.items():
            run = os.path.join(a.out_dir, f"{r}-s{s}")
            if not os.path.exists(os.path.join(run, "model.safetensors")):
                subprocess.run(["nice", "-n", "10", a.gmvae, "table", "--data", csv,
                                "--label-column", "species", "--k", "3", "--seed", str(s),
                                "--threads", "1", "--out-dir", a.out_dir, "--id", f"{r}-s{s}"]
                               + flags, check=True, capture_output=True)
            last = open(os.path.join(run, "metrics.csv")).read().split("\n")[-2].split(",")
            res.setdefault(f"gmvae {r}", []).append((float(last[9]), float(last[11])))
        run = os.path.join(a.out_dir, f"default-s{s}")
        sc = json.load(open(os.path.join(run, "opts.json")))["table"]["fitted"]["scaler"]
        held = tensor(os.path.join(run, "latent.safetensors"), "data") * np.array(sc["scale"]) \
            + np.array(sc["shift"])
        test = []
        for row in held:  # iris has duplicate rows: take each file row once
            d = np.abs(raw - row).sum(1)
            test.append(next(i for i in np.argsort(d) if d[i] < 1e-3 and i not in test))
        test = np.array(sorted(test))
        train = np.setdiff1d(np.arange(len(y)), test)
        for name, m in [("KMeans (n_init=10)", KMeans(3, n_init=10, random_state=s)),
                        ("GaussianMixture (full)", GaussianMixture(3, random_state=s))]:
            sco = suite.scores(m.fit(raw[train]).predict(raw[test]), y[test])
            res.setdefault(name, []).append((sco["hungarian"], sco["nmi"]))
    print("| method | Hungarian | NMI | Hungarian per seed 1-5 |\n|---|---|---|---|")
    for k, v in res.items():
        v = np.array(v)
        print(f"| {k} | {v[:, 0].mean():.3f} ± {v[:, 0].std():.3f} | "
              f"{v[:, 1].mean():.3f} ± {v[:, 1].std():.3f} | "
              + " ".join(f"{h:.3f}" for h in v[:, 0]) + " |")


if __name__ == "__main__":
    main()
