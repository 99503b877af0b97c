"""Writes scikit-learn's load_digits (1797 x 64, 8x8 images with pixel values 0..16, labels 0..9)
to digits.csv: a header row `p0..p63,label`, one row per image."""
import sys

from sklearn.datasets import load_digits

out = sys.argv[1] if len(sys.argv) > 1 else "digits.csv"
d = load_digits()
with open(out, "w") as f:
    f.write(",".join([f"p{j}" for j in range(64)] + ["label"]) + "\n")
    for x, t in zip(d.data, d.target):
        f.write(",".join(str(int(v)) for v in x) + f",{t}\n")
print(f"wrote {out}: {d.data.shape[0]} rows x {d.data.shape[1]} features + label")
