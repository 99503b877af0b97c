"""The thirteenth ablation's table from the committed records: restarts kept by confidence after a
few epochs (`--restart-epochs`) against the same seeds' plain runs (restart 0 is the plain run).

    python3 experiments/accuracy/early_choice.py [--seeds 5 6 ... 12] [--epoch 20]

Reads experiments/accuracy/ablations/k10-10k-conf3e5-e20-sS (restarts.json, each restart's
metrics.csv, components.txt) and k10-10k-marg5aug10-e20-sS (the plain run). Prints one markdown
row per seed and the means (sample std).
"""
import argparse
import csv
import json
import os
import re
import statistics as st

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ablations")


def rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def digits(run):
    with open(os.path.join(run, "components.txt")) as f:
        return int(re.search(r"distinct majority digits (\d+)/", f.read()).group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(5, 13)))
    ap.add_argument("--epoch", type=int, default=20)
    a = ap.parse_args()
    print("| seed | confidence at the choice | Hungarian at the choice | kept | plain: H / NMI / digits "
          "| kept: H / NMI / digits |")
    print("|---|---|---|---|---|---|")
    plain_h, kept_h = [], []
    for s in a.seeds:
        early = os.path.join(HERE, f"k10-10k-conf3e5-e20-s{s}")
        plain = os.path.join(HERE, f"k10-10k-marg5aug10-e20-s{s}")
        rec = json.load(open(os.path.join(early, "restarts.json")))
        e = rec["screen_epochs"]
        conf = [r["confidence"] for r in rec["restarts"]]
        at = [float(rows(os.path.join(early, r["dir"], "metrics.csv"))[e - 1]["test_acc_hungarian"])
              for r in rec["restarts"]]
        p = rows(os.path.join(plain, "metrics.csv"))[a.epoch - 1]
        k = rows(os.path.join(early, "metrics.csv"))[a.epoch - 1]
        plain_h.append(float(p["test_acc_hungarian"]))
        kept_h.append(float(k["test_acc_hungarian"]))
        print(f"| {s} | {' / '.join(f'{c:.3f}' for c in conf)} | {' / '.join(f'{h:.3f}' for h in at)} "
              f"| {rec['kept']} | {plain_h[-1]:.3f} / {float(p['test_nmi']):.3f} / {digits(plain)} "
              f"| {kept_h[-1]:.3f} / {float(k['test_nmi']):.3f} / {digits(early)} |")
    print(f"\nHungarian at {a.epoch}: plain {st.mean(plain_h):.3f} ± {st.stdev(plain_h):.3f}, "
          f"kept {st.mean(kept_h):.3f} ± {st.stdev(kept_h):.3f}; kept better on "
          f"{sum(k > p for p, k in zip(plain_h, kept_h))}, equal on "
          f"{sum(k == p for p, k in zip(plain_h, kept_h))} of {len(plain_h)}")


if __name__ == "__main__":
    main()
