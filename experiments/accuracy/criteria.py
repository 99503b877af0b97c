"""How well label-free criteria pick among restarts (issue 31, seed stability).

Given run directories of one recipe that differ only in --seed, each treated as a restart, this
reads every run's row of epoch E (default: the last epoch all runs reached) and its latent dump
(the same first test images in every run), and scores each criterion:

- bound: the highest training lower bound (scikit-learn's rule, `--restart-choice bound`);
- augment: the smallest augmentation consistency term (`augment` in metrics.csv), i.e. the
  clustering that moves least under small transforms;
- confidence: the highest mean max_k p(z=k|y) (`mean_max_q`);
- agreement: the highest mean adjusted Rand index of the run's dumped clustering with the other
  runs' of the group (`--restart-choice agreement`, the medoid).

For every group of G runs (all combinations; G = 3 and 5 by default) a criterion keeps one run;
the labels then say how often it kept the group's best score (Hungarian accuracy unless
--score names another column), what the kept run scores on average, and the cost against the
best (the mean over groups of best - kept). A
random pick scores the group's mean. numpy only; the dumps are read directly.

    python3 experiments/accuracy/criteria.py [--epoch E] [--groups 3 5] RUN_DIR RUN_DIR ...
"""
import argparse
import csv
import itertools
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from components import load  # noqa: E402


def ari(a, b):
    """Adjusted Rand index of two labelings (Hubert and Arabie)."""
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    table = np.zeros((ai.max() + 1, bi.max() + 1))
    np.add.at(table, (ai, bi), 1)
    comb = lambda x: x * (x - 1) / 2  # noqa: E731
    s_ij = comb(table).sum()
    s_a, s_b = comb(table.sum(1)).sum(), comb(table.sum(0)).sum()
    expected = s_a * s_b / comb(len(a))
    top = (s_a + s_b) / 2
    return 0.0 if top == expected else (s_ij - expected) / (top - expected)


def rows(run):
    with open(os.path.join(run, "metrics.csv")) as f:
        return list(csv.DictReader(f))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("--epoch", type=int, default=None)
    p.add_argument("--groups", type=int, nargs="+", default=[3, 5])
    p.add_argument("--score-epoch", type=int, default=None,
                   help="score the kept run at this later epoch (default: --epoch): does an "
                        "early choice keep the run that ends best?")
    p.add_argument("--score", default="test_acc_hungarian",
                   help="the labels' score (a metrics.csv column; test_acc = the AAE rule)")
    a = p.parse_args()
    table = {r: rows(r) for r in a.runs}
    epoch = a.epoch or min(len(t) for t in table.values())
    if any(len(t) < epoch for t in table.values()):
        sys.exit(f"criteria.py: a run has fewer than {epoch} epochs")
    row = {r: table[r][epoch - 1] for r in a.runs}
    at = a.score_epoch or epoch
    if any(len(t) < at for t in table.values()):
        sys.exit(f"criteria.py: a run has fewer than {at} epochs")
    hung = {r: float(table[r][at - 1][a.score]) for r in a.runs}
    value = {
        "bound": {r: float(row[r]["lower_bound"]) for r in a.runs},
        # 0 when the run had no augmentation term: then it says nothing.
        "augment": {r: -(float(row[r].get("augment") or 0) or float("nan")) for r in a.runs},
        "confidence": {r: float(row[r]["mean_max_q"]) for r in a.runs},
    }
    # The dump is the last epoch's; agreement is only read at that epoch, where every run
    # has its dump (the committed records have none).
    last = all(len(table[r]) == epoch and
               os.path.exists(os.path.join(r, "latent.safetensors")) for r in a.runs)
    z = {r: load(os.path.join(r, "latent.safetensors"))["q_z"].argmax(1) for r in a.runs} \
        if last else None
    pair = {}
    if z:
        for x, y in itertools.combinations(a.runs, 2):
            pair[x, y] = pair[y, x] = ari(z[x], z[y])
    print(f"criteria at epoch {epoch}, {a.score} at epoch {at}; runs (score, bound, augment, "
          "confidence):")
    for r in a.runs:
        print(f"  {os.path.basename(r.rstrip('/'))}: {hung[r]:.3f} {value['bound'][r]:.2f} "
              f"{-value['augment'][r]:.4f} {value['confidence'][r]:.3f}")
    names = [n for n in value if not any(np.isnan(v) for v in value[n].values())]
    names += ["agreement"] if z else []
    for g in a.groups:
        groups = list(itertools.combinations(a.runs, g))
        if not groups:
            continue
        print(f"\ngroups of {g} ({len(groups)}): best-kept hit rate, mean kept score, "
              f"mean cost against the best (random pick: mean "
              f"{np.mean([np.mean([hung[r] for r in grp]) for grp in groups]):.4f}, "
              f"best {np.mean([max(hung[r] for r in grp) for grp in groups]):.4f})")
        for name in names:
            hits, kept, cost = 0, [], []
            for grp in groups:
                if name == "agreement":
                    score = {r: np.mean([pair[r, o] for o in grp if o != r]) for r in grp}
                else:
                    score = value[name]
                k = max(grp, key=lambda r: score[r])
                best = max(hung[r] for r in grp)
                hits += hung[k] == best
                kept.append(hung[k])
                cost.append(best - hung[k])
            print(f"  {name:10s} {hits / len(groups):.2f}  {np.mean(kept):.4f}  "
                  f"{np.mean(cost):.4f}")


if __name__ == "__main__":
    main()
