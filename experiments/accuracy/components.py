"""Per component of a run's latent dump (the test images of latent.safetensors, argmax of the
dumped cluster posterior): its majority digit, that digit's share and the component's size,
and how many distinct digits are a component's majority (10/10 = one component per digit at
K = 10). numpy only (the dump is read directly).

    python3 experiments/accuracy/components.py RUN_DIR [RUN_DIR ...]
    python3 experiments/accuracy/components.py --refit RUN_DIR ...   # also refit x_mean

With --refit (scikit-learn, evaluation only): diagonal and full K-component GMMs and k-means
fitted to the dumped test images' x_mean, each with its majority accuracy and distinct
majority digits: do the codes themselves part the digits?
"""
import json
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32,
          "U32": np.uint32, "U8": np.uint8}


def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
        b = f.read()
    out = {}
    for k, v in h.items():
        if k == "__metadata__":
            continue
        a, e = v["data_offsets"]
        out[k] = np.frombuffer(b[a:e], DTYPES[v["dtype"]]).reshape(v["shape"])
    return out


def majority(z, lab):
    """Majority-vote accuracy and each cluster's majority digit."""
    cs = np.unique(z)
    acc = sum(np.bincount(lab[z == c]).max() for c in cs) / len(lab)
    return acc, [int(np.bincount(lab[z == c], minlength=10).argmax()) for c in cs]


def refit(x, lab, k):
    from sklearn.cluster import KMeans
    from sklearn.mixture import GaussianMixture
    fits = [("gmm-diag", GaussianMixture(k, covariance_type="diag", n_init=3, random_state=0)),
            ("gmm-full", GaussianMixture(k, covariance_type="full", n_init=3, random_state=0)),
            ("kmeans", KMeans(k, n_init=10, random_state=0))]
    for name, m in fits:
        acc, maj = majority(m.fit_predict(x), lab)
        print(f"  refit {name}: majority {acc:.3f}, distinct majority digits "
              f"{len(set(maj))}/{k}, majorities {sorted(maj)}")


def main():
    args = sys.argv[1:]
    for run in [a for a in args if a != "--refit"]:
        d = load(f"{run}/latent.safetensors")
        q, lab = d["q_z"], d["label"].astype(int)
        z = q.argmax(1)
        parts = []
        for c in range(q.shape[1]):
            m = z == c
            if not m.any():
                parts.append(f"{c}:empty")
                continue
            cnt = np.bincount(lab[m], minlength=10)
            t = cnt.argmax()
            parts.append(f"{t}({cnt[t] / m.sum():.2f},{m.sum()})")
        acc, maj = majority(z, lab)
        print(f"{run.rstrip('/').split('/')[-1]}: distinct majority digits {len(set(maj))}/10 "
              f"(majority {acc:.3f}) | " + " ".join(parts))
        if "--refit" in args:
            refit(d["x_mean"], lab, q.shape[1])


if __name__ == "__main__":
    main()
