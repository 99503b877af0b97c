#!/usr/bin/env python3
"""PyTorch peer of `bench`: one GMVAE v1 training step (forward + objective, backward, Adam) on
the same networks, batch and thread count as the Rust trainer, timed per phase.

Optional (needs torch; see README.md here), never part of the test suite. `bench --peer` runs it
and parses the JSON line it prints last:

    python3 experiments/perf/peer.py mnist_fc --threads 1 --steps 20 --warmup 3 --batch 50

Symbols follow the paper and the Rust code (src/objective.rs, models/src/*.rs): y observation,
x Gaussian latent (Dx), w style latent (Dw), z categorical (K), H hidden, F filters, M
Monte-Carlo samples, N batch; multi-sample tensors are sample-major (row m*N + n).
`--check-params` asserts the upstream parameter counts (gmvae-upstream.md §1.2) and exits.
"""

import argparse
import json
import math
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

LOG_2PI = math.log(2.0 * math.pi)
LOGVAR_BOUND = 30.0  # as models/src/recognition.rs: keeps exp(+-logvar) finite in f32

# The run.sh presets as src/options.rs resolves them (objective v1, M = 1, eta = 1, lr 1e-4).
PRESETS = {
    "spiral": dict(network="fc", dy=2, shape=None, dx=2, dw=2, k=8, hidden=100, filters=16,
                   gaussian=True, batch=200, cv_weight=2.0),
    "mnist_fc": dict(network="fc", dy=784, shape=None, dx=200, dw=150, k=14, hidden=1000,
                     filters=16, gaussian=False, batch=50, cv_weight=0.4),
    "mnist": dict(network="conv_mnist", dy=784, shape=(1, 28, 28), dx=200, dw=150, k=14,
                  hidden=500, filters=16, gaussian=False, batch=50, cv_weight=0.4),
    "svhn": dict(network="conv_svhn", dy=3072, shape=(3, 32, 32), dx=200, dw=150, k=10,
                 hidden=500, filters=64, gaussian=False, batch=128, cv_weight=1.0),
}
Z_PRIOR_WEIGHT = 1.0
N_MC = 1
LEARNING_RATE = 1e-4

# Upstream's counts (BatchNorm as gamma + beta). The svhn branch has no q(z|y) head; our v1
# objective adds one, H*K + K more parameters.
UPSTREAM_PARAMS = {"spiral": 26_752, "mnist_fc": 10_248_098, "mnist": 8_630_039}
UPSTREAM_SVHN_NO_QZ = 7_948_755


def bounded(t):
    return t.clamp(-LOGVAR_BOUND, LOGVAR_BOUND)


class Stage(nn.Module):
    """A linear/conv/deconv layer, then BatchNorm and ReLU when `bn` is given. Attribute names
    follow the Rust variables (`fc1.linear`, `conv2.bn`, `deconv4.deconv`, ...) so that our
    weights load by name (`--check`)."""

    def __init__(self, kind, layer, bn=None):
        super().__init__()
        self.kind = kind
        setattr(self, kind, layer)
        self.bn = bn

    def forward(self, h):
        h = getattr(self, self.kind)(h)
        return h if self.bn is None else F.relu(self.bn(h))


def conv_stage(cin, cout, k, stride, pad):
    return Stage("conv", nn.Conv2d(cin, cout, k, stride, pad), nn.BatchNorm2d(cout))


def deconv_stage(cin, cout, k, stride, pad, bn=True):
    return Stage("deconv", nn.ConvTranspose2d(cin, cout, k, stride, pad),
                 nn.BatchNorm2d(cout) if bn else None)


def fc_stage(a, b):
    return Stage("linear", nn.Linear(a, b), nn.BatchNorm1d(b))


class Recognition(nn.Module):
    """q(x|y), q(w|y) and (v1) q(z|y): a shared trunk y -> h (H), then linear heads."""

    def __init__(self, c, qz_head=True):
        super().__init__()
        h, f = c["hidden"], c["filters"]
        if c["network"] == "fc":
            stages = [fc_stage(c["dy"], h), fc_stage(h, h)]
            names = ["fc1", "fc2"]
        else:
            ch = c["shape"][0]
            if c["network"] == "conv_mnist":  # 28 -> 23 -> 18 -> 9 -> 1
                shapes = [(ch, f, 6, 1, 0), (f, 2 * f, 6, 1, 0), (2 * f, 4 * f, 4, 2, 1),
                          (4 * f, h, 9, 1, 0)]
            else:  # 32 -> 16 -> 8 -> 4 -> 1
                shapes = [(ch, f, 4, 2, 1), (f, 2 * f, 4, 2, 1), (2 * f, 4 * f, 4, 2, 1),
                          (4 * f, h, 4, 1, 0)]
            stages = [conv_stage(*s) for s in shapes]
            names = ["conv1", "conv2", "conv3", "conv4"]
        for name, stage in zip(names, stages):
            setattr(self, name, stage)
        self.trunk = names
        self.shape = c["shape"]
        self.mean_x, self.logvar_x = nn.Linear(h, c["dx"]), nn.Linear(h, c["dx"])
        self.mean_w, self.logvar_w = nn.Linear(h, c["dw"]), nn.Linear(h, c["dw"])
        self.q_z = nn.Linear(h, c["k"]) if qz_head else None

    def forward(self, y):
        h = y if self.shape is None else y.view(-1, *self.shape)
        for name in self.trunk:
            h = getattr(self, name)(h)
        h = h.flatten(1)
        return (self.mean_x(h), bounded(self.logvar_x(h)), self.mean_w(h),
                bounded(self.logvar_w(h)), self.q_z(h))


class Decoder(nn.Module):
    """p(y|x): Bernoulli logits, or a Gaussian (mean, logvar) for the fc decoder."""

    def __init__(self, c):
        super().__init__()
        h, f, dy = c["hidden"], c["filters"], c["dy"]
        self.conv = c["network"] != "fc"
        if not self.conv:
            # No BatchNorm in the fc decoder (FullyConnected.lua:34-57).
            self.fc1, self.fc2 = nn.Linear(c["dx"], h), nn.Linear(h, h)
            self.mean_y = nn.Linear(h, dy)
            self.logvar_y = nn.Linear(h, dy) if c["gaussian"] else None
            return
        ch = c["shape"][0]
        self.fc1 = fc_stage(c["dx"], h)
        if c["network"] == "conv_mnist":  # 1 -> 9 -> 18 -> 23 -> 28
            shapes = [(h, 4 * f, 9, 1, 0), (4 * f, 2 * f, 4, 2, 1), (2 * f, f, 6, 1, 0),
                      (f, ch, 6, 1, 0)]
        else:  # 1 -> 4 -> 8 -> 16 -> 32
            shapes = [(h, 4 * f, 4, 1, 0), (4 * f, 2 * f, 4, 2, 1), (2 * f, f, 4, 2, 1),
                      (f, ch, 4, 2, 1)]
        self.deconv1 = deconv_stage(*shapes[0])
        self.deconv2 = deconv_stage(*shapes[1])
        self.deconv3 = deconv_stage(*shapes[2])
        self.deconv4 = deconv_stage(*shapes[3], bn=False)

    def forward(self, x):
        if self.conv:
            h = self.fc1(x)[:, :, None, None]
            for stage in (self.deconv1, self.deconv2, self.deconv3, self.deconv4):
                h = stage(h)
            return h.flatten(1), None
        h = F.relu(self.fc2(F.relu(self.fc1(x))))
        logvar = bounded(self.logvar_y(h)) if self.logvar_y is not None else None
        return self.mean_y(h), logvar


class PriorNet(nn.Module):
    """p(x|w,z): w -> Linear(Dw,H) -> Tanh, then the K mean and K log-variance heads, each set
    fused into one Linear(H, K*Dx) as in models/src/prior.rs (same parameters, one matmul)."""

    def __init__(self, c):
        super().__init__()
        self.k, self.dx = c["k"], c["dx"]
        self.fc1 = nn.Linear(c["dw"], c["hidden"])
        self.mean_x = nn.Linear(c["hidden"], self.k * self.dx)
        self.logvar_x = nn.Linear(c["hidden"], self.k * self.dx)

    def forward(self, w):
        g = torch.tanh(self.fc1(w))
        b = w.shape[0]
        return (self.mean_x(g).view(b, self.k, self.dx),
                bounded(self.logvar_x(g)).view(b, self.k, self.dx))


class Gmvae(nn.Module):
    def __init__(self, c, qz_head=True):
        super().__init__()
        self.recognition = Recognition(c, qz_head)
        self.decoder = Decoder(c)
        self.prior = PriorNet(c)


def read_safetensors(path):
    """The tensors of a safetensors file (F32/F64 only), without the safetensors package: an
    8-byte little-endian header length, a JSON header, then the raw little-endian data."""
    dtypes = {"F32": torch.float32, "F64": torch.float64}
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    body = memoryview(data)[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in dtypes:
            raise SystemExit(f"peer.py: {path}: tensor {name} has dtype {info['dtype']}")
        b, e = info["data_offsets"]
        t = torch.frombuffer(bytearray(body[b:e]), dtype=dtypes[info["dtype"]])
        out[name] = t.view(info["shape"]) if info["shape"] else t.view(())
    return out


def repeat_mc(t, m):
    return t if m == 1 else t.repeat(m, 1)


def objective_v1(model, c, y, eps_x, eps_w, m):
    """src/objective.rs `evaluate` for v1: returns the loss whose gradient training follows
    (L_rec + L_cond + L_w + eta*KL_z + alpha*L_CV) and the reported terms."""
    mean_x, logvar_x, mean_w, logvar_w, qz_logits = model.recognition(y)
    x = repeat_mc(mean_x, m) + repeat_mc(torch.exp(0.5 * logvar_x), m) * eps_x
    w = repeat_mc(mean_w, m) + repeat_mc(torch.exp(0.5 * logvar_w), m) * eps_w
    out, out_logvar = model.decoder(x)
    mu_k, lv_k = model.prior(w)  # [MN, K, Dx]

    yr = repeat_mc(y, m)
    if out_logvar is None:
        rec = F.binary_cross_entropy_with_logits(out, yr, reduction="sum") / m
    else:
        rec = 0.5 * (out_logvar + (yr - out) ** 2 * torch.exp(-out_logvar) + LOG_2PI).sum() / m

    # log p(z|x,w): softmax over the K Gaussian log-likelihoods at the sampled x.
    maha = ((mu_k - x[:, None, :]) ** 2 * torch.exp(-lv_k)).sum(-1)
    llh = -0.5 * (maha + lv_k.sum(-1) + c["dx"] * LOG_2PI)
    log_p = F.log_softmax(llh, dim=-1)
    cv = -(torch.exp(log_p) * log_p).sum() / m

    lw = -0.5 * (1.0 + logvar_w - mean_w ** 2 - torch.exp(logvar_w)).sum()

    log_pi = F.log_softmax(qz_logits, dim=-1)
    pi = torch.exp(log_pi)
    mu_a, lv_a = repeat_mc(mean_x, m)[:, None, :], repeat_mc(logvar_x, m)[:, None, :]
    kl = 0.5 * (lv_k - lv_a + (torch.exp(lv_a) + (mu_a - mu_k) ** 2) * torch.exp(-lv_k) - 1.0)
    cond = (kl.sum(-1) * repeat_mc(pi, m)).sum() / m
    lz = (pi * (log_pi + math.log(c["k"]))).sum()

    loss = rec + cond + lw + Z_PRIOR_WEIGHT * lz + c["cv_weight"] * cv
    return loss, (rec, cond, lw, lz, cv)


def parameter_count(model):
    return sum(p.numel() for p in model.parameters())


def check_params():
    for preset, want in UPSTREAM_PARAMS.items():
        got = parameter_count(Gmvae(PRESETS[preset]))
        assert got == want, f"{preset}: {got} parameters, upstream has {want}"
    c = PRESETS["svhn"]
    got = parameter_count(Gmvae(c, qz_head=False))
    assert got == UPSTREAM_SVHN_NO_QZ, f"svhn without q(z|y): {got}, upstream {UPSTREAM_SVHN_NO_QZ}"
    v1 = parameter_count(Gmvae(c))
    extra = c["hidden"] * c["k"] + c["k"]
    assert v1 == UPSTREAM_SVHN_NO_QZ + extra, f"svhn v1: {v1}"


# Names of the values in `--check`'s check.terms, in order (bench writes them).
CHECK_TERMS = ["rec", "cond_prior", "w_prior", "z_prior", "cv", "loss", "training_loss"]


def check_objective(model, c, tensors):
    """Loads our weights and evaluates the objective on our y and noise: returns y and the
    largest relative difference of the terms from the values bench computed."""
    state = {k: v for k, v in tensors.items() if not k.startswith("check.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise SystemExit(f"peer.py --check: names differ from ours: missing {missing}, "
                         f"unexpected {unexpected}")
    y, eps_x, eps_w = (tensors[f"check.{k}"] for k in ("y", "eps_x", "eps_w"))
    m = eps_x.shape[0] // y.shape[0]
    loss, (rec, cond, lw, lz, cv) = objective_v1(model, c, y, eps_x, eps_w, m)
    reported = rec + cond + lw + Z_PRIOR_WEIGHT * lz
    peer = [t.item() for t in (rec, cond, lw, lz, cv, reported, loss)]
    ours = tensors["check.terms"].tolist()
    err = max(abs(a - b) / max(abs(a), abs(b), 1.0) for a, b in zip(peer, ours))
    return y, err, dict(zip(CHECK_TERMS, peer))


def bench(preset, threads, steps, warmup, batch, seed, device, check=None):
    torch.set_num_threads(threads)
    dev = torch.device(device)
    # CUDA runs asynchronously: wait for it at each phase boundary, as bench does.
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    torch.manual_seed(seed)
    c = dict(PRESETS[preset])
    n = batch or c["batch"]
    model = Gmvae(c)
    model.train()
    params = parameter_count(model)
    if preset in UPSTREAM_PARAMS and params != UPSTREAM_PARAMS[preset]:
        raise SystemExit(f"peer.py: {preset} has {params} parameters, expected "
                         f"{UPSTREAM_PARAMS[preset]}")
    # Random data of the preset's shape, as bench does: grey levels in [0, 1).
    y = torch.rand(n, c["dy"])
    check_err, check_terms = None, None
    if check is not None:
        # Our weights and data: the same objective must give the same values.
        y, check_err, check_terms = check_objective(model, c, read_safetensors(check))
        if y.shape[0] != n:
            raise SystemExit(f"peer.py --check: batch {y.shape[0]} in {check}, --batch {n}")
    model.to(dev)
    y = y.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    fwd, bwd, upd, total, cpu = [], [], [], [], []
    for s in range(warmup + steps):
        c0 = time.process_time()
        t0 = time.perf_counter()
        eps_x = torch.randn(N_MC * n, c["dx"], device=dev)
        eps_w = torch.randn(N_MC * n, c["dw"], device=dev)
        loss, terms = objective_v1(model, c, y, eps_x, eps_w, N_MC)
        # The Rust step reads the term values every step (and checks the loss is finite).
        _ = [t.item() for t in terms]
        if not math.isfinite(loss.item()):
            raise SystemExit(f"peer.py: the loss became {loss.item()} at step {s + 1}")
        t1 = time.perf_counter()
        loss.backward()
        sync()
        t2 = time.perf_counter()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        t3 = time.perf_counter()
        c3 = time.process_time()
        if s >= warmup:
            cpu.append(c3 - c0)
            fwd.append(t1 - t0)
            bwd.append(t2 - t1)
            upd.append(t3 - t2)
            total.append(t3 - t0)
    ms = lambda v: statistics.median(v) * 1e3  # noqa: E731
    return {
        "peer": "pytorch",
        "torch": torch.__version__,
        "device": device,
        "preset": preset,
        "threads": torch.get_num_threads(),
        "batch": n,
        "steps": steps,
        "warmup": warmup,
        "params": params,
        "ms_step": ms(total),
        # CPU time of all threads: less disturbed than wall time by other jobs on the machine.
        "cpu_ms_step": ms(cpu),
        "ms_forward": ms(fwd),
        "ms_backward": ms(bwd),
        "ms_optimizer": ms(upd),
        # ru_maxrss is in KiB on Linux.
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "check_max_rel_err": check_err,
        "check_terms": check_terms,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("preset", nargs="?", choices=sorted(PRESETS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=20, help="measured steps (median), >= 20")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int, default=0, help="0: the preset's batch size")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--check", metavar="FILE",
                    help="safetensors from bench: our weights, y, noise and term values; the "
                         "peer loads them, reports how far its objective is from ours, and "
                         "times the step from those weights and data")
    ap.add_argument("--check-params", action="store_true",
                    help="assert the upstream parameter counts and exit")
    a = ap.parse_args()
    if a.check_params:
        check_params()
        print("parameter counts match upstream")
        return
    if a.preset is None:
        ap.error("a preset is required (spiral, mnist_fc, mnist, svhn)")
    if a.threads < 1 or a.steps < 20 or a.warmup < 0 or a.batch < 0 or a.batch == 1:
        ap.error("need --threads >= 1, --steps >= 20, --warmup >= 0, --batch 0 or >= 2")
    print(json.dumps(bench(a.preset, a.threads, a.steps, a.warmup, a.batch, a.seed, a.device, a.check)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
