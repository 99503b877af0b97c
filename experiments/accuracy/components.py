"""Per component of a run's latent dump (the test images of latent.safetensors, argmax of the
dumped cluster posterior): its majority digit, that digit's share and the component's size,
and how many distinct digits are a component's majority (10/10 = one component per digit at
K = 10). numpy only (the dump is read directly).

    python3 experiments/accuracy/components.py RUN_DIR [RUN_DIR ...]
"""
import json, struct, sys
import numpy as np
def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]; h = json.loads(f.read(n)); b = f.read()
    out = {}
    for k, v in h.items():
        if k == "__metadata__": continue
        a, e = v["data_offsets"]; dt = {"F32": np.float32, "I64": np.int64, "U8": np.uint8, "U32": np.uint32, "I32": np.int32, "F64": np.float64}[v["dtype"]]
        out[k] = np.frombuffer(b[a:e], dt).reshape(v["shape"])
    return out
for run in sys.argv[1:]:
    d = load(f"{run}/latent.safetensors")
    q, lab = d["q_z"], d["label"].astype(int)
    z = q.argmax(1)
    maj = []
    parts = []
    for c in range(q.shape[1]):
        m = z == c
        if not m.any(): parts.append(f"{c}:empty"); continue
        cnt = np.bincount(lab[m], minlength=10); t = cnt.argmax(); maj.append(t)
        parts.append(f"{t}({cnt[t]/m.sum():.2f},{m.sum()})")
    own = len(set(maj))
    print(f"{run.split('/')[-1]}: distinct majority digits {own}/10 | " + " ".join(parts))
