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


def conv_stage(cin, cout, k, stride, pad):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, pad), nn.BatchNorm2d(cout), nn.ReLU())


def deconv_stage(cin, cout, k, stride, pad, bn=True):
    layers = [nn.ConvTranspose2d(cin, cout, k, stride, pad)]
    if bn:
        layers += [nn.BatchNorm2d(cout), nn.ReLU()]
    return nn.Sequential(*layers)


class Recognition(nn.Module):
    """q(x|y), q(w|y) and (v1) q(z|y): a shared trunk y -> h (H), then linear heads."""

    def __init__(self, c, qz_head=True):
        super().__init__()
        h, f = c["hidden"], c["filters"]
        if c["network"] == "fc":
            self.trunk = nn.Sequential(
                nn.Linear(c["dy"], h), nn.BatchNorm1d(h), nn.ReLU(),
                nn.Linear(h, h), nn.BatchNorm1d(h), nn.ReLU())
        elif c["network"] == "conv_mnist":  # 28 -> 23 -> 18 -> 9 -> 1
            self.trunk = nn.Sequential(
                conv_stage(c["shape"][0], f, 6, 1, 0), conv_stage(f, 2 * f, 6, 1, 0),
                conv_stage(2 * f, 4 * f, 4, 2, 1), conv_stage(4 * f, h, 9, 1, 0), nn.Flatten())
        else:  # 32 -> 16 -> 8 -> 4 -> 1
            self.trunk = nn.Sequential(
                conv_stage(c["shape"][0], f, 4, 2, 1), conv_stage(f, 2 * f, 4, 2, 1),
                conv_stage(2 * f, 4 * f, 4, 2, 1), conv_stage(4 * f, h, 4, 1, 0), nn.Flatten())
        self.shape = c["shape"]
        self.mean_x, self.logvar_x = nn.Linear(h, c["dx"]), nn.Linear(h, c["dx"])
        self.mean_w, self.logvar_w = nn.Linear(h, c["dw"]), nn.Linear(h, c["dw"])
        self.q_z = nn.Linear(h, c["k"]) if qz_head else None

    def forward(self, y):
        if self.shape is not None:
            y = y.view(-1, *self.shape)
        h = self.trunk(y)
        return (self.mean_x(h), bounded(self.logvar_x(h)), self.mean_w(h),
                bounded(self.logvar_w(h)), self.q_z(h))


class Decoder(nn.Module):
    """p(y|x): Bernoulli logits, or a Gaussian (mean, logvar) for the fc decoder."""

    def __init__(self, c):
        super().__init__()
        h, f, dy = c["hidden"], c["filters"], c["dy"]
        self.conv = c["network"] != "fc"
        if not self.conv:
            self.body = nn.Sequential(nn.Linear(c["dx"], h), nn.ReLU(), nn.Linear(h, h), nn.ReLU())
            self.out = nn.Linear(h, dy)
            self.out_logvar = nn.Linear(h, dy) if c["gaussian"] else None
            return
        ch = c["shape"][0]
        self.input = nn.Sequential(nn.Linear(c["dx"], h), nn.BatchNorm1d(h), nn.ReLU())
        if c["network"] == "conv_mnist":  # 1 -> 9 -> 18 -> 23 -> 28
            self.body = nn.Sequential(
                deconv_stage(h, 4 * f, 9, 1, 0), deconv_stage(4 * f, 2 * f, 4, 2, 1),
                deconv_stage(2 * f, f, 6, 1, 0), deconv_stage(f, ch, 6, 1, 0, bn=False))
        else:  # 1 -> 4 -> 8 -> 16 -> 32
            self.body = nn.Sequential(
                deconv_stage(h, 4 * f, 4, 1, 0), deconv_stage(4 * f, 2 * f, 4, 2, 1),
                deconv_stage(2 * f, f, 4, 2, 1), deconv_stage(f, ch, 4, 2, 1, bn=False))

    def forward(self, x):
        if self.conv:
            h = self.input(x)[:, :, None, None]
            return self.body(h).flatten(1), None
        h = self.body(x)
        return self.out(h), (bounded(self.out_logvar(h)) if self.out_logvar is not None else None)


class PriorNet(nn.Module):
    """p(x|w,z): w -> Linear(Dw,H) -> Tanh, then the K mean and K log-variance heads, each set
    fused into one Linear(H, K*Dx) as in models/src/prior.rs (same parameters, one matmul)."""

    def __init__(self, c):
        super().__init__()
        self.k, self.dx = c["k"], c["dx"]
        self.hidden = nn.Linear(c["dw"], c["hidden"])
        self.mean = nn.Linear(c["hidden"], self.k * self.dx)
        self.logvar = nn.Linear(c["hidden"], self.k * self.dx)

    def forward(self, w):
        g = torch.tanh(self.hidden(w))
        b = w.shape[0]
        return (self.mean(g).view(b, self.k, self.dx),
                bounded(self.logvar(g)).view(b, self.k, self.dx))


class Gmvae(nn.Module):
    def __init__(self, c, qz_head=True):
        super().__init__()
        self.recognition = Recognition(c, qz_head)
        self.decoder = Decoder(c)
        self.prior = PriorNet(c)


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


def bench(preset, threads, steps, warmup, batch, seed, device):
    torch.set_num_threads(threads)
    dev = torch.device(device)
    # CUDA runs asynchronously: wait for it at each phase boundary, as bench does.
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    torch.manual_seed(seed)
    c = dict(PRESETS[preset])
    n = batch or c["batch"]
    model = Gmvae(c).to(dev)
    model.train()
    params = parameter_count(model)
    if preset in UPSTREAM_PARAMS and params != UPSTREAM_PARAMS[preset]:
        raise SystemExit(f"peer.py: {preset} has {params} parameters, expected "
                         f"{UPSTREAM_PARAMS[preset]}")
    opt = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    # Random data of the preset's shape, as bench does: grey levels in [0, 1).
    y = torch.rand(n, c["dy"], device=dev)
    fwd, bwd, upd, total = [], [], [], []
    for s in range(warmup + steps):
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
        if s >= warmup:
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
        "ms_forward": ms(fwd),
        "ms_backward": ms(bwd),
        "ms_optimizer": ms(upd),
        # ru_maxrss is in KiB on Linux.
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
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
    print(json.dumps(bench(a.preset, a.threads, a.steps, a.warmup, a.batch, a.seed, a.device)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
