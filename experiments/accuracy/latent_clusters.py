"""Where a run's clustering errors are: per component, the digits of the dumped test images it
takes (argmax q(z|y)), and the majority-vote accuracy of q(z|y) beside k-means and a diagonal
GMM (scikit-learn, evaluation only) on the same images' q(x|y) means, and k-means on their
pixels (the baseline a clustering model has to beat).

    python3 experiments/accuracy/latent_clusters.py experiments/accuracy/runs/acc-fc-k16-m1-s2
"""
import sys

import numpy as np
from safetensors.numpy import load_file
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture


def majority(labels, assign):
    return sum(np.bincount(labels[assign == k]).max() for k in np.unique(assign)) / len(labels)


d = load_file(f"{sys.argv[1]}/latent.safetensors")
q, labels, x, y = d["q_z"], d["label"].astype(int), d["x_mean"], d["data"]
k = q.shape[1]
z = q.argmax(1)
for c in range(k):
    m = z == c
    if not m.any():
        continue
    counts = np.bincount(labels[m], minlength=10)
    top = np.argsort(counts)[::-1][:3]
    print(c, m.sum(), " ".join(f"{t}:{counts[t] / m.sum():.2f}" for t in top))
print("mean q(z|y) per component", " ".join(f"{v:.3f}" for v in q.mean(0)))
print(f"q(z|y) majority accuracy {majority(labels, z):.4f}")
km = KMeans(k, n_init=5, random_state=0).fit(x)
print(f"k-means on x_mean majority accuracy {majority(labels, km.labels_):.4f}")
gmm = GaussianMixture(k, covariance_type="diag", random_state=0, n_init=2).fit(x)
print(f"diagonal GMM on x_mean majority accuracy {majority(labels, gmm.predict(x)):.4f}")
km = KMeans(k, n_init=5, random_state=0).fit(y)
print(f"k-means on the pixels y majority accuracy {majority(labels, km.labels_):.4f}")
